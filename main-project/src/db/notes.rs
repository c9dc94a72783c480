//! The notes table: each query names the owner, so another user's note is
//! indistinguishable from a missing one.

use sqlx::Row as _;

use super::Database;

/// A stored note.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Note {
    /// Random UUID.
    pub id: String,
    /// Title.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What a user writes in a note (already checked).
#[derive(Debug, Clone, Copy)]
pub struct NoteText<'a> {
    /// Title, trimmed.
    pub title: &'a str,
    /// Body text.
    pub body: &'a str,
}

impl Database {
    /// Number of notes of a user (tests and diagnostics).
    ///
    /// # Errors
    /// A database error.
    pub async fn count_notes(&self, user_id: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM notes WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        row.try_get("n")
    }

    /// Stores a note.
    ///
    /// # Errors
    /// A database error.
    pub async fn insert_note(
        &self,
        user_id: &str,
        id: &str,
        NoteText { title, body }: NoteText<'_>,
        now: i64,
    ) -> Result<Note, sqlx::Error> {
        sqlx::query(
            "INSERT INTO notes (id, user_id, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(id)
        .bind(user_id)
        .bind(title)
        .bind(body)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Note {
            id: id.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    /// The user's notes, newest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn list_notes(
        &self,
        user_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Note>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, title, body, created_at, updated_at FROM notes WHERE user_id = $1
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(note_from_row).collect()
    }

    /// One note of the user (`None` also when it belongs to someone else).
    ///
    /// # Errors
    /// A database error.
    pub async fn get_note(&self, user_id: &str, id: &str) -> Result<Option<Note>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(note_from_row).transpose()
    }

    /// Replaces a note's title and body; `None` when it is not the user's.
    ///
    /// # Errors
    /// A database error.
    pub async fn update_note(
        &self,
        user_id: &str,
        id: &str,
        NoteText { title, body }: NoteText<'_>,
        now: i64,
    ) -> Result<Option<Note>, sqlx::Error> {
        let res = sqlx::query(
            "UPDATE notes SET title = $1, body = $2, updated_at = $3 WHERE id = $4 AND user_id = $5",
        )
        .bind(title)
        .bind(body)
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_note(user_id, id).await
    }

    /// Deletes a note; whether it was the user's and existed.
    ///
    /// # Errors
    /// A database error.
    pub async fn delete_note(&self, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
        let res = sqlx::query("DELETE FROM notes WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }
}

fn note_from_row(r: &sqlx::any::AnyRow) -> Result<Note, sqlx::Error> {
    Ok(Note {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}
