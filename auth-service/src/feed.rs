//! The revocation feed of the memory store (`GET /v1/revocations`): what a
//! verifier follows when there is no Redis channel — every revocation in
//! force, then `synced`, then each new one as it happens, so a session that
//! ends by refresh-token reuse (or any revocation OP did not make itself)
//! is rejected at once, as with Redis.

use std::convert::Infallible;
use std::time::Duration;

use authrealm_tokens::api::{FEED_PING_SECS, FeedLine};
use authrealm_tokens::revocation::RevocationEvent;
use axum::body::{Body, Bytes};
use futures::StreamExt as _;
use tokio::sync::{broadcast, watch};

/// The NDJSON body: `snapshot`, `synced`, then live events and pings until
/// the follower lags behind the channel, the store goes away, or `stopping`
/// turns true.
pub fn body(
    snapshot: Vec<RevocationEvent>,
    events: broadcast::Receiver<RevocationEvent>,
    stopping: watch::Receiver<bool>,
) -> Body {
    let head = snapshot
        .into_iter()
        .map(FeedLine::Revocation)
        .chain(std::iter::once(FeedLine::Synced))
        .map(|l| Ok::<_, Infallible>(line(&l)));
    let mut ping = tokio::time::interval(Duration::from_secs(FEED_PING_SECS));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let live = futures::stream::unfold(
        (events, ping, stopping),
        |(mut events, mut ping, mut stopping)| async move {
            let next = tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => FeedLine::Revocation(ev),
                    // Lagged: the follower must resync; closed: nothing more comes.
                    Err(_) => return None,
                },
                _ = ping.tick() => FeedLine::Ping,
                _ = stopping.wait_for(|s| *s) => return None,
            };
            Some((Ok(line(&next)), (events, ping, stopping)))
        },
    );
    Body::from_stream(futures::stream::iter(head).chain(live))
}

fn line(l: &FeedLine) -> Bytes {
    let mut bytes = serde_json::to_vec(l).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}
