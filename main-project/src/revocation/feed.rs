//! Keeping the view current without Redis: MA's in-memory store serves its
//! revocations as a feed (`GET /v1/revocations` on the internal API, see
//! [`authrealm_tokens::api::FeedLine`]): every revocation in force, then
//! `synced`, then each new one as it happens, with a ping every few
//! seconds. The view is known from `synced` on; a feed that ends, breaks or
//! stays silent for three ping intervals makes it unknown until the next
//! connection has synced again. So a local run has the semantics of a
//! cluster with Redis: a revocation MA makes on its own (reuse of a spent
//! refresh token ends the session) reaches this replica at once.

use std::sync::Arc;
use std::time::Duration;

use authrealm_tokens::api::{FEED_PING_SECS, FeedLine};

use super::RevocationView;
use crate::auth_client::AuthClient;

/// Longest line accepted from the feed (an event is a few hundred bytes).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Follows MA's revocation feed until the task is dropped, reconnecting
/// with backoff after any failure.
pub async fn follow_feed(ma: AuthClient, view: Arc<RevocationView>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = follow_once(&ma, &view).await;
        view.set_known(false);
        if outcome.synced {
            backoff = Duration::from_millis(100);
        }
        tracing::warn!(reason = %outcome.reason, "revocation feed from the auth-service lost; state unknown until it has synced again");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// How one connection ended.
struct Outcome {
    /// Whether it got as far as `synced` (then a reconnect is quick).
    synced: bool,
    /// Why it ended, for the log (never a token: events carry ids only).
    reason: String,
}

async fn follow_once(ma: &AuthClient, view: &RevocationView) -> Outcome {
    let mut synced = false;
    let reason = match read(ma, view, &mut synced).await {
        Ok(()) => "the auth-service ended the feed".to_owned(),
        Err(e) => e,
    };
    Outcome { synced, reason }
}

async fn read(ma: &AuthClient, view: &RevocationView, synced: &mut bool) -> Result<(), String> {
    let mut resp = ma.revocation_feed().await.map_err(|e| e.to_string())?;
    let silence = Duration::from_secs(3 * FEED_PING_SECS);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::time::timeout(silence, resp.chunk())
            .await
            .map_err(|_| format!("no line for {}s", silence.as_secs()))?
            .map_err(|e| format!("reading the feed failed: {}", e.without_url()))?;
        let Some(chunk) = chunk else { return Ok(()) };
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<FeedLine>(line) {
                Ok(FeedLine::Revocation(ev)) => view.apply(&ev),
                Ok(FeedLine::Synced) => {
                    *synced = true;
                    view.set_known(true);
                }
                Ok(FeedLine::Ping) => {}
                Err(e) => return Err(format!("a feed line is not a known event: {e}")),
            }
        }
        if buf.len() > MAX_LINE_BYTES {
            return Err("a feed line is longer than 64 KiB".to_owned());
        }
    }
}
