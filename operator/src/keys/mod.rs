//! Signing-key rotation: a pure state machine over an injected clock
//! ([`step`]), and the glue that turns its plan into the key-set file MA
//! reads ([`materialize`]).
//!
//! Life of a key: created as `next` (published, not signing) → `active` (the
//! one signing key) → `retiring` (published until every token it could have
//! signed has expired) → removed. There is always exactly one `active` key and,
//! between steps, exactly one `next` key waiting, so a rotation (scheduled,
//! requested, or forced by revoking the active key) finds a key that verifiers
//! have had for `prePublish`.

use std::collections::{BTreeMap, BTreeSet};

use authrealm_tokens::SigningAlgorithm;
use authrealm_tokens::keyset::{KeyEntry, KeySetError, KeySetFile, KeyState};

/// The schedule, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Algorithm of new keys.
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotation_interval: i64,
    /// Minimum time a key is published before it signs.
    pub pre_publish: i64,
    /// How long a retired key stays published: the longest access-token
    /// lifetime plus clock skew plus Secret propagation.
    pub retire_after: i64,
}

/// A key without its private part: what the state machine works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlgorithm,
    /// State.
    pub state: KeyState,
    /// When it was created and published (Unix seconds).
    pub created_at: i64,
    /// Active keys: when they started signing. Next keys: when they are planned to.
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When it is removed.
    pub remove_after: Option<i64>,
}

impl From<&KeyEntry> for KeyMeta {
    fn from(k: &KeyEntry) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
            remove_after: k.remove_after,
        }
    }
}

/// Something that happened to a key in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEvent {
    /// A new key was generated in the given state.
    Created {
        /// Key id.
        kid: String,
        /// `Next`, or `Active` for the realm's first key or an emergency.
        state: KeyState,
    },
    /// A key started signing.
    Activated {
        /// Key id.
        kid: String,
        /// It signs before it was published for `prePublish` (only after the
        /// active key was revoked and no older `next` key existed).
        early: bool,
    },
    /// The previous active key stopped signing.
    Retired {
        /// Key id.
        kid: String,
        /// When it will be removed.
        remove_after: i64,
    },
    /// A retiring key was removed: every token it signed has expired.
    Removed {
        /// Key id.
        kid: String,
    },
    /// A key was removed at once because its id is in `revokedKeyIds`.
    Revoked {
        /// Key id.
        kid: String,
        /// The state it was in.
        state: KeyState,
    },
    /// A `next` key of an algorithm the spec no longer asks for was dropped
    /// (it never signed anything).
    Replaced {
        /// Key id.
        kid: String,
    },
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The key set after the step: exactly one active key and one next key.
    pub keys: Vec<KeyMeta>,
    /// What changed, in order.
    pub events: Vec<KeyEvent>,
    /// A new key became active in this step (a pending rotate request is served).
    pub rotated: bool,
    /// When the current next key becomes active.
    pub next_rotation: Option<i64>,
    /// The earliest future time at which the set changes by itself.
    pub next_event: Option<i64>,
    /// The next key is due but held: not every auth-service replica has
    /// served it for the hold time yet.
    pub held: bool,
}

/// A check that must pass before a scheduled or requested rotation: every
/// auth-service replica has served the next key since `served_since`, for at
/// least `hold` seconds (the JWKS cache lifetime). Revoking the active key
/// skips it: an emergency does not wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Since when every replica has served the current next key; `None` while any does not.
    pub served_since: Option<i64>,
    /// How long they must have served it.
    pub hold: i64,
}

/// While a rotation is held, how soon to look at the replicas again.
pub const HELD_RECHECK: i64 = 30;

/// Advances the key set to `now`.
///
/// - `revoked`: ids removed at once, whatever their state.
/// - `rotate_requested`: rotate as soon as the next key has been published
///   for `prePublish`, instead of waiting for `rotationInterval`.
/// - `new_kid`: source of fresh, unique key ids.
///
/// Never reads the clock or the random source itself.
pub fn step(
    current: &[KeyMeta],
    policy: &KeyPolicy,
    revoked: &BTreeSet<String>,
    rotate_requested: bool,
    now: i64,
    new_kid: &mut dyn FnMut() -> String,
) -> Step {
    step_gated(
        current,
        policy,
        revoked,
        rotate_requested,
        now,
        new_kid,
        None,
    )
}

/// [`step`], with the rotation held until `gate` (when given) passes.
pub fn step_gated(
    current: &[KeyMeta],
    policy: &KeyPolicy,
    revoked: &BTreeSet<String>,
    rotate_requested: bool,
    now: i64,
    new_kid: &mut dyn FnMut() -> String,
    gate: Option<Gate>,
) -> Step {
    let mut held = false;
    let mut events = Vec::new();
    let mut rotated = false;
    let bootstrap = current.is_empty();

    // 1. Revocations: gone at once.
    let mut keys: Vec<KeyMeta> = Vec::with_capacity(current.len() + 2);
    for k in current {
        if revoked.contains(&k.kid) {
            events.push(KeyEvent::Revoked {
                kid: k.kid.clone(),
                state: k.state,
            });
        } else {
            keys.push(k.clone());
        }
    }

    // 2. Retiring keys whose tokens have all expired go; the others keep
    //    their removal time, extended if the access TTL grew since.
    keys.retain_mut(|k| {
        if k.state != KeyState::Retiring {
            return true;
        }
        let retired_at = k.retired_at.unwrap_or(now);
        let remove_after = k
            .remove_after
            .unwrap_or(i64::MIN)
            .max(retired_at.saturating_add(policy.retire_after));
        k.retired_at = Some(retired_at);
        k.remove_after = Some(remove_after);
        if now >= remove_after {
            events.push(KeyEvent::Removed { kid: k.kid.clone() });
            false
        } else {
            true
        }
    });

    // A next key of another algorithm never signed: replace it so the new
    // algorithm takes effect at the coming rotation.
    keys.retain(|k| {
        if k.state == KeyState::Next && k.alg != policy.algorithm {
            events.push(KeyEvent::Replaced { kid: k.kid.clone() });
            false
        } else {
            true
        }
    });

    // 3. Exactly one active key. Extra actives (a hand-edited Secret) retire.
    let mut actives: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i].state == KeyState::Active)
        .collect();
    actives.sort_by_key(|&i| std::cmp::Reverse(keys[i].activated_at.unwrap_or(keys[i].created_at)));
    for &i in actives.iter().skip(1) {
        retire(&mut keys[i], now, policy, &mut events);
    }
    if actives.is_empty() {
        // The active key was revoked (or this is the first step): the oldest
        // next key takes over; without one, a new key signs at once.
        let oldest_next = (0..keys.len())
            .filter(|&i| keys[i].state == KeyState::Next)
            .min_by_key(|&i| keys[i].created_at);
        match oldest_next {
            Some(i) => {
                let k = &mut keys[i];
                k.state = KeyState::Active;
                k.activated_at = Some(now);
                events.push(KeyEvent::Activated {
                    kid: k.kid.clone(),
                    early: now < k.created_at.saturating_add(policy.pre_publish),
                });
            }
            None => {
                let kid = new_kid();
                keys.push(KeyMeta {
                    kid: kid.clone(),
                    alg: policy.algorithm,
                    state: KeyState::Active,
                    created_at: now,
                    activated_at: Some(now),
                    retired_at: None,
                    remove_after: None,
                });
                events.push(KeyEvent::Created {
                    kid: kid.clone(),
                    state: KeyState::Active,
                });
                if !bootstrap {
                    events.push(KeyEvent::Activated { kid, early: true });
                }
            }
        }
        rotated = !bootstrap;
    }

    // 4. Scheduled or requested rotation: the next key takes over once it
    //    has been published for prePublish and the active key is due.
    let active_idx = keys.iter().position(|k| k.state == KeyState::Active);
    let next_idx = (0..keys.len())
        .filter(|&i| keys[i].state == KeyState::Next)
        .min_by_key(|&i| keys[i].created_at);
    if let (Some(a), Some(n)) = (active_idx, next_idx) {
        let planned = planned_activation(
            &keys[a],
            &keys[n],
            policy,
            rotate_requested && !rotated,
            now,
        );
        keys[n].activated_at = Some(planned);
        let open = gate.is_none_or(|g| {
            g.served_since
                .is_some_and(|t| now >= t.saturating_add(g.hold))
        });
        held = now >= planned && !open;
        if now >= planned && open {
            retire(&mut keys[a], now, policy, &mut events);
            let k = &mut keys[n];
            k.state = KeyState::Active;
            k.activated_at = Some(now);
            events.push(KeyEvent::Activated {
                kid: k.kid.clone(),
                early: false,
            });
            rotated = true;
        }
    }

    // 5. Always one key waiting as next.
    if !keys.iter().any(|k| k.state == KeyState::Next) {
        let kid = new_kid();
        let mut next = KeyMeta {
            kid: kid.clone(),
            alg: policy.algorithm,
            state: KeyState::Next,
            created_at: now,
            activated_at: None,
            retired_at: None,
            remove_after: None,
        };
        if let Some(a) = keys.iter().find(|k| k.state == KeyState::Active) {
            next.activated_at = Some(planned_activation(
                a,
                &next,
                policy,
                rotate_requested && !rotated,
                now,
            ));
        }
        keys.push(next);
        events.push(KeyEvent::Created {
            kid,
            state: KeyState::Next,
        });
    }

    let next_rotation = keys
        .iter()
        .filter(|k| k.state == KeyState::Next)
        .filter_map(|k| k.activated_at)
        .min();
    let next_removal = keys
        .iter()
        .filter(|k| k.state == KeyState::Retiring)
        .filter_map(|k| k.remove_after)
        .min();
    let recheck = held.then(|| now.saturating_add(HELD_RECHECK));
    let next_event = [next_rotation.filter(|_| !held), next_removal, recheck]
        .into_iter()
        .flatten()
        .min();
    Step {
        keys,
        events,
        rotated,
        next_rotation,
        next_event,
        held,
    }
}

/// When `next` takes over from `active`: never before it has been published
/// for prePublish; otherwise at the end of the active key's interval, or now
/// when a rotation was requested.
fn planned_activation(
    active: &KeyMeta,
    next: &KeyMeta,
    policy: &KeyPolicy,
    rotate_now: bool,
    now: i64,
) -> i64 {
    let published = next.created_at.saturating_add(policy.pre_publish);
    let due = if rotate_now {
        now
    } else {
        active
            .activated_at
            .unwrap_or(active.created_at)
            .saturating_add(policy.rotation_interval)
    };
    published.max(due)
}

fn retire(k: &mut KeyMeta, now: i64, policy: &KeyPolicy, events: &mut Vec<KeyEvent>) {
    let remove_after = now.saturating_add(policy.retire_after);
    k.state = KeyState::Retiring;
    k.retired_at = Some(now);
    k.remove_after = Some(remove_after);
    events.push(KeyEvent::Retired {
        kid: k.kid.clone(),
        remove_after,
    });
}

/// Builds the key-set file for a plan: existing keys keep their private key,
/// new ids get a freshly generated one. The only impure part of rotation.
///
/// # Errors
/// When key generation fails or the result breaks a key-set invariant.
pub fn materialize(old: Option<&KeySetFile>, plan: &[KeyMeta]) -> Result<KeySetFile, KeySetError> {
    let existing: BTreeMap<&str, &KeyEntry> = old
        .map(|f| f.keys.iter().map(|k| (k.kid.as_str(), k)).collect())
        .unwrap_or_default();
    let mut keys = Vec::with_capacity(plan.len());
    for m in plan {
        let mut entry = match existing.get(m.kid.as_str()) {
            Some(e) if e.alg == m.alg => (*e).clone(),
            _ => KeyEntry::generate(m.alg, m.kid.clone(), m.state, m.created_at)?,
        };
        entry.state = m.state;
        entry.created_at = m.created_at;
        entry.activated_at = m.activated_at;
        entry.retired_at = m.retired_at;
        entry.remove_after = m.remove_after;
        keys.push(entry);
    }
    let file = KeySetFile::new(keys);
    file.validate()?;
    Ok(file)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests;
