//! Every invalid spec names its field; every default is what the README says.

use super::*;
use crate::crd::{EmbeddedDatabase, ManagedRedis, PeerSpec, SecretKeyRef};

const URL: &str = "http://demo-auth-service.ns.svc:8081";

fn spec() -> AuthRealmSpec {
    AuthRealmSpec::default()
}

fn validate(name: &str, _url: &str, s: &AuthRealmSpec) -> Result<RealmConfig, InvalidSpec> {
    validate_spec(name, "ns", s).map(|v| v.config)
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
            Box::new(|s| s.main_project.image = Some(String::new())),
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
            Box::new(|s| {
                let mut m = ManagedRedis::default();
                m.storage.size = "lots".into();
                s.redis.managed = Some(m);
            }),
            "spec.redis.managed.storage.size",
            "not a size",
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
