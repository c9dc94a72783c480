//! Integration tests of the auth-service, in one binary: the store suite
//! (run against memory and Redis), Redis-only behaviour, key loading and
//! reloading, and verification by an independent JWT library.

mod helpers;
mod hostile;
mod keys;
mod ports;
mod pyjwt;
mod redis_only;
mod suite;
