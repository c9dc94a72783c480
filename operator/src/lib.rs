//! The AuthRealm operator: the `AuthRealm` resource, the pure build of its
//! children, signing-key rotation, and the reconciler that applies them.
//!
//! Pipeline per realm: read and validate ([`validate`]) → dereference the
//! Secrets it names → advance the keys ([`keys`]) → build every child
//! ([`children`], pure) → server-side apply with one field manager
//! ([`reconcile`]) → status ([`status`]).

pub mod children;
pub mod crd;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod server;
pub mod status;
pub mod validate;

#[cfg(test)]
mod fixtures;
