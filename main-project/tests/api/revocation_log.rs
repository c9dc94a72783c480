//! OP's reload from the revocation log in a real Redis: read alone once its
//! trust marker has passed (entries that exist only in the log are
//! revoked), then checked against the keys, which adds what a writer that
//! does not log wrote and counts it; not read alone before the marker's
//! time, nor when it holds a record no writer makes (the keys are scanned,
//! as before the log).

use std::time::Duration;

use authrealm_tokens::revocation::{
    LogRecord, RevocationEvent, RevocationKeys, RevocationKind, log_bucket,
};
use authrealm_tokens::testsupport::append_log;
use main_project::revocation::Status;
use redis::aio::MultiplexedConnection;

use crate::helpers::{
    TestResult, canonical_id, claims, eventually, follow, random_suffix, require_env,
};

fn event(kind: RevocationKind, id: &str, at: i64, expires: i64) -> RevocationEvent {
    RevocationEvent {
        kind,
        id: id.to_owned(),
        at,
        expires,
    }
}

/// Appends `events` to the log as MA lays it out, and sets the trust marker.
async fn write_log(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    events: &[RevocationEvent],
    trusted_from: i64,
) -> TestResult {
    let mut pipe = redis::pipe();
    for ev in events {
        let mut record = Vec::new();
        assert!(LogRecord::encode(ev, &mut record));
        append_log(&mut pipe, keys, log_bucket(ev.expires), &record);
    }
    pipe.set(keys.log_trusted_from(), trusted_from).ignore();
    pipe.query_async::<()>(conn).await?;
    Ok(())
}

/// Writes the key of revoked `jti` number `n`, as a writer that does not
/// log would (no record in the log).
async fn unlogged_jti(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    n: u32,
    until: i64,
) -> TestResult {
    let _: () =
        redis::AsyncCommands::set_ex(conn, keys.legacy_jti(&canonical_id(n)), until, 600).await?;
    Ok(())
}

async fn setup() -> TestResult<(redis::Client, MultiplexedConnection, RevocationKeys, i64)> {
    let url = require_env("REDIS_URL")?;
    let client = redis::Client::open(url.as_str())?;
    let conn = client.get_multiplexed_async_connection().await?;
    let keys = RevocationKeys::new(&format!("rlog-{}", random_suffix()?));
    Ok((client, conn, keys, authrealm_tokens::unix_now()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_log_is_read_alone_then_checked_against_the_keys() -> TestResult {
    let (client, mut conn, keys, now) = setup().await?;
    let user = "550e8400-e29b-41d4-a716-446655440000";
    // Entries only in the log (no key at all): only a reload from the log
    // can know them. Enough for several chunks' worth of records, over two
    // buckets; one already forgettable.
    let mut events: Vec<_> = (0..40_000)
        .map(|n| {
            let until = now + 600 + i64::from(n % 2) * 3600;
            event(RevocationKind::Jti, &canonical_id(n), until, until)
        })
        .collect();
    events.push(event(
        RevocationKind::Session,
        "another issuer's sid",
        now + 900,
        now + 900,
    ));
    events.push(event(RevocationKind::User, user, now - 100, now + 900));
    // A later not-before of the same user: the later one holds.
    events.push(event(RevocationKind::User, user, now - 10, now + 900));
    events.push(event(RevocationKind::Jti, "gone", now - 1, now - 1));
    write_log(&mut conn, &keys, &events, now - 1).await?;
    // Written by a writer that does not log: only the check finds it.
    unlogged_jti(&mut conn, &keys, 90_000, now + 600).await?;

    let f = follow(client, keys).await?;
    assert_eq!(f.metrics.revocation_log_reloads.get(), 1);
    let old = now - 60;
    for n in [0, 1, 20_000, 39_999] {
        assert_eq!(
            f.view.check(&claims(&canonical_id(n), "s", "u", old)),
            Status::Revoked,
            "{n}"
        );
    }
    assert_eq!(
        f.view.check(&claims("j", "another issuer's sid", "u", old)),
        Status::Revoked
    );
    assert_eq!(
        f.view.check(&claims("j", "s", user, now - 20)),
        Status::Revoked
    );
    assert_eq!(
        f.view.check(&claims("j", "s", user, now - 5)),
        Status::Valid
    );
    assert_eq!(f.view.check(&claims("gone", "s", "u", old)), Status::Valid);

    let m = f.metrics.clone();
    eventually("the check ran", Duration::from_secs(30), move || {
        let done = m.revocation_checks.get() == 1;
        async move { Ok(done) }
    })
    .await?;
    assert_eq!(f.metrics.revocation_unlogged.get(), 1);
    assert_eq!(
        f.view.check(&claims(&canonical_id(90_000), "s", "u", old)),
        Status::Revoked
    );
    assert_eq!(f.view.counts(), [40_001, 1, 1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_not_read_alone_before_its_trust_marker_nor_without_one() -> TestResult {
    for marker in [Some(3600), None] {
        let (client, mut conn, keys, now) = setup().await?;
        let logged = event(RevocationKind::Jti, &canonical_id(1), now + 600, now + 600);
        write_log(
            &mut conn,
            &keys,
            std::slice::from_ref(&logged),
            now + marker.unwrap_or(0),
        )
        .await?;
        if marker.is_none() {
            let _: () = redis::AsyncCommands::del(&mut conn, keys.log_trusted_from()).await?;
        }
        unlogged_jti(&mut conn, &keys, 2, now + 600).await?;

        let f = follow(client, keys).await?;
        // The keys were scanned: what only the log holds is not known (a
        // writer that logs writes the key too).
        assert_eq!(f.metrics.revocation_log_reloads.get(), 0, "{marker:?}");
        assert_eq!(f.metrics.revocation_resyncs.get(), 1);
        let old = now - 60;
        assert_eq!(
            f.view.check(&claims(&canonical_id(2), "s", "u", old)),
            Status::Revoked
        );
        assert_eq!(
            f.view.check(&claims(&canonical_id(1), "s", "u", old)),
            Status::Valid
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_no_writer_makes_is_not_read_and_the_keys_are_scanned() -> TestResult {
    let odd: [&[u8]; 3] = [
        // An unknown kind.
        &[9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b'x'],
        // A record cut short.
        &[1, 0, 0, 0, 1],
        // An empty id.
        &[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0],
    ];
    for bytes in odd {
        let (client, mut conn, keys, now) = setup().await?;
        write_log(
            &mut conn,
            &keys,
            &[event(
                RevocationKind::Jti,
                &canonical_id(1),
                now + 600,
                now + 600,
            )],
            now - 1,
        )
        .await?;
        let bucket = log_bucket(now + 600);
        let _: () = redis::AsyncCommands::append(&mut conn, keys.log(bucket), bytes).await?;
        unlogged_jti(&mut conn, &keys, 2, now + 600).await?;
        let f = follow(client, keys).await?;
        assert_eq!(f.metrics.revocation_log_reloads.get(), 0, "{bytes:?}");
        assert_eq!(
            f.view.check(&claims(&canonical_id(2), "s", "u", now - 60)),
            Status::Revoked
        );
    }
    // A member of the bucket set that is no bucket number.
    let (client, mut conn, keys, now) = setup().await?;
    write_log(&mut conn, &keys, &[], now - 1).await?;
    let _: () =
        redis::AsyncCommands::zadd(&mut conn, keys.log_buckets(), "a-name", now + 600).await?;
    let f = follow(client, keys).await?;
    assert_eq!(f.metrics.revocation_log_reloads.get(), 0);
    Ok(())
}
