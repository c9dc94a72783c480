//! The environment contract between the operator and the services: the
//! ConfigMaps MA and OP read through `envFrom`, the Secret references they
//! read through `env`, and the paths where mounted Secrets appear.

use authrealm_runtime::env;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, EnvVarSource, SecretKeySelector};

use super::names::{
    AUTH_SERVICE_INTERNAL_PORT, AUTH_SERVICE_METRICS_PORT, AUTH_SERVICE_PORT, Component,
    MAIN_PROJECT_METRICS_PORT, MAIN_PROJECT_PORT, internal_url, jwks_url,
};
use super::{Meta, REDIS_URL_KEY};
use crate::crd::SecretKeyRef;
use crate::validate::{Database, Redis, ValidRealm};

/// Where MA reads the key set.
pub const KEYS_DIR: &str = "/etc/authrealm/keys";
/// Where MA reads the OAuth client registry (`clients.json`).
pub const CLIENTS_DIR: &str = "/etc/authrealm/clients";
/// Where both services read the internal credential.
pub const CREDENTIAL_DIR: &str = "/etc/authrealm/credential";
/// Key of the credential in its Secret (and file name in [`CREDENTIAL_DIR`]).
pub const CREDENTIAL_KEY: &str = "credential";
/// Key of the credential Secret that holds OP's browser-session (SSO) and
/// CSRF key: one value for every OP replica, so a login form served by one
/// replica is accepted by another. Projected into OP's pods only.
pub const SESSION_COOKIE_KEY_KEY: &str = "session-cookie-key";
/// Where the embedded SQLite file lives in the main-project pod.
pub const SQLITE_DIR: &str = "/var/lib/authrealm";

fn env_map(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The Redis key prefix MA and OP of a realm share.
#[must_use]
pub fn redis_prefix(realm: &ValidRealm) -> String {
    format!("authrealm:{}:{}", realm.namespace, realm.name)
}

/// MA's ConfigMap.
#[must_use]
pub fn auth_service_config(m: &Meta<'_>) -> ConfigMap {
    let r = m.realm;
    let c = &r.config;
    ConfigMap {
        metadata: m.object(
            m.names.config(Component::AuthService),
            Component::AuthService.as_str(),
        ),
        data: Some(env_map(&[
            (env::LISTEN, format!("0.0.0.0:{AUTH_SERVICE_PORT}")),
            (
                env::ma::INTERNAL_LISTEN,
                format!("0.0.0.0:{AUTH_SERVICE_INTERNAL_PORT}"),
            ),
            (
                env::METRICS_LISTEN,
                format!("0.0.0.0:{AUTH_SERVICE_METRICS_PORT}"),
            ),
            (env::ISSUER, c.issuer.clone()),
            (env::AUDIENCE, c.audience.clone()),
            (env::ma::ACCESS_TTL, c.text.access_token_ttl.clone()),
            (env::ma::REFRESH_TTL, c.text.refresh_token_ttl.clone()),
            (env::ma::JWKS_MAX_AGE, c.text.jwks_max_age.clone()),
            (env::ma::CLOCK_SKEW, c.text.clock_skew.clone()),
            (env::ma::KEYS_DIR, KEYS_DIR.to_owned()),
            (env::ma::CLIENTS_DIR, CLIENTS_DIR.to_owned()),
            (env::ma::OP_PUBLIC_URL, r.clients.public_url.clone()),
            (
                env::SERVICE_CREDENTIAL_FILE,
                format!("{CREDENTIAL_DIR}/{CREDENTIAL_KEY}"),
            ),
            (env::REDIS_PREFIX, redis_prefix(r)),
            (env::LOG_FORMAT, "json".to_owned()),
        ])),
        ..ConfigMap::default()
    }
}

/// OP's ConfigMap.
#[must_use]
pub fn main_project_config(m: &Meta<'_>) -> ConfigMap {
    let r = m.realm;
    let c = &r.config;
    let mut data = env_map(&[
        (env::LISTEN, format!("0.0.0.0:{MAIN_PROJECT_PORT}")),
        (
            env::METRICS_LISTEN,
            format!("0.0.0.0:{MAIN_PROJECT_METRICS_PORT}"),
        ),
        (
            env::op::AUTH_SERVICE_URL,
            internal_url(&r.name, &r.namespace),
        ),
        (env::op::JWKS_URL, jwks_url(&r.name, &r.namespace)),
        (env::ISSUER, c.issuer.clone()),
        (env::AUDIENCE, c.audience.clone()),
        (env::op::CLOCK_LEEWAY, c.text.clock_skew.clone()),
        (
            env::SERVICE_CREDENTIAL_FILE,
            format!("{CREDENTIAL_DIR}/{CREDENTIAL_KEY}"),
        ),
        (
            env::op::SESSION_COOKIE_KEY_FILE,
            format!("{CREDENTIAL_DIR}/{SESSION_COOKIE_KEY_KEY}"),
        ),
        (env::REDIS_PREFIX, redis_prefix(r)),
        (env::LOG_FORMAT, "json".to_owned()),
    ]);
    if let Database::Embedded { .. } = r.database {
        data.insert(
            env::op::DATABASE_URL.into(),
            format!("sqlite://{SQLITE_DIR}/main-project.db?mode=rwc"),
        );
    }
    ConfigMap {
        metadata: m.object(
            m.names.config(Component::MainProject),
            Component::MainProject.as_str(),
        ),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// An environment variable read from a Secret key (never optional).
#[must_use]
pub fn secret_env(name: &str, r: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// What MA and OP read from Secrets at start: the Redis URL for both, the
/// database URL for OP when it is Postgres.
#[must_use]
pub fn secret_envs(m: &Meta<'_>, c: Component) -> Vec<EnvVar> {
    let redis = match &m.realm.redis {
        Redis::External(r) => r.clone(),
        Redis::Managed(_) => SecretKeyRef {
            name: m.names.redis_secret(),
            key: REDIS_URL_KEY.to_owned(),
        },
    };
    let mut env = vec![secret_env(env::REDIS_URL, &redis)];
    if let (Component::MainProject, Database::Postgres(r)) = (c, &m.realm.database) {
        env.push(secret_env(env::op::DATABASE_URL, r));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::super::testing::{URL, built, config_data};
    use crate::crd::AuthRealmSpec;
    use crate::validate::InvalidSpec;
    use authrealm_runtime::env;

    #[test]
    fn config_maps_carry_the_service_contract() -> Result<(), InvalidSpec> {
        let b = built(AuthRealmSpec::default())?;
        let ma = config_data(&b, "demo-auth-service-config");
        // The port contract: public, internal and metrics listeners of their own.
        assert_eq!(ma[env::LISTEN], "0.0.0.0:8081");
        assert_eq!(ma[env::ma::INTERNAL_LISTEN], "0.0.0.0:8083");
        assert_eq!(ma[env::METRICS_LISTEN], "0.0.0.0:9081");
        assert_eq!(ma[env::ISSUER], URL);
        assert_eq!(ma[env::AUDIENCE], "demo");
        assert_eq!(ma[env::ma::ACCESS_TTL], "5m");
        assert_eq!(ma[env::ma::KEYS_DIR], "/etc/authrealm/keys");
        assert_eq!(ma[env::ma::CLIENTS_DIR], "/etc/authrealm/clients");
        assert_eq!(
            ma[env::ma::OP_PUBLIC_URL],
            "http://demo-main-project.team-a.svc:8080"
        );
        assert_eq!(ma[env::REDIS_PREFIX], "authrealm:team-a:demo");
        assert_eq!(
            ma[env::SERVICE_CREDENTIAL_FILE],
            "/etc/authrealm/credential/credential"
        );
        let op = config_data(&b, "demo-main-project-config");
        assert_eq!(op[env::LISTEN], "0.0.0.0:8080");
        assert_eq!(op[env::METRICS_LISTEN], "0.0.0.0:9080");
        // OP calls MA's internal port, and fetches the JWKS from the public one.
        assert_eq!(
            op[env::op::AUTH_SERVICE_URL],
            "http://demo-auth-service.team-a.svc:8083"
        );
        assert_eq!(
            op[env::op::JWKS_URL],
            format!("{URL}/.well-known/jwks.json")
        );
        assert_eq!(op[env::REDIS_PREFIX], ma[env::REDIS_PREFIX]);
        // MA keeps revocations for as long as OP tolerates expired tokens.
        assert_eq!(ma[env::ma::CLOCK_SKEW], "60s");
        assert_eq!(op[env::op::CLOCK_LEEWAY], ma[env::ma::CLOCK_SKEW]);
        assert_eq!(
            op[env::op::DATABASE_URL],
            "sqlite:///var/lib/authrealm/main-project.db?mode=rwc"
        );
        Ok(())
    }
}
