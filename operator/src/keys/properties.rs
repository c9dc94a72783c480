//! Property tests of the key state machine: random schedules, time jumps,
//! rotate requests and revocations, with the invariants users rely on
//! checked after every step.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const DAY: i64 = 86_400;

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("k{n}")
    }
}

/// A small deterministic PRNG (SplitMix64) so the property runs are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n.max(1)).unwrap_or(0)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Random schedules, time steps, rotate requests and revocations; after
/// every step the invariants users rely on must hold.
#[test]
fn rotation_invariants_hold_over_random_schedules() {
    for seed in 0..300_u64 {
        let mut rng = Rng(seed);
        let interval = 60 + rng.below(10 * DAY as u64);
        let p = KeyPolicy {
            algorithm: SigningAlgorithm::EdDSA,
            rotation_interval: interval,
            pre_publish: rng.below(interval as u64),
            retire_after: rng.below(3 * DAY as u64),
        };
        let mut kid = counter();
        let mut revoked = BTreeSet::new();
        let mut now = rng.below(1_000_000_000);
        let mut keys: Vec<KeyMeta> = Vec::new();
        // kid -> first time it was published; kids ever seen.
        let mut published: BTreeMap<String, i64> = BTreeMap::new();
        let mut last_active: Option<String> = None;
        for i in 0..200 {
            now += match rng.below(4) {
                0 => 0,
                1 => rng.below(60),
                2 => rng.below(p.pre_publish as u64 + 1),
                _ => rng.below(2 * interval as u64),
            };
            let request = rng.chance(10);
            if rng.chance(8) && !keys.is_empty() {
                let victim = rng.below(keys.len() as u64) as usize;
                revoked.insert(keys[victim].kid.clone());
            }
            let active_revoked = last_active.as_ref().is_some_and(|a| revoked.contains(a));
            let before = keys.clone();
            let s = step(&before, &p, &revoked, request, now, &mut kid);
            let ctx = format!("seed {seed} step {i} now {now} policy {p:?}");

            // Exactly one active key, and one next key.
            let active: Vec<&KeyMeta> = s
                .keys
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .collect();
            assert_eq!(active.len(), 1, "{ctx}: {:?}", s.keys);
            assert_eq!(
                s.keys.iter().filter(|k| k.state == KeyState::Next).count(),
                1,
                "{ctx}"
            );
            // A revoked id never comes back; ids are never reused.
            for k in &s.keys {
                assert!(
                    !revoked.contains(&k.kid),
                    "{ctx}: revoked {} is back",
                    k.kid
                );
                let first = *published.entry(k.kid.clone()).or_insert(now);
                if !before.iter().any(|b| b.kid == k.kid) {
                    assert_eq!(first, now, "{ctx}: id {} reused", k.kid);
                }
            }
            // No key signs before it was published for prePublish, except
            // the realm's first key and when the active key was just revoked.
            let a = active[0];
            if last_active.as_deref() != Some(a.kid.as_str()) && i > 0 && !active_revoked {
                let since = published.get(&a.kid).copied().unwrap_or(now);
                assert!(
                    now - since >= p.pre_publish,
                    "{ctx}: {} signs after {}s published",
                    a.kid,
                    now - since
                );
            }
            // No key disappears before its tokens expire unless revoked:
            // a key that signed must be retiring until retired_at + retire_after.
            for b in &before {
                if revoked.contains(&b.kid) || s.keys.iter().any(|k| k.kid == b.kid) {
                    continue;
                }
                if b.state == KeyState::Next && b.alg == p.algorithm {
                    unreachable!("{ctx}: next key {} vanished", b.kid);
                }
                assert_eq!(b.state, KeyState::Retiring, "{ctx}: {} vanished", b.kid);
                let until = b.retired_at.unwrap_or(now) + p.retire_after;
                assert!(
                    now >= until,
                    "{ctx}: {} removed {}s early",
                    b.kid,
                    until - now
                );
            }
            // The active key is not overdue while a published next key waits.
            let n = s.keys.iter().find(|k| k.state == KeyState::Next);
            if let (Some(act), Some(n)) = (a.activated_at, n) {
                let due = act + p.rotation_interval;
                let ready = n.created_at + p.pre_publish;
                assert!(now < due || now < ready, "{ctx}: rotation overdue");
                assert_eq!(n.activated_at, s.next_rotation, "{ctx}");
            }
            // Requeue points are in the future.
            assert!(s.next_event.is_some_and(|t| t > now), "{ctx}");
            last_active = Some(a.kid.clone());
            keys = s.keys;
        }
    }
}
