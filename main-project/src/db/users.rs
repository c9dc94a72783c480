//! The users table: insert (the unique index on the email decides between
//! concurrent registrations), look-ups by email and id, disable, delete.

use secrecy::SecretString;
use sqlx::Row as _;

use super::Database;

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// Random UUID; the `sub` of the user's tokens.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Optional display name.
    pub display_name: Option<String>,
    /// PHC string of the argon2id hash (never printed).
    pub password_hash: SecretString,
    /// Set when the account is disabled (Unix seconds).
    pub disabled_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Outcome of inserting a user.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertUser {
    /// Stored.
    Created,
    /// The email is already registered.
    EmailTaken,
}

impl Database {
    /// Stores a new user. A duplicate email is [`InsertUser::EmailTaken`]
    /// (the unique index decides, so two concurrent registrations cannot both win).
    ///
    /// # Errors
    /// Any other database error.
    pub async fn insert_user(
        &self,
        id: &str,
        email: &str,
        display_name: Option<&str>,
        password_hash: &str,
        now: i64,
    ) -> Result<InsertUser, sqlx::Error> {
        let res = sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, disabled_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, NULL, $5, $5)",
        )
        .bind(id)
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(InsertUser::Created),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Ok(InsertUser::EmailTaken)
            }
            Err(e) => Err(e),
        }
    }

    /// The user with this (already normalised) email.
    ///
    /// # Errors
    /// A database error.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        self.user_where("SELECT id, email, display_name, password_hash, disabled_at, created_at FROM users WHERE email = $1", email).await
    }

    /// The user with this id.
    ///
    /// # Errors
    /// A database error.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        self.user_where("SELECT id, email, display_name, password_hash, disabled_at, created_at FROM users WHERE id = $1", id).await
    }

    async fn user_where(
        &self,
        query: &'static str,
        key: &str,
    ) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(query)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Disables (or re-enables) a user. Returns whether the user exists.
    ///
    /// # Errors
    /// A database error.
    pub async fn set_user_disabled(
        &self,
        id: &str,
        disabled_at: Option<i64>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let res = sqlx::query("UPDATE users SET disabled_at = $1, updated_at = $2 WHERE id = $3")
            .bind(disabled_at)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Deletes a user and (by cascade) their notes. Returns whether it existed.
    ///
    /// # Errors
    /// A database error.
    pub async fn delete_user(&self, id: &str) -> Result<bool, sqlx::Error> {
        let res = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Number of users (tests and diagnostics).
    ///
    /// # Errors
    /// A database error.
    pub async fn count_users(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        row.try_get("n")
    }
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        password_hash: SecretString::from(r.try_get::<String, _>("password_hash")?),
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
    })
}
