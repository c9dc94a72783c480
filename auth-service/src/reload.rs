//! Polling a file of a mounted Secret (the key set, the client registry):
//! read it every interval, and hand what was read to the owner only when it
//! differs from what was seen last, so a file that stays the same — valid or
//! not — is parsed, logged and counted once.
//!
//! A Secret volume swaps its `..data` symlink atomically, so each read sees
//! one whole version of the file.

use std::path::PathBuf;
use std::time::Duration;

use authrealm_tokens::digest::sha256;

/// What one poll found.
#[derive(Debug)]
pub enum Content {
    /// The file's bytes (different from the last ones seen).
    Bytes(Vec<u8>),
    /// The file (or its directory) does not exist.
    Missing,
    /// The file exists but cannot be read.
    Unreadable(std::io::Error),
}

/// What was seen last, to tell a change from a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Digest([u8; 32]),
    Missing,
    Unreadable,
}

/// Reads `path` every `interval` (the first read one interval from now) and
/// calls `changed` with each new content. `initial` is the digest of the
/// content already in use (`None`: the file was missing at start).
pub async fn poll(
    path: PathBuf,
    interval: Duration,
    initial: Option<[u8; 32]>,
    mut changed: impl FnMut(Content) + Send,
) {
    let mut last = initial.map_or(Seen::Missing, Seen::Digest);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let (seen, content) = match tokio::fs::read(&path).await {
            Ok(bytes) => (Seen::Digest(sha256(&bytes)), Content::Bytes(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Seen::Missing, Content::Missing),
            Err(e) => (Seen::Unreadable, Content::Unreadable(e)),
        };
        if seen != last {
            last = seen;
            changed(content);
        }
    }
}
