//! The configuration contract: every `AUTHREALM_*` environment variable a
//! service reads. The services' clap configurations name these constants;
//! the operator (which writes them into pods), the local runner, the flow
//! program and the bench use the same constants, so a renamed variable is a
//! compile error on every side instead of a pod that starts misconfigured.
//!
//! Each variable is also a flag: its lower-kebab name without the prefix
//! (`AUTHREALM_ACCESS_TTL` ↔ `--access-ttl`).

/// Prefix of every variable (a process started for a test clears all of them).
pub const PREFIX: &str = "AUTHREALM_";

/// Address the public HTTP server listens on (both services).
pub const LISTEN: &str = "AUTHREALM_LISTEN";
/// Address `/metrics`, `/healthz` and `/readyz` are served on, apart from the
/// public API so they are never reachable through an Ingress (both services).
pub const METRICS_LISTEN: &str = "AUTHREALM_METRICS_LISTEN";
/// `iss` MA writes and OP requires.
pub const ISSUER: &str = "AUTHREALM_ISSUER";
/// `aud` MA writes and OP requires.
pub const AUDIENCE: &str = "AUTHREALM_AUDIENCE";
/// The bearer secret OP presents on MA's internal API.
pub const SERVICE_CREDENTIAL: &str = "AUTHREALM_SERVICE_CREDENTIAL";
/// A file holding the service credential (a mounted Secret key).
pub const SERVICE_CREDENTIAL_FILE: &str = "AUTHREALM_SERVICE_CREDENTIAL_FILE";
/// Redis URL; unset means the in-memory store (one process only).
pub const REDIS_URL: &str = "AUTHREALM_REDIS_URL";
/// Prefix of every Redis key and of the revocation channel; MA and OP of a
/// realm use the same one.
pub const REDIS_PREFIX: &str = "AUTHREALM_REDIS_PREFIX";
/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: &str = "AUTHREALM_MAX_BODY_BYTES";
/// `text` or `json` log lines.
pub const LOG_FORMAT: &str = "AUTHREALM_LOG_FORMAT";
/// Time a client has to send a request's headers, from its first byte (or
/// from the connection opening); then the connection is closed.
pub const HEADER_READ_TIMEOUT: &str = "AUTHREALM_HEADER_READ_TIMEOUT";
/// Time a client has to send a request's whole body, from the end of its
/// headers; then it gets 408 and the connection is closed.
pub const BODY_READ_TIMEOUT: &str = "AUTHREALM_BODY_READ_TIMEOUT";
/// Time an idle keep-alive connection is kept open between requests.
pub const IDLE_TIMEOUT: &str = "AUTHREALM_IDLE_TIMEOUT";
/// Open connections per listener; further ones wait in the accept queue.
pub const MAX_CONNECTIONS: &str = "AUTHREALM_MAX_CONNECTIONS";
/// Time requests in flight get to finish once shutdown has begun.
pub const SHUTDOWN_TIMEOUT: &str = "AUTHREALM_SHUTDOWN_TIMEOUT";

/// Variables only the auth-service (MA) reads.
pub mod ma {
    /// Address of the internal API (`/v1/...`, service credential), which
    /// only OP may reach.
    pub const INTERNAL_LISTEN: &str = "AUTHREALM_INTERNAL_LISTEN";
    /// Access token lifetime.
    pub const ACCESS_TTL: &str = "AUTHREALM_ACCESS_TTL";
    /// Refresh token lifetime.
    pub const REFRESH_TTL: &str = "AUTHREALM_REFRESH_TTL";
    /// Window in which a retried refresh gets the same successor.
    pub const REFRESH_GRACE: &str = "AUTHREALM_REFRESH_GRACE";
    /// `Cache-Control: max-age` of the JWKS.
    pub const JWKS_MAX_AGE: &str = "AUTHREALM_JWKS_MAX_AGE";
    /// Directory holding `keyset.json` (the mounted key Secret).
    pub const KEYS_DIR: &str = "AUTHREALM_KEYS_DIR";
    /// How often the key directory is checked for changes.
    pub const KEYS_POLL_INTERVAL: &str = "AUTHREALM_KEYS_POLL_INTERVAL";
    /// Algorithm of the ephemeral key of a local run.
    pub const EPHEMERAL_KEY_ALG: &str = "AUTHREALM_EPHEMERAL_KEY_ALG";
    /// Clock skew verifiers may allow; revocations outlive tokens by it.
    pub const CLOCK_SKEW: &str = "AUTHREALM_CLOCK_SKEW";
    /// Directory holding `clients.json`, the OAuth client registry (the
    /// operator's mounted Secret); unset: no OAuth clients.
    pub const CLIENTS_DIR: &str = "AUTHREALM_CLIENTS_DIR";
    /// How often the clients directory is checked for changes.
    pub const CLIENTS_POLL_INTERVAL: &str = "AUTHREALM_CLIENTS_POLL_INTERVAL";
    /// OP's public base URL: MA publishes OP's authorization, UserInfo and
    /// logout endpoints under it in discovery; unset: no code flow.
    pub const OP_PUBLIC_URL: &str = "AUTHREALM_OP_PUBLIC_URL";
}

/// Variables only the main project (OP) reads.
pub mod op {
    /// Base URL of MA's internal API.
    pub const AUTH_SERVICE_URL: &str = "AUTHREALM_AUTH_SERVICE_URL";
    /// URL of MA's JWKS (its public port); derived from the API URL when unset.
    pub const JWKS_URL: &str = "AUTHREALM_JWKS_URL";
    /// Clock skew tolerated on token times.
    pub const CLOCK_LEEWAY: &str = "AUTHREALM_CLOCK_LEEWAY";
    /// Timeout of one call to MA.
    pub const AUTH_SERVICE_TIMEOUT: &str = "AUTHREALM_AUTH_SERVICE_TIMEOUT";
    /// `postgres://…` or `sqlite:…`.
    pub const DATABASE_URL: &str = "AUTHREALM_DATABASE_URL";
    /// Size of the database connection pool.
    pub const DATABASE_MAX_CONNECTIONS: &str = "AUTHREALM_DATABASE_MAX_CONNECTIONS";
    /// How long a request waits for a database connection.
    pub const DATABASE_ACQUIRE_TIMEOUT: &str = "AUTHREALM_DATABASE_ACQUIRE_TIMEOUT";
    /// `fail-closed` or `fail-open` while the revocation state is unknown.
    pub const REVOCATION_POLICY: &str = "AUTHREALM_REVOCATION_POLICY";
    /// `local` (JWKS + revocation view) or `introspect` (ask MA).
    pub const VERIFY_MODE: &str = "AUTHREALM_VERIFY_MODE";
    /// How often the JWKS is refetched.
    pub const JWKS_REFRESH_INTERVAL: &str = "AUTHREALM_JWKS_REFRESH_INTERVAL";
    /// Least time between refetches caused by unknown `kid`s.
    pub const JWKS_MIN_REFETCH_INTERVAL: &str = "AUTHREALM_JWKS_MIN_REFETCH_INTERVAL";
    /// Failed logins per account before 429.
    pub const LOGIN_MAX_FAILURES: &str = "AUTHREALM_LOGIN_MAX_FAILURES";
    /// Window of the failed-login counters.
    pub const LOGIN_FAILURE_WINDOW: &str = "AUTHREALM_LOGIN_FAILURE_WINDOW";
    /// Per-address limit as a multiple of the per-account one.
    pub const IP_FAILURE_FACTOR: &str = "AUTHREALM_IP_FAILURE_FACTOR";
    /// Whether `X-Forwarded-For` (last entry) names the client.
    pub const TRUST_FORWARDED_FOR: &str = "AUTHREALM_TRUST_FORWARDED_FOR";
    /// argon2id hashing slots (0 = one per core).
    pub const HASH_CONCURRENCY: &str = "AUTHREALM_HASH_CONCURRENCY";
    /// Hash requests that may wait for a slot.
    pub const HASH_QUEUE: &str = "AUTHREALM_HASH_QUEUE";
    /// How long a hash request may wait for a slot.
    pub const HASH_QUEUE_TIMEOUT: &str = "AUTHREALM_HASH_QUEUE_TIMEOUT";
    /// argon2id memory cost.
    pub const ARGON2_MEMORY_KIB: &str = "AUTHREALM_ARGON2_MEMORY_KIB";
    /// argon2id iterations.
    pub const ARGON2_ITERATIONS: &str = "AUTHREALM_ARGON2_ITERATIONS";
    /// Capacity of the verified-token cache.
    pub const TOKEN_CACHE_ENTRIES: &str = "AUTHREALM_TOKEN_CACHE_ENTRIES";
    /// How often the revocation listener pings Redis and rereads the
    /// generation marker.
    pub const REVOCATION_PING_INTERVAL: &str = "AUTHREALM_REVOCATION_PING_INTERVAL";
    /// Key that signs the browser-session (SSO) cookie and the login form's
    /// CSRF token; every replica needs the same. Unset: random per process.
    pub const SESSION_COOKIE_KEY: &str = "AUTHREALM_SESSION_COOKIE_KEY";
    /// A file holding the session cookie key (a mounted Secret key).
    pub const SESSION_COOKIE_KEY_FILE: &str = "AUTHREALM_SESSION_COOKIE_KEY_FILE";
    /// Whether OP's cookies carry `Secure` (off only on a loopback listener).
    pub const SESSION_COOKIE_SECURE: &str = "AUTHREALM_SESSION_COOKIE_SECURE";
    /// Longest life of a browser session (SSO) before the user logs in again.
    pub const SESSION_TTL: &str = "AUTHREALM_SESSION_TTL";
    /// Prefix of the forward-auth endpoint's identity and requirement
    /// headers (`X-Auth-` gives `X-Auth-Subject`, `X-Auth-Require-Scope`).
    pub const FORWARD_AUTH_HEADER_PREFIX: &str = "AUTHREALM_FORWARD_AUTH_HEADER_PREFIX";
}

/// Variables of the local runner (`cargo run --release` at the root).
pub mod local {
    /// Where OP listens in a local run.
    pub const OP_LISTEN: &str = "AUTHREALM_OP_LISTEN";
    /// Where MA listens in a local run.
    pub const MA_LISTEN: &str = "AUTHREALM_MA_LISTEN";
    /// Directory of the local SQLite database.
    pub const DATA_DIR: &str = "AUTHREALM_DATA_DIR";
}

/// Default ports of each part (see the DESIGN's port table).
pub mod ports {
    /// OP's public API.
    pub const OP_API: u16 = 8080;
    /// MA's public endpoints (JWKS, discovery, OAuth 2.0).
    pub const MA_PUBLIC: u16 = 8081;
    /// The operator's `/metrics` and `/healthz`.
    pub const OPERATOR: u16 = 8082;
    /// MA's internal API (`/v1`), reachable by OP only.
    pub const MA_INTERNAL: u16 = 8083;
    /// OP's `/metrics`, `/healthz`, `/readyz`.
    pub const OP_METRICS: u16 = 9080;
    /// MA's `/metrics`, `/healthz`, `/readyz`.
    pub const MA_METRICS: u16 = 9081;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static str> {
        vec![
            LISTEN,
            METRICS_LISTEN,
            ISSUER,
            AUDIENCE,
            SERVICE_CREDENTIAL,
            SERVICE_CREDENTIAL_FILE,
            REDIS_URL,
            REDIS_PREFIX,
            MAX_BODY_BYTES,
            LOG_FORMAT,
            HEADER_READ_TIMEOUT,
            BODY_READ_TIMEOUT,
            IDLE_TIMEOUT,
            MAX_CONNECTIONS,
            SHUTDOWN_TIMEOUT,
            ma::INTERNAL_LISTEN,
            ma::ACCESS_TTL,
            ma::REFRESH_TTL,
            ma::REFRESH_GRACE,
            ma::JWKS_MAX_AGE,
            ma::KEYS_DIR,
            ma::KEYS_POLL_INTERVAL,
            ma::EPHEMERAL_KEY_ALG,
            ma::CLOCK_SKEW,
            ma::CLIENTS_DIR,
            ma::CLIENTS_POLL_INTERVAL,
            ma::OP_PUBLIC_URL,
            op::AUTH_SERVICE_URL,
            op::JWKS_URL,
            op::CLOCK_LEEWAY,
            op::AUTH_SERVICE_TIMEOUT,
            op::DATABASE_URL,
            op::DATABASE_MAX_CONNECTIONS,
            op::DATABASE_ACQUIRE_TIMEOUT,
            op::REVOCATION_POLICY,
            op::VERIFY_MODE,
            op::JWKS_REFRESH_INTERVAL,
            op::JWKS_MIN_REFETCH_INTERVAL,
            op::LOGIN_MAX_FAILURES,
            op::LOGIN_FAILURE_WINDOW,
            op::IP_FAILURE_FACTOR,
            op::TRUST_FORWARDED_FOR,
            op::HASH_CONCURRENCY,
            op::HASH_QUEUE,
            op::HASH_QUEUE_TIMEOUT,
            op::ARGON2_MEMORY_KIB,
            op::ARGON2_ITERATIONS,
            op::TOKEN_CACHE_ENTRIES,
            op::REVOCATION_PING_INTERVAL,
            op::SESSION_COOKIE_KEY,
            op::SESSION_COOKIE_KEY_FILE,
            op::SESSION_COOKIE_SECURE,
            op::SESSION_TTL,
            op::FORWARD_AUTH_HEADER_PREFIX,
            local::OP_LISTEN,
            local::MA_LISTEN,
            local::DATA_DIR,
        ]
    }

    #[test]
    fn every_name_is_prefixed_upper_snake_and_unique() {
        let names = all();
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            assert!(n.starts_with(PREFIX), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
            assert!(seen.insert(*n), "{n} is defined twice");
        }
    }
}
