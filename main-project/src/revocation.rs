//! The local view of the revocation list: revoked `jti`s, revoked sessions
//! and per-user not-before times, each with the time after which it can be
//! forgotten. Checked on every protected request with one read lock and
//! three lookups in compact tables ([`table`]).
//!
//! Redis is where revocations are shared, not the only memory: the view only
//! ever *adds* what it learns (events, scans) and forgets an entry only after
//! its own expiry. With Redis, [`follow_redis`] keeps it current and heals
//! Redis when it lost its data ([`redis`]). Without Redis, [`follow_feed`]
//! reads the same revocations from MA's in-memory store ([`feed`]).

pub mod feed;
mod log;
mod page;
pub mod redis;
pub mod table;

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use authrealm_tokens::AccessClaims;
use authrealm_tokens::revocation::{RevocationEvent, RevocationKind};

pub use self::feed::follow_feed;
pub use self::redis::follow_redis;
use self::table::{Id, Key, Table};
use crate::metrics::Metrics;

/// What the view says about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not revoked, and the view is current.
    Valid,
    /// Revoked.
    Revoked,
    /// Not revoked as far as the view knows, but the view may be stale (Redis down).
    Unknown,
}

/// A per-user not-before time and when it may be forgotten (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NotBefore {
    at: u32,
    until: u32,
}

/// Unix seconds as stored in the tables (until 2106; earlier clamps to 0).
fn secs(t: i64) -> u32 {
    u32::try_from(t.clamp(0, i64::from(u32::MAX))).unwrap_or(u32::MAX)
}

/// One revocation as a scan of Redis reads it, its id decoded already (so
/// a page is decoded before the view is locked, and no id is a `String`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What kind of revocation.
    pub kind: RevocationKind,
    /// The `jti`, `sid` or `sub`.
    pub id: Id,
    /// As [`RevocationEvent::at`].
    pub at: i64,
    /// As [`RevocationEvent::expires`].
    pub expires: i64,
}

#[derive(Default)]
struct Entries {
    /// jti -> forget after.
    jti: Table<u32>,
    /// sid -> forget after.
    sid: Table<u32>,
    /// sub -> not before.
    user: Table<NotBefore>,
}

impl Entries {
    fn add(&mut self, ev: &RevocationEvent) {
        let _ = self.insert(ev.kind, Key::of(&ev.id), ev.at, ev.expires);
    }

    fn insert<T: Into<Box<str>>>(
        &mut self,
        kind: RevocationKind,
        id: Key<T>,
        at: i64,
        expires: i64,
    ) -> bool {
        let until = secs(expires);
        match kind {
            RevocationKind::Jti => self.jti.upsert_key(id, until, u32::max).is_none(),
            RevocationKind::Session => self.sid.upsert_key(id, until, u32::max).is_none(),
            RevocationKind::User => {
                let nb = NotBefore {
                    at: secs(at),
                    until,
                };
                self.user
                    .upsert_key(id, nb, |a, b| NotBefore {
                        at: a.at.max(b.at),
                        until: a.until.max(b.until),
                    })
                    .is_none_or(|before| before.at < nb.at)
            }
        }
    }

    fn revokes(&self, claims: &AccessClaims) -> bool {
        self.jti.get(&claims.jti).is_some()
            || self.sid.get(&claims.sid).is_some()
            || self
                .user
                .get(&claims.sub)
                .is_some_and(|nb| claims.iat < i64::from(nb.at))
    }

    fn purge(&mut self, now: i64) {
        let now32 = secs(now);
        self.jti.retain(|until| *until > now32);
        self.sid.retain(|until| *until > now32);
        self.user.retain(|nb| nb.until > now32);
    }
}

/// The revocation view shared by every request of one instance.
pub struct RevocationView {
    entries: RwLock<Entries>,
    known: AtomicBool,
    metrics: Metrics,
}

impl std::fmt::Debug for RevocationView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationView")
            .field("known", &self.is_known())
            .finish_non_exhaustive()
    }
}

impl RevocationView {
    /// An empty view; `known` is true without Redis (nothing else can revoke).
    #[must_use]
    pub fn new(known: bool, metrics: Metrics) -> Self {
        metrics.revocation_known.set(i64::from(known));
        Self {
            entries: RwLock::new(Entries::default()),
            known: AtomicBool::new(known),
            metrics,
        }
    }

    /// Whether the view is known to be current.
    #[must_use]
    pub fn is_known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    pub(crate) fn set_known(&self, known: bool) {
        self.known.store(known, Ordering::Release);
        self.metrics.revocation_known.set(i64::from(known));
    }

    /// Checks a verified token's claims.
    #[must_use]
    pub fn check(&self, claims: &AccessClaims) -> Status {
        self.status(|e| e.revokes(claims))
    }

    /// Revoked when `revokes` says so of the entries; otherwise valid while
    /// the view is known to be current.
    fn status(&self, revokes: impl FnOnce(&Entries) -> bool) -> Status {
        let revoked = match self.entries.read() {
            Ok(e) => revokes(&e),
            // A poisoned lock means a panic elsewhere; do not guess.
            Err(_) => return Status::Unknown,
        };
        if revoked {
            Status::Revoked
        } else if self.is_known() {
            Status::Valid
        } else {
            Status::Unknown
        }
    }

    /// Applies one event (from the channel, or recorded locally).
    pub fn apply(&self, ev: &RevocationEvent) {
        self.metrics
            .revocation_events
            .with_label_values(&[ev.kind.as_str()])
            .inc();
        self.merge(std::slice::from_ref(ev));
    }

    /// Adds a batch (one page of a scan). Nothing already known is lost: an
    /// entry present in both keeps the later expiry.
    pub fn merge(&self, events: &[RevocationEvent]) {
        if let Ok(mut e) = self.entries.write() {
            for ev in events {
                e.add(ev);
            }
            self.count(&e);
        }
    }

    /// Adds a page of a reload, decoded already: as
    /// [`RevocationView::merge`], under one write lock. Returns how many
    /// entries were new to the view (an id it did not hold, or a not-before
    /// time later than the one it held).
    pub fn merge_entries(&self, entries: Vec<Entry>) -> usize {
        let Ok(mut e) = self.entries.write() else {
            return 0;
        };
        let mut new = 0;
        for en in entries {
            new += usize::from(e.insert(en.kind, en.id, en.at, en.expires));
        }
        self.count(&e);
        new
    }

    /// Forgets entries whose tokens have all expired.
    pub fn purge(&self, now: i64) {
        if let Ok(mut e) = self.entries.write() {
            e.purge(now);
            self.count(&e);
        }
    }

    /// Every entry still live at `now`, as the events that would recreate it
    /// (the heal writes these back to Redis).
    #[must_use]
    pub fn live(&self, now: i64) -> Vec<RevocationEvent> {
        let Ok(e) = self.entries.read() else {
            return Vec::new();
        };
        let now32 = secs(now);
        let mut out = Vec::with_capacity(e.jti.len() + e.sid.len() + e.user.len());
        for (table, kind) in [
            (&e.jti, RevocationKind::Jti),
            (&e.sid, RevocationKind::Session),
        ] {
            table.for_each(|id, until| {
                if until > now32 {
                    let t = i64::from(until);
                    out.push(RevocationEvent {
                        kind,
                        id,
                        at: t,
                        expires: t,
                    });
                }
            });
        }
        e.user.for_each(|id, nb| {
            if nb.until > now32 {
                out.push(RevocationEvent {
                    kind: RevocationKind::User,
                    id,
                    at: i64::from(nb.at),
                    expires: i64::from(nb.until),
                });
            }
        });
        out
    }

    /// Entries by kind: jti, session, user.
    #[must_use]
    pub fn counts(&self) -> [usize; 3] {
        self.entries
            .read()
            .map(|e| [e.jti.len(), e.sid.len(), e.user.len()])
            .unwrap_or_default()
    }

    fn count(&self, e: &Entries) {
        let m = &self.metrics.revocation_entries;
        for (kind, n) in [
            (RevocationKind::Jti, e.jti.len()),
            (RevocationKind::Session, e.sid.len()),
            (RevocationKind::User, e.user.len()),
        ] {
            m.with_label_values(&[kind.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Records what logout-all ended, effective here at once: every token of
    /// `claims.sub` issued before `not_before`, for `life` seconds, and the
    /// session of `claims` itself (tokens minted in the same second as
    /// `not_before`; MA's events end the user's other sessions).
    pub fn end_user(&self, claims: &AccessClaims, not_before: i64, life: i64) {
        let until = not_before.saturating_add(life);
        self.apply(&RevocationEvent {
            kind: RevocationKind::User,
            id: claims.sub.clone(),
            at: not_before,
            expires: until,
        });
        self.apply(&RevocationEvent {
            kind: RevocationKind::Session,
            id: claims.sid.clone(),
            at: not_before,
            expires: until,
        });
    }

    /// Whether a browser session is still live: none of its MA sessions
    /// `sids` is revoked and no "log out everywhere" of `sub` came after
    /// `auth_time`. [`Status::Unknown`] while the view may be stale.
    #[must_use]
    pub fn check_browser_session(&self, sub: &str, sids: &[String], auth_time: i64) -> Status {
        self.status(|e| {
            sids.iter().any(|s| e.sid.get(s).is_some())
                || e.user
                    .get(sub)
                    .is_some_and(|nb| auth_time < i64::from(nb.at))
        })
    }

    /// Records that the MA session `sid` ended, effective here at once,
    /// for `life` seconds from `now`.
    pub fn end_sid(&self, sid: &str, now: i64, life: i64) {
        self.apply(&RevocationEvent {
            kind: RevocationKind::Session,
            id: sid.to_owned(),
            at: now,
            expires: now.saturating_add(life),
        });
    }

    /// Records that the session of `claims` ended (logout), effective here at
    /// once whatever the channel does, until every token of it has expired.
    pub fn end_session(&self, claims: &AccessClaims, now: i64, life: i64) {
        self.apply(&RevocationEvent {
            kind: RevocationKind::Session,
            id: claims.sid.clone(),
            at: now,
            expires: now.saturating_add(life),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authrealm_tokens::testsupport::access_claims as claims;

    fn ev(kind: RevocationKind, id: &str, at: i64, expires: i64) -> RevocationEvent {
        RevocationEvent {
            kind,
            id: id.into(),
            at,
            expires,
        }
    }

    #[test]
    fn each_kind_revokes_what_it_names() -> Result<(), Box<dyn std::error::Error>> {
        let v = RevocationView::new(true, Metrics::new()?);
        let c = claims("j1", "s1", "u1", 1000);
        assert_eq!(v.check(&c), Status::Valid);
        v.apply(&ev(RevocationKind::Jti, "j1", 1300, 1300));
        assert_eq!(v.check(&c), Status::Revoked);
        assert_eq!(v.check(&claims("j2", "s1", "u1", 1000)), Status::Valid);
        v.apply(&ev(RevocationKind::Session, "s1", 1360, 1360));
        assert_eq!(v.check(&claims("j2", "s1", "u1", 1000)), Status::Revoked);
        v.apply(&ev(RevocationKind::User, "u2", 1100, 1460));
        assert_eq!(v.check(&claims("j3", "s3", "u2", 1099)), Status::Revoked);
        // Issued at or after the not-before time: a new login, accepted.
        assert_eq!(v.check(&claims("j4", "s4", "u2", 1100)), Status::Valid);
        // Expired entries are forgotten.
        v.purge(1301);
        assert_eq!(v.check(&c), Status::Revoked); // still the session
        v.purge(1500);
        assert_eq!(v.check(&c), Status::Valid);
        assert_eq!(v.check(&claims("j3", "s3", "u2", 1099)), Status::Valid);
        // While the view may be stale, what it knows is still revoked.
        v.set_known(false);
        assert_eq!(v.check(&c), Status::Unknown);
        v.apply(&ev(RevocationKind::Jti, "j1", 1800, 1800));
        assert_eq!(v.check(&c), Status::Revoked);
        Ok(())
    }

    #[test]
    fn a_decoded_page_merges_as_its_events_would() -> Result<(), Box<dyn std::error::Error>> {
        let events = [
            ev(RevocationKind::Jti, "AAAAAAAAAAAAAAAAAAAAAQ", 2000, 2000),
            ev(
                RevocationKind::Session,
                "an id of another shape",
                2100,
                2100,
            ),
            ev(
                RevocationKind::User,
                "550e8400-e29b-41d4-a716-446655440000",
                1500,
                2200,
            ),
        ];
        let by_events = RevocationView::new(true, Metrics::new()?);
        by_events.merge(&events);
        let by_entries = RevocationView::new(true, Metrics::new()?);
        by_entries.apply(&ev(
            RevocationKind::Jti,
            "AAAAAAAAAAAAAAAAAAAAAQ",
            2500,
            2500,
        ));
        by_entries.merge_entries(
            events
                .iter()
                .map(|e| Entry {
                    kind: e.kind,
                    id: Id::parse(&e.id),
                    at: e.at,
                    expires: e.expires,
                })
                .collect(),
        );
        assert_eq!(by_entries.counts(), [1, 1, 1]);
        let sorted = |v: &RevocationView| {
            let mut live = v.live(1000);
            live.sort_by(|a, b| a.id.cmp(&b.id));
            live
        };
        let mut expected = sorted(&by_events);
        // The later expiry the view held already is kept.
        for e in &mut expected {
            if e.kind == RevocationKind::Jti {
                (e.at, e.expires) = (2500, 2500);
            }
        }
        assert_eq!(sorted(&by_entries), expected);
        Ok(())
    }

    #[test]
    fn a_merge_adds_and_never_shortens() -> Result<(), Box<dyn std::error::Error>> {
        let v = RevocationView::new(true, Metrics::new()?);
        v.apply(&ev(RevocationKind::Jti, "j1", 2000, 2000));
        v.apply(&ev(RevocationKind::User, "u1", 1500, 2000));
        // A rescan of a Redis that lost j1 and knows an older not-before.
        v.merge(&[
            ev(RevocationKind::Session, "s9", 1800, 1800),
            ev(RevocationKind::User, "u1", 1200, 1900),
        ]);
        assert_eq!(v.check(&claims("j1", "s1", "u0", 1000)), Status::Revoked);
        assert_eq!(v.check(&claims("j2", "s9", "u0", 1000)), Status::Revoked);
        assert_eq!(v.check(&claims("j3", "s3", "u1", 1400)), Status::Revoked);
        assert_eq!(v.counts(), [1, 1, 1]);
        let mut live = v.live(1850);
        live.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(
            live,
            vec![
                ev(RevocationKind::Jti, "j1", 2000, 2000),
                ev(RevocationKind::User, "u1", 1500, 2000),
            ]
        );
        Ok(())
    }
}
