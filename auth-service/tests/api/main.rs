//! Integration tests of the auth-service, in one binary: the store suite
//! (run against memory and Redis, with what observers see), Redis-only
//! behaviour, the three listeners, hostile requests (proptest), key loading
//! and reloading, and verification by an independent JWT library.

mod helpers;
mod hostile;
mod keys;
mod observers;
mod ports;
mod pyjwt;
mod redis_only;
mod suite;
