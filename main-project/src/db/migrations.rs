//! The embedded schema migrations and their runner: SQL files per dialect,
//! applied in order, each in a transaction, recorded with a SHA-256 so a
//! changed text is refused; on Postgres under an advisory lock so replicas
//! can start together.

use std::sync::atomic::Ordering;

use sqlx::{Acquire as _, Row as _};

use super::{Backend, Database};
use crate::error::Error;
use authrealm_tokens::digest::sha256_hex;

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
    postgres: include_str!("../../migrations/postgres/0001_init.sql"),
    sqlite: include_str!("../../migrations/sqlite/0001_init.sql"),
}];

/// Advisory lock key serialising migrations of concurrently starting replicas.
const MIGRATION_LOCK_KEY: i64 = 0x4155_5448_4f50_0001;

impl Database {
    /// Applies every migration not yet applied, each in its own transaction,
    /// under a lock so replicas starting together do not race.
    ///
    /// # Errors
    /// [`Error::Database`] when unreachable, [`Error::Migration`] when a
    /// migration fails, [`Error::SchemaMismatch`] when an applied migration's
    /// text differs from this build's.
    pub async fn migrate(&self, now: i64) -> Result<(), Error> {
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
        let result = self.migrate_locked(&mut conn, now).await;
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

    async fn migrate_locked(&self, conn: &mut sqlx::AnyConnection, now: i64) -> Result<(), Error> {
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
            let applied = async {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO op_schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(m.version)
                .bind(m.name)
                .bind(checksum)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Ok::<_, sqlx::Error>(())
            }
            .await;
            let committed = match applied {
                Ok(()) => tx.commit().await,
                Err(e) => Err(e),
            };
            committed.map_err(|source| Error::Migration {
                version: m.version,
                source,
            })?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        Ok(())
    }
}
