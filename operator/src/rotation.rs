//! This reconcile's move of the signing keys: the current key set (from
//! [`crate::dereference`]) advanced by the pure state machine in
//! [`crate::keys`] to `now`, and the key-set file to write. New key ids and
//! new private keys are the only random parts.

use std::cell::Cell;

use crate::dereference::Found;
use crate::error::Error;
use crate::keys::{self, KeyMeta, Step};
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
    let step = keys::step(
        &metas,
        &realm.config.key_policy,
        &realm.revoked_key_ids,
        rotate_requested,
        now,
        &mut new_kid,
    );
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
