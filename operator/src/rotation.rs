//! This reconcile's move of the signing keys: the current key set (from
//! [`crate::dereference`]) advanced by the pure state machine in
//! [`crate::keys`] to `now`, and the key-set file to write. New key ids and
//! new private keys are the only random parts.

use std::cell::Cell;
use std::collections::BTreeMap;

use authrealm_tokens::KeyState;

use crate::dereference::Found;
use crate::error::Error;
use crate::keys::{self, Gate, KeyMeta, Step};
use crate::validate::ValidRealm;

/// The key set to write.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// The state machine's step: keys, events, next times.
    pub step: Step,
    /// The `keyset.json` bytes: unchanged bytes when the keys did not change.
    pub keyset_json: Vec<u8>,
    /// The rotate-keys annotation value served after this step.
    pub handled: Option<String>,
    /// Per key id: how many replicas serve it (`n/m`), and since when every
    /// replica has (the next key only).
    pub propagation: BTreeMap<String, (String, Option<i64>)>,
}

/// Advances the realm's keys to `now`.
///
/// # Errors
/// A failing random source or key generation.
pub fn plan(realm: &ValidRealm, found: &Found, now: i64) -> Result<KeyPlan, Error> {
    let requested = realm.rotate_request.as_ref();
    let rotate_requested = requested.is_some() && requested != found.rotate_handled.as_ref();
    let current = found.keys.as_ref();
    let metas: Vec<KeyMeta> = current
        .map(|(f, _)| f.keys.iter().map(KeyMeta::from).collect())
        .unwrap_or_default();
    let kid_base = new_kid_base(now)?;
    let counter = Cell::new(0u32);
    let mut new_kid = || {
        counter.set(counter.get() + 1);
        format!("{kid_base}{}", counter.get())
    };
    // The current next key signs only once every replica has served it
    // for the JWKS cache lifetime; the clock starts at the first look that
    // finds it everywhere, and starts again after any look that does not.
    let next = metas.iter().find(|k| k.state == KeyState::Next);
    let served_since = next.filter(|k| found.observed.everywhere(&k.kid)).map(|k| {
        realm
            .served_since
            .get(&k.kid)
            .copied()
            .unwrap_or(now)
            .min(now)
    });
    let gate = Gate {
        served_since,
        hold: i64::try_from(realm.config.jwks_max_age.as_secs()).unwrap_or(i64::MAX),
    };
    let step = keys::step_gated(
        &metas,
        &realm.config.key_policy,
        &realm.revoked_key_ids,
        rotate_requested,
        now,
        &mut new_kid,
        Some(gate),
    );
    let propagation = step
        .keys
        .iter()
        .map(|k| {
            let since = served_since
                .filter(|_| next.is_some_and(|n| n.kid == k.kid && k.state == KeyState::Next));
            (k.kid.clone(), (found.observed.label(&k.kid), since))
        })
        .collect();
    let handled = if rotate_requested && step.rotated {
        requested.cloned()
    } else {
        found.rotate_handled.clone()
    };
    let keyset_json = match current {
        Some((_, bytes)) if step.keys == metas => bytes.clone(),
        _ => keys::materialize(current.map(|(f, _)| f), &step.keys)
            .and_then(|file| file.to_json())
            .map_err(Error::Keys)?,
    };
    Ok(KeyPlan {
        step,
        keyset_json,
        handled,
        propagation,
    })
}

/// A random, date-prefixed base for new key ids, e.g. `20260124-Xk3...-`.
fn new_kid_base(now: i64) -> Result<String, Error> {
    let date = jiff::Timestamp::from_second(now)
        .map(|t| t.strftime("%Y%m%d").to_string())
        .unwrap_or_default();
    let random = authrealm_tokens::random_token(9).map_err(|_| Error::Random)?;
    Ok(format!("{date}-{random}-"))
}
