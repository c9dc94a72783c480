//! Integration tests of the auth-service, in one binary: the store suite
//! (run against memory and Redis, with what observers see, and the OAuth
//! endpoints), sessions as one record (and the layout before it), Redis-only behaviour, the three listeners, hostile requests
//! (proptest), key loading and reloading, the client registry, and
//! verification by independent libraries (PyJWT, Authlib).

mod authlib;
mod families;
mod helpers;
mod hostile;
mod keys;
mod oauth;
mod oauth_requests;
mod oauth_support;
mod observers;
mod ports;
mod pyjwt;
mod redis_only;
mod suite;
