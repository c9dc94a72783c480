//! The AuthRealm operator: the `AuthRealm` resource, the pure build of its
//! children, signing-key rotation, and the reconciler that applies them.
//!
//! The pipeline per realm ([`reconcile`]), one module a step:
//! [`validate`] (the spec → a [`validate::ValidRealm`]) → [`dereference`]
//! (the Secrets it names, the key set, generated values) → [`rotation`] (the
//! keys advanced by the pure state machine in [`keys`]) → [`children`] (the
//! pure build) → [`apply`] (server-side apply, prune, status patch) →
//! [`status`] (one place builds it) and [`events`].
//!
//! Around it: [`crd`] (the resource), [`context`] and [`error`] (what every
//! step shares), [`leader`] (Lease election), [`metrics`] and [`server`]
//! (`/metrics`, `/healthz`).

pub mod apply;
pub mod children;
pub mod clients;
pub mod context;
pub mod crd;
pub mod dereference;
pub mod error;
pub mod events;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod propagation;
pub mod reconcile;
pub mod rotation;
pub mod server;
pub mod status;
pub mod upgrade;
pub mod validate;

pub use context::{Clock, Context};
pub use error::Error;

#[cfg(test)]
mod fixtures;
