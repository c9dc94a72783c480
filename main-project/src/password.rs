//! Passwords: the rules a new one must meet ([`policy`]) and argon2id on a
//! bounded blocking pool ([`hasher`]).

pub mod hasher;
pub mod policy;

pub use hasher::PasswordHasher;
pub use policy::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, check_new_password};
