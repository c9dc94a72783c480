//! AuthRealm's authentication microservice (MA): signs access JWTs with the
//! active key of a reloadable key set, publishes the JWKS and an OpenID
//! discovery document, rotates refresh tokens with reuse detection, and keeps
//! the revocation list (Redis, or memory for a local run).
//!
//! - [`server`]: assembling and serving it — [`serve_listeners`] on three
//!   listeners (public, internal, operations; the binary), [`serve`] on one
//!   (embedding and tests).
//! - [`config`]: flags and `AUTHREALM_*` variables.
//! - [`http`]: the routes of each listener and their handlers.
//! - [`service`], [`refresh`], [`revocation`]: the operations (mint,
//!   rotation, revocation and introspection), independent of HTTP;
//!   [`opaque`]: the random strings they issue and how refresh tokens are
//!   hashed for storage.
//! - [`keys`]: the signing key set and its reloading.
//! - [`store`]: families and the revocation list, in Redis or memory;
//!   [`feed`]: the memory store's revocations streamed to verifiers.
//! - [`oauth`]: OAuth 2.0 / OpenID Connect — client authentication, the
//!   token endpoint's grants, authorization requests and codes for OP;
//!   [`clients`]: the client registry and its reloading ([`reload`]: the
//!   file poller it shares with the key set).
//! - [`metrics`], [`error`].

pub mod clients;
pub mod config;
pub mod error;
pub mod feed;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod opaque;
pub mod refresh;
pub mod reload;
pub mod revocation;
pub mod server;
pub mod service;
pub mod store;

pub use authrealm_tokens::Clock;
pub use config::{Config, LogFormat};
pub use error::Error;
pub use server::{
    Listeners, build, serve, serve_listeners, serve_listeners_with_clock, serve_with_clock,
};
