//! AuthRealm's main project (OP): users in Postgres or SQLite, login with
//! argon2id on a bounded pool, tokens minted by the auth-service (MA) over
//! HTTP, and a protected API whose JWT check uses MA's JWKS and a local view
//! of the revocation list kept current from Redis.
//!
//! Entry points: [`Config`] (flags and environment), [`serve`] (everything
//! on one listener until a shutdown future resolves), [`serve_split`] (the
//! public API and the operations endpoints on separate listeners, as the
//! binary runs), [`app`] (the router) and [`build`] (the state behind it).

// Start-up and wiring.
pub mod config;
pub mod http;
pub mod state;

// One error type, and its HTTP answers.
pub mod error;

// Request handling: extractors, then the endpoints by what they serve.
pub mod accounts;
pub mod auth;
pub mod forward_auth;
pub mod notes;
pub mod oidc;
pub mod openapi;
pub mod sessions;

// Rules for what users send.
pub mod email;
pub mod password;

// Infrastructure: the database, MA, keys, revocations, login limits, metrics.
pub mod auth_client;
pub mod db;
pub mod ids;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod revocation;

pub use config::{Config, LogFormat, RevocationPolicy, VerifyMode};
pub use error::Error;
pub use http::{app, serve, serve_split};
pub use state::{AppState, Background, build};
