//! The database: one `sqlx::Any` pool over Postgres or SQLite, the embedded
//! versioned migrations, and every query OP makes (users and notes).
//!
//! Both backends get the same schema idea (times as Unix-second integers,
//! random text ids), so the same queries and the same tests run on both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Acquire as _, Row as _};

use crate::error::Error;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite (embedded default).
    Sqlite,
}

impl Backend {
    /// Reads the backend from a URL scheme.
    #[must_use]
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// One schema migration, in both dialects.
struct Migration {
    version: i64,
    name: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
}

/// Every migration this build knows, in order. Append only; never edit one
/// that has shipped (the checksum check refuses to start on a changed text).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    postgres: include_str!("../migrations/postgres/0001_init.sql"),
    sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
}];

/// Advisory lock key serialising migrations of concurrently starting replicas.
const MIGRATION_LOCK_KEY: i64 = 0x4155_5448_4f50_0001;

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// Random UUID; the `sub` of the user's tokens.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Optional display name.
    pub display_name: Option<String>,
    /// PHC string of the argon2id hash. Never printed by handlers.
    pub password_hash: String,
    /// Set when the account is disabled (Unix seconds).
    pub disabled_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

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

/// Outcome of inserting a user.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertUser {
    /// Stored.
    Created,
    /// The email is already registered.
    EmailTaken,
}

/// The pool plus what OP knows about it.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    migrated: Arc<AtomicBool>,
}

impl Database {
    /// Creates the pool without connecting (the database may still be down;
    /// [`Database::migrate`] and readiness report that).
    ///
    /// # Errors
    /// [`Error::Config`] for an unsupported URL.
    pub fn connect_lazy(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            Error::Config("AUTHREALM_DATABASE_URL must be sqlite: or postgres://".to_owned())
        })?;
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(url)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .connect_lazy(url)
            .map_err(|e| Error::Config(format!("AUTHREALM_DATABASE_URL is not usable: {e}")))?;
        Ok(Self {
            pool,
            backend,
            migrated: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Which backend this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the migrations have been applied (the schema is usable).
    #[must_use]
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    /// Applies every migration not yet applied, each in its own transaction,
    /// under a lock so replicas starting together do not race.
    ///
    /// # Errors
    /// [`Error::Database`] when unreachable, [`Error::Migration`] when a
    /// migration fails, [`Error::SchemaMismatch`] when an applied migration's
    /// text differs from this build's.
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await.map_err(Error::Database)?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *conn)
                .await
                .map_err(Error::Database)?;
        } else {
            // WAL lets readers and one writer work at once; the setting is persistent.
            sqlx::raw_sql("PRAGMA journal_mode=WAL")
                .execute(&mut *conn)
                .await
                .map_err(Error::Database)?;
        }
        let result = self.migrate_locked(&mut conn).await;
        if self.backend == Backend::Postgres {
            let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *conn)
                .await;
            if let Err(e) = unlock {
                tracing::warn!(error = %e, "could not release the migration lock; closing the connection");
                conn.close_on_drop();
            }
        }
        result?;
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    async fn migrate_locked(&self, conn: &mut sqlx::AnyConnection) -> Result<(), Error> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS op_schema_migrations (
                version BIGINT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )",
        )
        .execute(&mut *conn)
        .await
        .map_err(Error::Database)?;
        let rows =
            sqlx::query("SELECT version, checksum FROM op_schema_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await
                .map_err(Error::Database)?;
        let mut applied = Vec::with_capacity(rows.len());
        for row in rows {
            let version: i64 = row.try_get("version").map_err(Error::Database)?;
            let checksum: String = row.try_get("checksum").map_err(Error::Database)?;
            applied.push((version, checksum));
        }
        for (version, _) in &applied {
            if !MIGRATIONS.iter().any(|m| m.version == *version) {
                tracing::warn!(
                    version,
                    "the database has a migration this build does not know (a newer replica ran it)"
                );
            }
        }
        for m in MIGRATIONS {
            let sql = match self.backend {
                Backend::Postgres => m.postgres,
                Backend::Sqlite => m.sqlite,
            };
            let checksum = sha256_hex(sql.as_bytes());
            if let Some((_, stored)) = applied.iter().find(|(v, _)| *v == m.version) {
                if *stored != checksum {
                    return Err(Error::SchemaMismatch(format!(
                        "migration {} ({}) was applied with a different text",
                        m.version, m.name
                    )));
                }
                continue;
            }
            let mut tx = conn.begin().await.map_err(Error::Database)?;
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|source| Error::Migration {
                    version: m.version,
                    source,
                })?;
            sqlx::query(
                "INSERT INTO op_schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(checksum)
            .bind(authrealm_tokens::unix_now())
            .execute(&mut *tx)
            .await
            .map_err(|source| Error::Migration {
                version: m.version,
                source,
            })?;
            tx.commit().await.map_err(|source| Error::Migration {
                version: m.version,
                source,
            })?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        Ok(())
    }

    /// A cheap round trip (readiness).
    ///
    /// # Errors
    /// The database error.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

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

    /// The user with this (already lower-cased) email.
    ///
    /// # Errors
    /// A database error.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, email, display_name, password_hash, disabled_at, created_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// The user with this id.
    ///
    /// # Errors
    /// A database error.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, email, display_name, password_hash, disabled_at, created_at FROM users WHERE id = $1",
        )
        .bind(id)
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
        title: &str,
        body: &str,
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
        title: &str,
        body: &str,
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

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        password_hash: r.try_get("password_hash")?,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
    })
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

fn sha256_hex(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `sqlite://dir/file.db?...` needs `dir` to exist before `mode=rwc` can create the file.
fn create_sqlite_parent_dir(url: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(Error::Io)?;
    }
    Ok(())
}

/// A random UUID (version 4) as text, from the system CSPRNG.
///
/// # Errors
/// [`Error::Random`] when the random source fails.
pub fn new_id() -> Result<String, Error> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Whether a string has the shape of [`new_id`]'s output (cheap 404 for garbage ids).
#[must_use]
pub fn looks_like_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() -> Result<(), Error> {
        let a = new_id()?;
        let b = new_id()?;
        assert_ne!(a, b);
        assert!(looks_like_id(&a), "{a}");
        assert!(!looks_like_id("1' OR '1'='1"));
        assert!(!looks_like_id(""));
        Ok(())
    }

    #[test]
    fn backends_are_read_from_the_url() {
        assert_eq!(Backend::from_url("postgres://x/y"), Some(Backend::Postgres));
        assert_eq!(
            Backend::from_url("postgresql://x/y"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("sqlite://a.db?mode=rwc"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::from_url("mysql://x"), None);
    }
}
