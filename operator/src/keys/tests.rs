//! The rotation timeline, rotate-now, revocation, algorithm change and the replica gate.

use super::*;
use std::collections::BTreeSet;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn policy() -> KeyPolicy {
    KeyPolicy {
        algorithm: SigningAlgorithm::EdDSA,
        rotation_interval: 30 * DAY,
        pre_publish: HOUR,
        retire_after: 15 * 60 + 60 + 120,
    }
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("k{n}")
    }
}

fn state_of(keys: &[KeyMeta], kid: &str) -> Option<KeyState> {
    keys.iter().find(|k| k.kid == kid).map(|k| k.state)
}

#[test]
fn a_new_realm_gets_an_active_and_a_next_key() {
    let s = step(
        &[],
        &policy(),
        &BTreeSet::new(),
        false,
        1000,
        &mut counter(),
    );
    assert_eq!(state_of(&s.keys, "k1"), Some(KeyState::Active));
    assert_eq!(state_of(&s.keys, "k2"), Some(KeyState::Next));
    assert_eq!(s.next_rotation, Some(1000 + 30 * DAY));
    assert_eq!(s.next_event, s.next_rotation);
    assert!(!s.rotated);
}

#[test]
fn the_timeline_of_one_rotation() {
    let p = policy();
    let mut kid = counter();
    let none = BTreeSet::new();
    let t0 = 1000;
    let s0 = step(&[], &p, &none, false, t0, &mut kid);
    // Nothing happens until the interval is over.
    let s1 = step(&s0.keys, &p, &none, false, t0 + 30 * DAY - 1, &mut kid);
    assert_eq!(s1.keys, s0.keys);
    assert!(s1.events.is_empty());
    // At the interval the next key signs, the old one retires, a new next appears.
    let t1 = t0 + 30 * DAY;
    let s2 = step(&s1.keys, &p, &none, false, t1, &mut kid);
    assert!(s2.rotated);
    assert_eq!(state_of(&s2.keys, "k1"), Some(KeyState::Retiring));
    assert_eq!(state_of(&s2.keys, "k2"), Some(KeyState::Active));
    assert_eq!(state_of(&s2.keys, "k3"), Some(KeyState::Next));
    assert_eq!(s2.next_event, Some(t1 + p.retire_after));
    // The retiring key stays until its last token has expired, then goes.
    let s3 = step(
        &s2.keys,
        &p,
        &none,
        false,
        t1 + p.retire_after - 1,
        &mut kid,
    );
    assert_eq!(state_of(&s3.keys, "k1"), Some(KeyState::Retiring));
    let s4 = step(&s3.keys, &p, &none, false, t1 + p.retire_after, &mut kid);
    assert_eq!(state_of(&s4.keys, "k1"), None);
    assert_eq!(s4.events, vec![KeyEvent::Removed { kid: "k1".into() }]);
}

#[test]
fn a_rotate_request_still_waits_for_pre_publish() {
    let p = policy();
    let mut kid = counter();
    let none = BTreeSet::new();
    let s0 = step(&[], &p, &none, false, 0, &mut kid);
    // Requested 10 minutes after the next key was published: waits 50 more.
    let s1 = step(&s0.keys, &p, &none, true, 600, &mut kid);
    assert!(!s1.rotated);
    assert_eq!(s1.next_rotation, Some(HOUR));
    let s2 = step(&s1.keys, &p, &none, true, HOUR, &mut kid);
    assert!(s2.rotated);
    assert_eq!(state_of(&s2.keys, "k2"), Some(KeyState::Active));
    // Requested long after publication: rotates at once.
    let s3 = step(&s2.keys, &p, &none, true, 3 * DAY, &mut kid);
    assert!(s3.rotated);
    assert_eq!(state_of(&s3.keys, "k3"), Some(KeyState::Active));
}

#[test]
fn a_due_rotation_waits_until_every_replica_served_the_key_long_enough() {
    let p = policy();
    let mut kid = counter();
    let none = BTreeSet::new();
    let s0 = step(&[], &p, &none, false, 0, &mut kid);
    let due = 30 * DAY;
    let gate = |since| {
        Some(Gate {
            served_since: since,
            hold: 300,
        })
    };
    // Due, but one replica does not serve k2 yet: held, looked at again soon.
    let held = step_gated(&s0.keys, &p, &none, false, due, &mut kid, gate(None));
    assert!(held.held && !held.rotated);
    assert_eq!(state_of(&held.keys, "k1"), Some(KeyState::Active));
    assert_eq!(held.next_event, Some(due + HELD_RECHECK));
    // Served everywhere for less than the hold: still held.
    let s = step_gated(
        &held.keys,
        &p,
        &none,
        false,
        due + 60,
        &mut kid,
        gate(Some(due)),
    );
    assert!(s.held);
    // Long enough: k2 signs.
    let s = step_gated(
        &s.keys,
        &p,
        &none,
        false,
        due + 300,
        &mut kid,
        gate(Some(due)),
    );
    assert!(s.rotated && !s.held);
    assert_eq!(state_of(&s.keys, "k2"), Some(KeyState::Active));
    // Revoking the active key does not wait for the gate.
    let revoked = BTreeSet::from(["k2".to_owned()]);
    let r = step_gated(
        &s.keys,
        &p,
        &revoked,
        false,
        due + 301,
        &mut kid,
        gate(None),
    );
    assert_eq!(state_of(&r.keys, "k3"), Some(KeyState::Active));
}

#[test]
fn revoking_keys_removes_them_at_once() {
    let p = policy();
    let mut kid = counter();
    let s0 = step(&[], &p, &BTreeSet::new(), false, 0, &mut kid);
    // Revoke the active key two days in: the pre-published next key takes over.
    let revoked = BTreeSet::from(["k1".to_owned()]);
    let s1 = step(&s0.keys, &p, &revoked, false, 2 * DAY, &mut kid);
    assert_eq!(state_of(&s1.keys, "k1"), None);
    assert_eq!(state_of(&s1.keys, "k2"), Some(KeyState::Active));
    assert_eq!(state_of(&s1.keys, "k3"), Some(KeyState::Next));
    assert!(s1.rotated);
    assert!(s1.events.contains(&KeyEvent::Activated {
        kid: "k2".into(),
        early: false
    }));
    // Revoking the next key too: a new next key is published.
    let revoked = BTreeSet::from(["k1".to_owned(), "k3".to_owned()]);
    let s2 = step(&s1.keys, &p, &revoked, false, 2 * DAY + 5, &mut kid);
    assert_eq!(state_of(&s2.keys, "k3"), None);
    assert_eq!(state_of(&s2.keys, "k4"), Some(KeyState::Next));
    assert_eq!(s2.next_rotation, Some(2 * DAY + 30 * DAY));
}

#[test]
fn a_new_algorithm_replaces_the_waiting_key() -> Result<(), KeySetError> {
    let mut p = policy();
    let mut kid = counter();
    let s0 = step(&[], &p, &BTreeSet::new(), false, 0, &mut kid);
    p.algorithm = SigningAlgorithm::ES256;
    let s1 = step(&s0.keys, &p, &BTreeSet::new(), false, 10, &mut kid);
    assert_eq!(state_of(&s1.keys, "k2"), None);
    let k3 = s1.keys.iter().find(|k| k.kid == "k3");
    assert_eq!(
        k3.map(|k| (k.alg, k.state)),
        Some((SigningAlgorithm::ES256, KeyState::Next))
    );
    // The file keeps the active key's private key and generates the new one.
    let f0 = materialize(None, &s0.keys)?;
    let f1 = materialize(Some(&f0), &s1.keys)?;
    assert_eq!(f0.jwks()?.keys[0], f1.jwks()?.keys[0]);
    assert_eq!(f1.keys.len(), 2);
    Ok(())
}
