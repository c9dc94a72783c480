//! Operator-side validation of an `AuthRealm` spec: what the CRD schema and
//! its CEL rules cannot say (or what a cluster without them lets through).
//! The result is a [`RealmConfig`] with every duration parsed, or an
//! [`InvalidSpec`] naming the offending field.

use std::time::Duration;

use authrealm_tokens::duration;

use crate::crd::{AuthRealmSpec, MAX_NAME_LEN, ResourcesSpec};
use crate::keys::KeyPolicy;

/// How long a change to a mounted Secret may take to reach a pod (kubelet
/// sync period plus its cache) and be reloaded. A retired key stays published
/// this much longer, because MA may go on signing with it until it sees the
/// new key set.
pub const SECRET_PROPAGATION: Duration = Duration::from_secs(120);

/// A spec the operator refuses, with the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// Path of the field, e.g. `spec.signingKeys.prePublish`.
    pub field: String,
    /// What is wrong with it and how to fix it.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The spec's settings in parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmConfig {
    /// The `iss` claim.
    pub issuer: String,
    /// The `aud` claim.
    pub audience: String,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// JWKS cache lifetime.
    pub jwks_max_age: Duration,
    /// Tolerated clock difference.
    pub clock_skew: Duration,
    /// Key schedule.
    pub key_policy: KeyPolicy,
}

fn parse_duration(field: &str, value: &str, min: Duration) -> Result<Duration, InvalidSpec> {
    let d = duration::parse(value).map_err(|e| invalid(field, e.to_string()))?;
    if d < min {
        return Err(invalid(
            field,
            format!(
                "{value:?} is too short: at least {} is required",
                duration::format(min)
            ),
        ));
    }
    Ok(d)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Checks a realm's name and spec.
///
/// `auth_service_url` is the in-cluster URL of MA, the default issuer.
///
/// # Errors
/// The first problem found, naming its field.
pub fn validate(
    name: &str,
    auth_service_url: &str,
    spec: &AuthRealmSpec,
) -> Result<RealmConfig, InvalidSpec> {
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            "metadata.name",
            format!(
                "must be at most {MAX_NAME_LEN} characters (child object names are derived from it)"
            ),
        ));
    }
    let t = &spec.tokens;
    let access_token_ttl = parse_duration(
        "spec.tokens.accessTokenTtl",
        &t.access_token_ttl,
        Duration::from_secs(1),
    )?;
    let refresh_token_ttl = parse_duration(
        "spec.tokens.refreshTokenTtl",
        &t.refresh_token_ttl,
        Duration::from_secs(1),
    )?;
    let jwks_max_age = parse_duration("spec.tokens.jwksMaxAge", &t.jwks_max_age, Duration::ZERO)?;
    let clock_skew = parse_duration("spec.tokens.clockSkew", &t.clock_skew, Duration::ZERO)?;
    if refresh_token_ttl < access_token_ttl {
        return Err(invalid(
            "spec.tokens.refreshTokenTtl",
            format!(
                "{:?} is shorter than accessTokenTtl {:?}: a refresh token must outlive the access token it renews",
                t.refresh_token_ttl, t.access_token_ttl
            ),
        ));
    }
    let issuer = match &t.issuer {
        Some(i) if i.trim().is_empty() => {
            return Err(invalid("spec.tokens.issuer", "must not be empty when set"));
        }
        Some(i) => i.clone(),
        None => auth_service_url.to_owned(),
    };
    let audience = match &t.audience {
        Some(a) if a.trim().is_empty() => {
            return Err(invalid(
                "spec.tokens.audience",
                "must not be empty when set",
            ));
        }
        Some(a) => a.clone(),
        None => name.to_owned(),
    };

    for (field, svc) in [
        ("spec.authService", &spec.auth_service),
        ("spec.mainProject", &spec.main_project),
    ] {
        if svc.image.trim().is_empty() {
            return Err(invalid(&format!("{field}.image"), "must not be empty"));
        }
        if !(1..=100).contains(&svc.replicas) {
            return Err(invalid(
                &format!("{field}.replicas"),
                format!("{} is out of range: use 1 to 100", svc.replicas),
            ));
        }
        check_resources(&format!("{field}.resources"), &svc.resources)?;
    }

    let db = &spec.database;
    if db.postgres.is_some() && db.embedded.is_some() {
        return Err(invalid(
            "spec.database",
            "set either postgres or embedded, not both",
        ));
    }
    if let Some(r) = &db.postgres {
        check_secret_ref("spec.database.postgres", &r.name, &r.key)?;
    }
    if db.postgres.is_none() && spec.main_project.replicas > 1 {
        return Err(invalid(
            "spec.mainProject.replicas",
            format!(
                "{} replicas need a shared database: the embedded SQLite database allows one main-project pod; set spec.database.postgres or use 1 replica",
                spec.main_project.replicas
            ),
        ));
    }

    let redis = &spec.redis;
    if redis.managed.is_some() && redis.external.is_some() {
        return Err(invalid(
            "spec.redis",
            "set either managed or external, not both",
        ));
    }
    if let Some(r) = &redis.external {
        check_secret_ref("spec.redis.external", &r.name, &r.key)?;
    }
    if let Some(m) = &redis.managed {
        if m.image.trim().is_empty() {
            return Err(invalid("spec.redis.managed.image", "must not be empty"));
        }
        check_resources("spec.redis.managed.resources", &m.resources)?;
    }

    let k = &spec.signing_keys;
    let rotation_interval = parse_duration(
        "spec.signingKeys.rotationInterval",
        &k.rotation_interval,
        Duration::from_secs(60),
    )?;
    let pre_publish = parse_duration(
        "spec.signingKeys.prePublish",
        &k.pre_publish,
        Duration::ZERO,
    )?;
    if pre_publish < jwks_max_age + SECRET_PROPAGATION {
        return Err(invalid(
            "spec.signingKeys.prePublish",
            format!(
                "{:?} is too short: verifiers cache the JWKS for jwksMaxAge {:?} and a Secret change takes up to {} to reach the pods, so use at least {}",
                k.pre_publish,
                t.jwks_max_age,
                duration::format(SECRET_PROPAGATION),
                duration::format(jwks_max_age + SECRET_PROPAGATION)
            ),
        ));
    }
    if pre_publish >= rotation_interval {
        return Err(invalid(
            "spec.signingKeys.prePublish",
            format!(
                "{:?} must be shorter than rotationInterval {:?}",
                k.pre_publish, k.rotation_interval
            ),
        ));
    }
    for (i, kid) in k.revoked_key_ids.iter().enumerate() {
        if kid.trim().is_empty() {
            return Err(invalid(
                &format!("spec.signingKeys.revokedKeyIds[{i}]"),
                "must not be empty",
            ));
        }
    }

    for (i, peer) in spec
        .network_policy
        .extra_auth_service_peers
        .iter()
        .enumerate()
    {
        if peer.pod_labels.is_none() && peer.namespace_labels.is_none() {
            return Err(invalid(
                &format!("spec.networkPolicy.extraAuthServicePeers[{i}]"),
                "needs podLabels, namespaceLabels or both",
            ));
        }
    }

    Ok(RealmConfig {
        issuer,
        audience,
        access_token_ttl,
        refresh_token_ttl,
        jwks_max_age,
        clock_skew,
        key_policy: KeyPolicy {
            algorithm: k.algorithm.into(),
            rotation_interval: secs(rotation_interval),
            pre_publish: secs(pre_publish),
            retire_after: secs(access_token_ttl + clock_skew + SECRET_PROPAGATION),
        },
    })
}

fn check_secret_ref(field: &str, name: &str, key: &str) -> Result<(), InvalidSpec> {
    if name.trim().is_empty() {
        return Err(invalid(&format!("{field}.name"), "must name a Secret"));
    }
    if key.trim().is_empty() {
        return Err(invalid(
            &format!("{field}.key"),
            "must name a key of the Secret",
        ));
    }
    Ok(())
}

const RESOURCE_NAMES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
const QUANTITY_SUFFIXES: [&str; 14] = [
    "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
];

/// A plain Kubernetes quantity: digits, an optional fraction, an optional suffix.
fn is_quantity(q: &str) -> bool {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let mut parts = number.split('.');
    let whole_ok = parts
        .next()
        .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()));
    let frac_ok = parts
        .next()
        .is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    whole_ok && frac_ok && parts.next().is_none() && QUANTITY_SUFFIXES.contains(&suffix)
}

fn check_resources(field: &str, r: &ResourcesSpec) -> Result<(), InvalidSpec> {
    for (kind, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, value) in map {
            let f = format!("{field}.{kind}.{name}");
            if !RESOURCE_NAMES.contains(&name.as_str()) {
                return Err(invalid(
                    &f,
                    "unknown resource: use cpu, memory or ephemeral-storage",
                ));
            }
            if !is_quantity(value) {
                return Err(invalid(
                    &f,
                    format!("{value:?} is not a quantity such as 100m, 0.5, 128Mi or 1Gi"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{EmbeddedDatabase, ManagedRedis, PeerSpec, SecretKeyRef};

    const URL: &str = "http://r-auth-service.ns.svc:8081";

    fn spec() -> AuthRealmSpec {
        AuthRealmSpec::default()
    }

    fn refused(name: &str, s: &AuthRealmSpec) -> InvalidSpec {
        match validate(name, URL, s) {
            Err(e) => e,
            Ok(c) => unreachable!("accepted {c:?}"),
        }
    }

    #[test]
    fn an_empty_spec_gets_working_defaults() -> Result<(), InvalidSpec> {
        let c = validate("demo", URL, &spec())?;
        assert_eq!(c.issuer, URL);
        assert_eq!(c.audience, "demo");
        assert_eq!(c.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.key_policy.rotation_interval, 30 * 86_400);
        assert_eq!(c.key_policy.pre_publish, 3600);
        // 5m access TTL + 60s skew + 120s propagation.
        assert_eq!(c.key_policy.retire_after, 300 + 60 + 120);
        Ok(())
    }

    #[test]
    fn every_invalid_spec_names_its_field() {
        let sref = |n: &str, k: &str| SecretKeyRef {
            name: n.into(),
            key: k.into(),
        };
        type Mutate = Box<dyn Fn(&mut AuthRealmSpec)>;
        let cases: Vec<(Mutate, &str, &str)> = vec![
            (
                Box::new(|s| s.tokens.access_token_ttl = "15 minutes".into()),
                "spec.tokens.accessTokenTtl",
                "invalid duration \"15 minutes\"",
            ),
            (
                Box::new(|s| s.tokens.access_token_ttl = "0s".into()),
                "spec.tokens.accessTokenTtl",
                "too short",
            ),
            (
                Box::new(|s| s.tokens.refresh_token_ttl = "4m".into()),
                "spec.tokens.refreshTokenTtl",
                "shorter than accessTokenTtl",
            ),
            (
                Box::new(|s| s.tokens.clock_skew = "1.5s".into()),
                "spec.tokens.clockSkew",
                "invalid duration",
            ),
            (
                Box::new(|s| s.tokens.issuer = Some(" ".into())),
                "spec.tokens.issuer",
                "must not be empty",
            ),
            (
                Box::new(|s| s.tokens.audience = Some(String::new())),
                "spec.tokens.audience",
                "must not be empty",
            ),
            (
                Box::new(|s| s.auth_service.replicas = 0),
                "spec.authService.replicas",
                "out of range",
            ),
            (
                Box::new(|s| s.main_project.image = String::new()),
                "spec.mainProject.image",
                "must not be empty",
            ),
            (
                Box::new(|s| {
                    s.auth_service
                        .resources
                        .limits
                        .insert("memory".into(), "lots".into());
                }),
                "spec.authService.resources.limits.memory",
                "not a quantity",
            ),
            (
                Box::new(|s| {
                    s.main_project
                        .resources
                        .requests
                        .insert("gpu".into(), "1".into());
                }),
                "spec.mainProject.resources.requests.gpu",
                "unknown resource",
            ),
            (
                Box::new(|s| s.main_project.replicas = 2),
                "spec.mainProject.replicas",
                "embedded SQLite",
            ),
            (
                Box::new(move |s| {
                    s.database.postgres = Some(sref("db", "url"));
                    s.database.embedded = Some(EmbeddedDatabase::default());
                }),
                "spec.database",
                "not both",
            ),
            (
                Box::new(move |s| s.database.postgres = Some(sref("", "url"))),
                "spec.database.postgres.name",
                "must name a Secret",
            ),
            (
                Box::new(move |s| {
                    s.redis.managed = Some(ManagedRedis::default());
                    s.redis.external = Some(sref("r", "url"));
                }),
                "spec.redis",
                "not both",
            ),
            (
                Box::new(move |s| s.redis.external = Some(sref("r", ""))),
                "spec.redis.external.key",
                "must name a key",
            ),
            (
                Box::new(|s| s.signing_keys.rotation_interval = "30s".into()),
                "spec.signingKeys.rotationInterval",
                "too short",
            ),
            (
                Box::new(|s| s.signing_keys.pre_publish = "5m".into()),
                "spec.signingKeys.prePublish",
                "use at least 7m",
            ),
            (
                Box::new(|s| s.tokens.jwks_max_age = "5 m".into()),
                "spec.tokens.jwksMaxAge",
                "invalid duration",
            ),
            (
                Box::new(|s| s.signing_keys.pre_publish = "30d".into()),
                "spec.signingKeys.prePublish",
                "must be shorter than rotationInterval",
            ),
            (
                Box::new(|s| s.signing_keys.revoked_key_ids = vec!["ok".into(), String::new()]),
                "spec.signingKeys.revokedKeyIds[1]",
                "must not be empty",
            ),
            (
                Box::new(|s| {
                    s.network_policy.extra_auth_service_peers = vec![PeerSpec {
                        pod_labels: None,
                        namespace_labels: None,
                    }];
                }),
                "spec.networkPolicy.extraAuthServicePeers[0]",
                "needs podLabels",
            ),
        ];
        for (mutate, field, text) in cases {
            let mut s = spec();
            mutate(&mut s);
            let e = refused("demo", &s);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(text), "{field}: {e}");
            assert!(e.to_string().starts_with(field));
        }
        let e = refused(&"x".repeat(41), &spec());
        assert_eq!(e.field, "metadata.name");
    }

    #[test]
    fn postgres_allows_several_main_project_pods() -> Result<(), InvalidSpec> {
        let mut s = spec();
        s.main_project.replicas = 3;
        s.database.postgres = Some(SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        validate("demo", URL, &s)?;
        Ok(())
    }

    #[test]
    fn quantities() {
        for ok in ["1", "100m", "0.5", "128Mi", "1Gi", "2k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.", ".5", "1.2.3", "12 Mi", "1mb", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
