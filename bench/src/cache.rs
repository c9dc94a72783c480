//! OP's verified-token cache at its cap: a replica is sent as many distinct
//! tokens as the cache holds, and its resident memory is compared before
//! and after; then half as many again, past the cap.

use std::time::Duration;

use crate::error::Result;
use crate::job::ScenarioSpec;
use crate::launch::Server;
use crate::proc;
use crate::report::{Section, mib, num, size};
use crate::rig::Rig;

/// Fills a new replica's cache to its cap and past it; the section and OP's peak RSS.
///
/// # Errors
/// When the replica cannot start or the generator fails.
pub async fn run(rig: &Rig, ma: &Server, db: &str, prefix: &str) -> Result<(Section, u64)> {
    let s = &rig.settings;
    let cap = s.token_cache_entries;
    eprintln!("  verified-token cache at {}…", size(cap));
    let op = rig
        .start_op(
            "OP (cache)",
            &ma.url,
            prefix,
            db,
            &[(
                authrealm_runtime::env::op::TOKEN_CACHE_ENTRIES,
                cap.to_string(),
            )],
        )
        .await?;
    // OP caches a token on its second sighting: each is sent twice in a
    // row. Connections still in flight when the count is reached send one
    // more each: sign that many extra so no token comes back later.
    let fresh = |tokens: u64| ScenarioSpec::FreshTokens {
        path: "/api/v1/session".into(),
        keyset: rig.keyset_path(),
        issuer: rig.issuer.clone(),
        tokens: usize::try_from(tokens).unwrap_or(usize::MAX) + s.concurrency,
        sends_each: 2,
    };
    let limit = Duration::from_secs(600);
    // A small first batch settles the allocator and runtime before the base reading.
    let warm = (cap / 100).max(10);
    rig.generator
        .run(&rig.count_job(&[&op], s.concurrency, 2 * warm, limit, fresh(warm)))
        .await?;
    let base = proc::rss(op.pid)?;
    let fill = cap.saturating_sub(warm);
    let filled = rig
        .generator
        .run(&rig.count_job(&[&op], s.concurrency, 2 * fill, limit, fresh(fill)))
        .await?;
    let at_cap = proc::rss(op.pid)?;
    let past = cap / 2;
    let passed = rig
        .generator
        .run(&rig.count_job(&[&op], s.concurrency, 2 * past, limit, fresh(past)))
        .await?;
    let after = proc::rss(op.pid)?;
    let per_entry = (at_cap as f64 - base as f64) / (filled.ok / 2).max(1) as f64;
    let mut section = Section::new(
        "Verified-token cache at its cap",
        format!(
            "A new OP replica with `AUTHREALM_TOKEN_CACHE_ENTRIES={cap}` is sent {} distinct tokens, then {} more, \
             each twice in a row (OP caches a token on its second sighting). RSS is the process's resident memory.",
            num(cap as f64, 0),
            num(past as f64, 0)
        ),
        &[
            "cap",
            "RSS before (MiB)",
            "RSS at the cap (MiB)",
            "bytes per cached token",
            "RSS after passing the cap (MiB)",
            "peak RSS (MiB)",
        ],
    );
    section.header[1] = format!("RSS with {} cached (MiB)", size(warm));
    section.row(vec![
        size(cap),
        mib(base),
        mib(at_cap),
        num(per_entry, 0),
        mib(after),
        mib(proc::peak_rss(op.pid).unwrap_or(0)),
    ]);
    if filled.failed + passed.failed > 0 {
        section.notes.push(format!(
            "{} requests failed (first: {}).",
            filled.failed + passed.failed,
            filled
                .first_failure
                .or(passed.first_failure)
                .unwrap_or_default()
        ));
    }
    Ok((section, proc::peak_rss(op.pid).unwrap_or(0)))
}
