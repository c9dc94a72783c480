//! The in-memory store: the same records and decisions as the Redis store,
//! under one mutex (so every operation is atomic), with expiry judged
//! against the `now` each call passes in. Revocation events go to an
//! in-process broadcast channel.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use authrealm_tokens::revocation::{RevocationEvent, RevocationKind};
use tokio::sync::broadcast;

use super::{
    CodeRecord, NewSession, RedeemOutcome, Redemption, RevocationState, RotateOutcome, Rotation,
    SessionInfo, StoredCode,
};
use crate::opaque::{Digest, Presented};

/// A session: what the Redis record holds (see [`super::record`]).
#[derive(Debug)]
struct Family {
    sub: String,
    claims_json: String,
    client: String,
    created: i64,
    /// When the newest refresh token expires.
    exp: i64,
    /// Its digest; `None`: the session has no refresh token.
    current: Option<Digest>,
    /// Spent tokens and their expiry, oldest first.
    spent: Vec<(Digest, i64)>,
    /// The last rotation's successor JSON and when it was handed out.
    successor: Option<(String, i64)>,
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<String, Family>,
    /// Each user's sessions, for "log out everywhere".
    user_sids: HashMap<String, HashSet<String>>,
    revoked_jti: HashMap<String, i64>,
    revoked_sid: HashMap<String, i64>,
    /// Not-before time and when it may be forgotten, by user.
    not_before: HashMap<String, (i64, i64)>,
    /// Authorization codes by hash.
    codes: HashMap<String, StoredCode>,
    last_purge: i64,
}

/// Seconds between sweeps of expired entries.
const PURGE_EVERY_SECS: i64 = 60;

impl State {
    fn purge(&mut self, now: i64) {
        if now - self.last_purge < PURGE_EVERY_SECS {
            return;
        }
        self.last_purge = now;
        self.families.retain(|_, f| f.exp > now);
        let families = &self.families;
        self.user_sids.retain(|_, sids| {
            sids.retain(|sid| families.contains_key(sid));
            !sids.is_empty()
        });
        self.revoked_jti.retain(|_, until| *until > now);
        self.revoked_sid.retain(|_, until| *until > now);
        self.not_before.retain(|_, (_, until)| *until > now);
        self.codes.retain(|_, c| c.record.exp > now);
    }

    /// Records a session and its first refresh token (if any).
    fn insert_session(&mut self, s: &NewSession<'_>) {
        self.families.insert(
            s.sid.to_owned(),
            Family {
                sub: s.sub.to_owned(),
                claims_json: s.claims_json.to_owned(),
                client: s.client.to_owned(),
                created: s.now,
                exp: s.refresh_exp,
                current: s.refresh_digest,
                spent: Vec::new(),
                successor: None,
            },
        );
        self.user_sids
            .entry(s.sub.to_owned())
            .or_default()
            .insert(s.sid.to_owned());
    }

    /// Whether the user logged out everywhere after `at`.
    fn logged_out_since(&self, sub: &str, at: i64, now: i64) -> bool {
        self.not_before
            .get(sub)
            .is_some_and(|(nb, until)| *until > now && at < *nb)
    }

    fn live_family(&self, sid: &str, now: i64) -> Option<&Family> {
        self.families.get(sid).filter(|f| f.exp > now)
    }

    /// Ends a session; the event to publish once the lock is released.
    fn revoke_family(&mut self, sid: &str, now: i64, ttl: i64) -> RevocationEvent {
        if let Some(f) = self.families.remove(sid)
            && let Some(sids) = self.user_sids.get_mut(&f.sub)
        {
            sids.remove(sid);
        }
        let until = now + ttl;
        self.revoked_sid.insert(sid.to_owned(), until);
        RevocationEvent {
            kind: RevocationKind::Session,
            id: sid.to_owned(),
            at: until,
            expires: until,
        }
    }
}

impl Family {
    /// Whether `digest` is one of the session's spent tokens that has not
    /// expired; `Some(true)` when it is the last one spent.
    fn spent_token(&self, digest: &Digest, now: i64) -> Option<bool> {
        let at = self.spent.iter().position(|(d, _)| d == digest)?;
        (self.spent[at].1 > now).then_some(at + 1 == self.spent.len())
    }
}

/// Families and revocations in process memory.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    events: broadcast::Sender<RevocationEvent>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            events: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, events: Vec<RevocationEvent>) {
        for e in events {
            // No subscriber is fine: nobody in this process verifies tokens.
            let _ = self.events.send(e);
        }
    }

    /// Revocation events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<RevocationEvent> {
        self.events.subscribe()
    }

    /// Every revocation in force at `now`, and the events from then on: a
    /// follower misses nothing in between (events are sent after the lock
    /// is released, so one may arrive both ways; applying it twice is
    /// harmless).
    #[must_use]
    pub fn follow(&self, now: i64) -> (Vec<RevocationEvent>, broadcast::Receiver<RevocationEvent>) {
        let st = self.lock();
        let receiver = self.events.subscribe();
        let entry = |kind, id: &String, at, expires| RevocationEvent {
            kind,
            id: id.clone(),
            at,
            expires,
        };
        let mut live = Vec::new();
        for (jti, until) in st.revoked_jti.iter().filter(|(_, u)| **u > now) {
            live.push(entry(RevocationKind::Jti, jti, *until, *until));
        }
        for (sid, until) in st.revoked_sid.iter().filter(|(_, u)| **u > now) {
            live.push(entry(RevocationKind::Session, sid, *until, *until));
        }
        for (sub, (nb, until)) in st.not_before.iter().filter(|(_, (_, u))| *u > now) {
            live.push(entry(RevocationKind::User, sub, *nb, *until));
        }
        (live, receiver)
    }

    pub(super) fn create_session(&self, s: &NewSession<'_>) {
        let mut st = self.lock();
        st.purge(s.now);
        st.insert_session(s);
    }

    pub(super) fn put_code(&self, hash: &str, record: &CodeRecord) {
        let mut st = self.lock();
        st.purge(record.iat);
        st.codes.insert(
            hash.to_owned(),
            StoredCode {
                record: record.clone(),
                used: false,
            },
        );
    }

    pub(super) fn get_code(&self, hash: &str, now: i64) -> Option<StoredCode> {
        let st = self.lock();
        st.codes.get(hash).filter(|c| c.record.exp > now).cloned()
    }

    pub(super) fn redeem_code(&self, r: &Redemption<'_>) -> RedeemOutcome {
        let s = &r.session;
        let mut events = Vec::new();
        let outcome = {
            let mut st = self.lock();
            st.purge(s.now);
            let used = match st.codes.get(r.code_hash).filter(|c| c.record.exp > s.now) {
                None => return RedeemOutcome::Invalid,
                Some(c) => c.used,
            };
            if st.logged_out_since(s.sub, r.code_iat, s.now) {
                return RedeemOutcome::Invalid;
            }
            if used {
                events.push(st.revoke_family(s.sid, s.now, r.revoke_ttl));
                RedeemOutcome::Reused
            } else {
                if let Some(c) = st.codes.get_mut(r.code_hash) {
                    c.used = true;
                }
                st.insert_session(s);
                RedeemOutcome::Redeemed
            }
        };
        self.publish(events);
        outcome
    }

    pub(super) fn rotate(&self, r: &Rotation<'_>) -> RotateOutcome {
        let mut events = Vec::new();
        let outcome = {
            let mut st = self.lock();
            st.purge(r.now);
            rotate_locked(&mut st, r, &mut events)
        };
        self.publish(events);
        outcome
    }

    pub(super) fn revoke_jti(&self, jti: &str, exp: i64, now: i64) {
        {
            let mut st = self.lock();
            st.purge(now);
            st.revoked_jti.insert(jti.to_owned(), exp);
        }
        self.publish(vec![RevocationEvent {
            kind: RevocationKind::Jti,
            id: jti.to_owned(),
            at: exp,
            expires: exp,
        }]);
    }

    pub(super) fn revoke_refresh(
        &self,
        token: &Presented<'_>,
        client: Option<&str>,
        now: i64,
        ttl: i64,
    ) -> Option<String> {
        let Presented::Session { sid, digest } = token else {
            return None;
        };
        let event = {
            let mut st = self.lock();
            let family = st.live_family(sid, now)?;
            if client.is_some_and(|c| c != family.client) {
                return None;
            }
            if family.current.as_ref() != Some(digest) && family.spent_token(digest, now).is_none()
            {
                return None;
            }
            st.revoke_family(sid, now, ttl)
        };
        self.publish(vec![event]);
        Some((*sid).to_owned())
    }

    pub(super) fn revoke_session(&self, sid: &str, now: i64, ttl: i64) -> bool {
        let (live, event) = {
            let mut st = self.lock();
            let live = st.live_family(sid, now).is_some();
            (live, st.revoke_family(sid, now, ttl))
        };
        self.publish(vec![event]);
        live
    }

    pub(super) fn revoke_user(&self, sub: &str, now: i64, ttl: i64) -> Vec<String> {
        let mut events = Vec::new();
        let revoked = {
            let mut st = self.lock();
            st.purge(now);
            st.not_before.insert(sub.to_owned(), (now, now + ttl));
            let mut revoked = Vec::new();
            for sid in st.user_sids.remove(sub).unwrap_or_default() {
                if st.live_family(&sid, now).is_some() {
                    events.push(st.revoke_family(&sid, now, ttl));
                    revoked.push(sid);
                }
            }
            revoked
        };
        events.push(RevocationEvent {
            kind: RevocationKind::User,
            id: sub.to_owned(),
            at: now,
            expires: now + ttl,
        });
        self.publish(events);
        revoked
    }

    pub(super) fn revocation_state(
        &self,
        jti: &str,
        sid: &str,
        sub: &str,
        now: i64,
    ) -> RevocationState {
        let st = self.lock();
        RevocationState {
            jti: st.revoked_jti.get(jti).is_some_and(|until| *until > now),
            session: st.revoked_sid.get(sid).is_some_and(|until| *until > now),
            not_before: st
                .not_before
                .get(sub)
                .filter(|(_, until)| *until > now)
                .map(|(nb, _)| *nb),
        }
    }
}

fn rotate_locked(
    st: &mut State,
    r: &Rotation<'_>,
    events: &mut Vec<RevocationEvent>,
) -> RotateOutcome {
    // Tokens of the old shape were only ever recorded in Redis.
    let Presented::Session { digest, .. } = r.presented else {
        return RotateOutcome::Invalid;
    };
    let Some(fam) = st.live_family(r.sid, r.now) else {
        return RotateOutcome::Invalid;
    };
    if st.logged_out_since(&fam.sub, fam.created, r.now) {
        return RotateOutcome::Invalid;
    }
    if fam.client != r.client {
        return RotateOutcome::WrongClient;
    }
    let info = SessionInfo {
        sid: r.sid.to_owned(),
        sub: fam.sub.clone(),
        claims_json: fam.claims_json.clone(),
    };
    if fam.current.as_ref() != Some(digest) {
        let Some(last) = fam.spent_token(digest, r.now) else {
            return RotateOutcome::Invalid;
        };
        if last
            && let Some((json, at)) = &fam.successor
            && r.now - at <= r.grace_secs
        {
            return RotateOutcome::Repeat(info, json.clone());
        }
        events.push(st.revoke_family(r.sid, r.now, r.revoke_ttl));
        return RotateOutcome::Reused {
            sid: r.sid.to_owned(),
        };
    }
    if let Some(f) = st.families.get_mut(r.sid) {
        let now = r.now;
        f.spent.retain(|(_, exp)| *exp > now);
        f.spent.push((*digest, f.exp));
        f.current = Some(r.new_digest);
        f.exp = r.refresh_exp;
        f.successor = Some((r.successor_json.to_owned(), r.now));
    }
    RotateOutcome::Rotated(info)
}
