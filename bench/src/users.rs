//! Users in Postgres, grown one size at a time: login and register latency
//! through OP at each size (one request at a time, so the figure is the
//! request's own cost), and the users table's size on disk.
//!
//! The users are written straight into OP's `users` table in bulk (hashing
//! a million passwords through OP would take hours); every seeded row holds
//! the hash OP itself made for one user registered through the API.

use sqlx::Connection as _;

use crate::bars::{self, Measured};
use crate::error::{BenchError, Result};
use crate::job::ScenarioSpec;
use crate::launch::peak_of;
use crate::proc;
use crate::report::{PartReport, Peak, Section, mib, num, size};
use authrealm_tokens::revocation::DEFAULT_PREFIX;

use crate::rig::{Rig, random};

async fn seed(
    conn: &mut sqlx::PgConnection,
    tag: &str,
    hash: &str,
    from: u64,
    to: u64,
) -> Result<()> {
    let now = authrealm_tokens::unix_now();
    let mut i = from;
    while i < to {
        let end = (i + 100_000).min(to);
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, disabled_at, created_at, updated_at) \
             SELECT md5($1 || i::text)::uuid::text, 'seed-' || i || '@example.test', NULL, $2, NULL, $3, $3 \
             FROM generate_series($4::bigint, $5::bigint) AS i",
        )
        .bind(tag)
        .bind(hash)
        .bind(now)
        .bind(i64::try_from(i).unwrap_or(i64::MAX))
        .bind(i64::try_from(end - 1).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await
        .map_err(|source| BenchError::Postgres { what: "seeding users", source })?;
        i = end;
    }
    sqlx::query("ANALYZE users")
        .execute(&mut *conn)
        .await
        .map_err(|source| BenchError::Postgres {
            what: "ANALYZE users",
            source,
        })?;
    Ok(())
}

/// Runs the user growth.
///
/// # Errors
/// When a process cannot start, Postgres refuses, or the generator fails.
pub async fn run(rig: &Rig) -> Result<PartReport> {
    let s = &rig.settings;
    rig.flush_redis().await?;
    let prefix = DEFAULT_PREFIX;
    let db = rig.fresh_database().await?;
    let ma = rig.start_ma("MA", prefix).await?;
    let op = rig.start_op("OP", &ma.url, prefix, &db, &[]).await?;
    for p in [ma.pid, op.pid] {
        let _ = proc::reset_peak(p);
    }
    // One user through the API; its hash is the one every seeded row gets.
    let email = format!("first-{}@example.test", random(4)?.to_lowercase());
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/register", op.url))
        .json(&serde_json::json!({"email": email, "password": crate::PASSWORD}))
        .send()
        .await
        .map_err(|e| BenchError::http("register", e))?;
    if r.status().as_u16() != 201 {
        return Err(BenchError::Setup(format!(
            "register answered {}",
            r.status()
        )));
    }
    let mut conn =
        sqlx::PgConnection::connect(&db)
            .await
            .map_err(|source| BenchError::Postgres {
                what: "connect",
                source,
            })?;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&mut conn)
        .await
        .map_err(|source| BenchError::Postgres {
            what: "reading the registered hash",
            source,
        })?;
    let tag = random(4)?;
    let mut section = Section::new(
        "Users in Postgres",
        "Users are added to OP's table in bulk, one size after another. Login (a random seeded user each time) and \
         register (a new address each time) are timed through OP one request at a time for one window each; both \
         are dominated by one argon2id hash. The table size includes its indexes.",
        &[
            "users",
            "login p50 / p99 ms",
            "logins per OP CPU-s",
            "register p50 / p99 ms",
            "table + indexes (MiB)",
        ],
    );
    let mut out = PartReport::default();
    let mut seeded = 0u64;
    let mut p50s = Vec::new();
    for &n in &s.user_sizes {
        eprintln!("  {} users…", size(n));
        seed(&mut conn, &tag, &hash, seeded, n).await?;
        seeded = n;
        let login = rig
            .generator
            .run(&rig.job(
                &[&op],
                1,
                ScenarioSpec::Login {
                    email_pattern: "seed-{i}@example.test".into(),
                    users: n,
                    password: crate::PASSWORD.into(),
                },
            ))
            .await?;
        let register = rig
            .generator
            .run(&rig.job(
                &[&op],
                1,
                ScenarioSpec::Register {
                    tag: random(4)?.to_lowercase(),
                    password: crate::PASSWORD.into(),
                },
            ))
            .await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('users')")
            .fetch_one(&mut conn)
            .await
            .map_err(|source| BenchError::Postgres {
                what: "table size",
                source,
            })?;
        section.row(vec![
            size(n),
            format!("{:.1} / {:.1}", login.p50_ms, login.p99_ms),
            num(login.per_cpu_sec(), 1),
            format!("{:.1} / {:.1}", register.p50_ms, register.p99_ms),
            mib(u64::try_from(bytes).unwrap_or(0)),
        ]);
        if login.failed + register.failed > 0 {
            section.notes.push(format!(
                "At {}: {} logins and {} registrations failed (first: {}).",
                size(n),
                login.failed,
                register.failed,
                login
                    .first_failure
                    .or(register.first_failure)
                    .unwrap_or_default()
            ));
        }
        p50s.push((n, login.p50_ms));
    }
    if let (Some((n0, first)), Some((n1, last))) = (p50s.first(), p50s.last()) {
        out.bars.push(
            Measured::new(bars::USERS_LOGIN, last / first.max(1e-9)).at(format!(
                "{} vs {} users",
                size(*n1),
                size(*n0)
            )),
        );
    }
    out.peaks.push(Peak {
        part: "users".into(),
        ma: peak_of(&[&ma]),
        op: peak_of(&[&op]),
        note: format!("logins and registrations with {} users", size(seeded)),
    });
    out.sections.push(section);
    let (cache, cache_peak) = crate::cache::run(rig, &ma, &db, prefix).await?;
    out.sections.push(cache);
    out.peaks.push(Peak {
        part: "verified-token cache".into(),
        ma: 0,
        op: cache_peak,
        note: format!("the cache at its cap of {}", size(s.token_cache_entries)),
    });
    Ok(out)
}
