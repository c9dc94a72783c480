//! The database: one `sqlx::Any` pool over Postgres or SQLite. The
//! embedded versioned migrations are in [`migrations`], the queries in
//! [`users`] and [`notes`].
//!
//! Both backends get the same schema idea (times as Unix-second integers,
//! random text ids), so the same queries and the same tests run on both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::error::Error;

pub mod migrations;
pub mod notes;
pub mod users;

pub use notes::Note;
pub use users::{InsertUser, User};

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

/// The pool plus what OP knows about it.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) migrated: Arc<AtomicBool>,
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

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
