//! The clients step on plain values: validation against the realm, the
//! generate-once and rotation plan, the objects and status, and the registry
//! as MA's own parser reads it.

use authrealm_tokens::clients::{ClientRegistryFile, FILE_NAME, GrantType, hash_secret};

use super::build::{self, Verdict};
use super::secret::{Material, Stored, plan};
use super::validate::{Refused, ValidClient, validate_client};
use crate::children::testing::realm;
use crate::crd::{AuthClient, AuthClientSpec, AuthRealmSpec, ClientGrant, ClientKind, RealmRef};
use crate::validate::{Defaults, ValidRealm, validate};

type TestError = Box<dyn std::error::Error + Send + Sync>;

const NOW: i64 = 1_767_225_600;
const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SECRET2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn valid_realm(spec: AuthRealmSpec) -> Result<ValidRealm, TestError> {
    Ok(validate(&realm(spec), &Defaults::default())?)
}

fn spec() -> AuthClientSpec {
    AuthClientSpec {
        realm_ref: RealmRef {
            name: "demo".into(),
            namespace: None,
        },
        type_: ClientKind::Confidential,
        grant_types: vec![ClientGrant::AuthorizationCode, ClientGrant::RefreshToken],
        redirect_uris: vec!["https://grafana.example.com/cb".into()],
        post_logout_redirect_uris: vec![],
        scopes: vec!["openid".into(), "email".into()],
        audiences: vec![],
        access_token_ttl: None,
        refresh_token_ttl: None,
        introspection: false,
        display_name: Some("Grafana".into()),
        secret_rotation_overlap: "1h".into(),
    }
}

fn client_in(ns: &str, spec: AuthClientSpec) -> AuthClient {
    let mut c = AuthClient::new("grafana", spec);
    c.metadata.namespace = Some(ns.into());
    c.metadata.uid = Some("client-uid".into());
    c.metadata.generation = Some(3);
    c
}

fn client(spec: AuthClientSpec) -> AuthClient {
    client_in("team-a", spec)
}

fn refused(c: &AuthClient, r: &ValidRealm) -> Refused {
    validate_client(c, r).err().unwrap_or(Refused {
        reason: "",
        message: "accepted".into(),
    })
}

#[test]
fn a_valid_client_becomes_its_registry_entry() -> Result<(), TestError> {
    let r = valid_realm(AuthRealmSpec::default())?;
    let mut s = spec();
    s.access_token_ttl = Some("2m".into());
    s.refresh_token_ttl = Some("1d".into());
    let v = validate_client(&client(s), &r).map_err(|e| e.message)?;
    assert_eq!(v.entry.client_id, "team-a.grafana");
    assert_eq!(
        v.entry.grant_types,
        [GrantType::AuthorizationCode, GrantType::RefreshToken]
    );
    assert_eq!(v.entry.access_token_ttl_secs, Some(120));
    assert_eq!(v.entry.refresh_token_ttl_secs, Some(86_400));
    assert!(v.entry.secret_hashes.is_empty());
    assert_eq!(v.overlap_secs, 3600);
    let owner = v.owner.ok_or("no owner")?;
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("AuthClient", "client-uid")
    );
    Ok(())
}

#[test]
fn every_invalid_client_names_its_field() -> Result<(), TestError> {
    let r = valid_realm(AuthRealmSpec::default())?;
    type Change = fn(&mut AuthClientSpec);
    fn case(f: Change, want: &'static str) -> (Change, &'static str) {
        (f, want)
    }
    let cases = [
        case(
            |s| s.redirect_uris = vec!["http://grafana.example.com/cb".into()],
            "spec.redirectUris[0]: \"http://grafana.example.com/cb\" must be an absolute https://",
        ),
        case(
            |s| s.redirect_uris = vec!["/relative".into()],
            "spec.redirectUris[0]",
        ),
        case(
            |s| s.post_logout_redirect_uris = vec!["https://a.example/#x".into()],
            "spec.postLogoutRedirectUris[0]",
        ),
        case(
            |s| s.redirect_uris.clear(),
            "spec.redirectUris: the authorization_code grant needs at least one redirect URI",
        ),
        case(
            |s| {
                s.type_ = ClientKind::Public;
                s.grant_types = vec![ClientGrant::ClientCredentials];
            },
            "spec.grantTypes: a public client cannot use client_credentials",
        ),
        case(
            |s| {
                s.type_ = ClientKind::Public;
                s.introspection = true;
            },
            "spec.introspection: a public client cannot introspect",
        ),
        case(
            |s| s.grant_types.clear(),
            "spec.grantTypes: needs at least one grant type",
        ),
        case(
            |s| s.access_token_ttl = Some("10m".into()),
            "spec.accessTokenTtl: \"10m\" is longer than the realm's tokens.accessTokenTtl (5m)",
        ),
        case(
            |s| s.refresh_token_ttl = Some("31d".into()),
            "spec.refreshTokenTtl: \"31d\" is longer than the realm's tokens.refreshTokenTtl",
        ),
        case(
            |s| s.refresh_token_ttl = Some("1m".into()),
            "spec.refreshTokenTtl: 1m is shorter than the access-token lifetime 5m",
        ),
        case(
            |s| s.access_token_ttl = Some("0s".into()),
            "spec.accessTokenTtl: \"0s\" is too short",
        ),
        case(|s| s.scopes = vec!["has space".into()], "spec.scopes[0]"),
        case(|s| s.audiences = vec![String::new()], "spec.audiences[0]"),
        case(
            |s| s.secret_rotation_overlap = "100d".into(),
            "spec.secretRotationOverlap",
        ),
        case(|s| s.display_name = Some("a\nb".into()), "spec.displayName"),
    ];
    for (change, want) in cases {
        let mut s = spec();
        change(&mut s);
        let got = refused(&client(s), &r);
        assert_eq!(got.reason, "InvalidSpec", "{want}: {}", got.message);
        assert!(
            got.message.starts_with(want),
            "want {want:?}, got {:?}",
            got.message
        );
    }
    let mut long = client(spec());
    long.metadata.name = Some("x".repeat(51));
    assert!(refused(&long, &r).message.starts_with("metadata.name"));
    Ok(())
}

#[test]
fn loopback_http_and_native_schemes_are_redirect_uris() -> Result<(), TestError> {
    let r = valid_realm(AuthRealmSpec::default())?;
    let mut s = spec();
    s.redirect_uris = vec![
        "http://127.0.0.1:8400/cb".into(),
        "http://localhost/cb".into(),
        "http://[::1]:9/cb".into(),
        "com.example.app:/oauth2redirect".into(),
    ];
    s.type_ = ClientKind::Public;
    assert!(validate_client(&client(s), &r).is_ok());
    Ok(())
}

#[test]
fn other_namespaces_join_only_when_the_realm_allows_them() -> Result<(), TestError> {
    let mut s = spec();
    s.realm_ref.namespace = Some("team-a".into());
    let elsewhere = client_in("apps", s);
    let closed = valid_realm(AuthRealmSpec::default())?;
    let r = refused(&elsewhere, &closed);
    assert_eq!(r.reason, "NamespaceNotAllowed");
    assert!(
        r.message.contains("spec.clients.allowedNamespaces"),
        "{}",
        r.message
    );

    let mut open = AuthRealmSpec::default();
    open.clients.allowed_namespaces = vec!["apps".into()];
    let v = validate_client(&elsewhere, &valid_realm(open)?).map_err(|e| e.message)?;
    assert_eq!(v.entry.client_id, "apps.grafana");
    let mut any = AuthRealmSpec::default();
    any.clients.allowed_namespaces = vec!["*".into()];
    assert!(validate_client(&elsewhere, &valid_realm(any)?).is_ok());
    // The realm's own field is checked too.
    let mut bad = AuthRealmSpec::default();
    bad.clients.allowed_namespaces = vec!["Not_A_Namespace".into()];
    let e = validate(&realm(bad), &Defaults::default())
        .err()
        .ok_or("accepted")?;
    assert_eq!(e.field, "spec.clients.allowedNamespaces[0]");
    let mut url = AuthRealmSpec::default();
    url.clients.public_url = Some("https://login.example.com/?x=1".into());
    let e = validate(&realm(url), &Defaults::default())
        .err()
        .ok_or("accepted")?;
    assert_eq!(e.field, "spec.clients.publicUrl");
    Ok(())
}

fn never() -> Result<String, TestError> {
    Err("a new secret was generated".into())
}

fn stored(secret: &str, handled: Option<&str>) -> Stored {
    Stored {
        secret: Some(secret.into()),
        handled: handled.map(Into::into),
        previous: None,
    }
}

#[test]
fn the_secret_is_generated_once_and_rotated_on_request() -> Result<(), TestError> {
    let name = "grafana-oauth-client";
    // No Secret: a new secret; a request present at creation counts as served.
    let first = plan(name, None, Some("r1"), 3600, NOW, || {
        Ok::<_, TestError>(SECRET.to_owned())
    })?
    .map_err(|e| e.message)?;
    assert!(first.generated);
    assert_eq!(
        (first.secret.as_str(), first.handled.as_deref()),
        (SECRET, Some("r1"))
    );
    // It exists: kept, `fresh` never called.
    let again = plan(
        name,
        Some(stored(SECRET, Some("r1"))),
        Some("r1"),
        3600,
        NOW,
        never,
    )?
    .map_err(|e| e.message)?;
    assert!(!again.generated && again.secret == SECRET && again.previous.is_none());
    // A new request: a new secret, the old hash until now + overlap.
    let rotated = plan(
        name,
        Some(stored(SECRET, Some("r1"))),
        Some("r2"),
        3600,
        NOW,
        || Ok::<_, TestError>(SECRET2.to_owned()),
    )?
    .map_err(|e| e.message)?;
    assert_eq!(rotated.secret, SECRET2);
    let prev = rotated.previous.clone().ok_or("no previous")?;
    assert_eq!(prev.sha256, hash_secret(SECRET));
    assert_eq!(prev.not_after, Some(NOW + 3600));
    // The request served stays served; the old hash stays until its end.
    let kept = Stored {
        secret: Some(SECRET2.into()),
        handled: Some("r2".into()),
        previous: Some(prev.clone()),
    };
    let during = plan(
        name,
        Some(kept.clone()),
        Some("r2"),
        3600,
        NOW + 3600,
        never,
    )?
    .map_err(|e| e.message)?;
    assert_eq!(during.previous, Some(prev));
    let after =
        plan(name, Some(kept), Some("r2"), 3600, NOW + 3601, never)?.map_err(|e| e.message)?;
    assert_eq!(after.previous, None);
    assert_eq!(after.hashes().len(), 1);
    // An unusable Secret is never overwritten.
    let broken = plan(name, Some(stored("short", None)), None, 3600, NOW, never)?;
    let r = broken.err().ok_or("accepted")?;
    assert_eq!(r.reason, "SecretInvalid");
    assert!(r.message.contains("grafana-oauth-client") && !r.message.contains("short"));
    Ok(())
}

fn valid(r: &ValidRealm) -> Result<ValidClient, TestError> {
    validate_client(&client(spec()), r).map_err(|e| e.message.into())
}

#[test]
fn the_client_secret_object_carries_id_secret_and_bookkeeping() -> Result<(), TestError> {
    let r = valid_realm(AuthRealmSpec::default())?;
    let v = valid(&r)?;
    let m = plan(
        "x",
        Some(stored(SECRET, Some("r1"))),
        Some("r2"),
        60,
        NOW,
        || Ok::<_, TestError>(SECRET2.to_owned()),
    )?
    .map_err(|e| e.message)?;
    let s = build::client_secret(&r, &v, &m);
    assert_eq!(s.metadata.name.as_deref(), Some("grafana-oauth-client"));
    assert_eq!(s.metadata.namespace.as_deref(), Some("team-a"));
    let owner = &s.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("AuthClient", Some(true))
    );
    let data = s.data.clone().unwrap_or_default();
    assert_eq!(data["client-id"].0, b"team-a.grafana");
    assert_eq!(data["client-secret"].0, SECRET2.as_bytes());
    let ann = s.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(ann[super::ROTATE_HANDLED_ANNOTATION], "r2");
    assert_eq!(ann[super::PREVIOUS_HASH_ANNOTATION], hash_secret(SECRET));
    assert_eq!(
        ann[super::PREVIOUS_NOT_AFTER_ANNOTATION],
        (NOW + 60).to_string()
    );
    // What the Secret holds reads back as what was planned.
    assert_eq!(
        Stored::read(&s),
        Stored {
            secret: Some(SECRET2.into()),
            handled: Some("r2".into()),
            previous: m.previous.clone(),
        }
    );
    let labels = s.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[super::REALM_LABEL], "demo");
    assert_eq!(labels[super::REALM_NAMESPACE_LABEL], "team-a");
    // Debug output never shows a secret.
    assert!(!format!("{m:?} {:?}", Stored::read(&s)).contains(SECRET2));
    Ok(())
}

#[test]
fn the_registry_parses_with_mas_parser_and_verifies_the_secrets() -> Result<(), TestError> {
    let r = valid_realm(AuthRealmSpec::default())?;
    let mut entry = valid(&r)?.entry;
    let m = Material {
        secret: SECRET2.into(),
        handled: None,
        previous: Some(authrealm_tokens::clients::SecretHash {
            sha256: hash_secret(SECRET),
            not_after: Some(NOW + 60),
        }),
        generated: false,
    };
    entry.secret_hashes = m.hashes();
    let mut public = entry.clone();
    public.client_id = "team-a.app".into();
    public.client_type = authrealm_tokens::clients::ClientType::Public;
    public.secret_hashes.clear();
    let file = build::registry(vec![entry, public])?;
    let secret = build::registry_secret(&r, &file)?;
    assert_eq!(secret.metadata.name.as_deref(), Some("demo-oauth-clients"));
    let owner = &secret.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("AuthRealm", "uid-1")
    );
    let bytes = secret.data.clone().unwrap_or_default()[FILE_NAME].0.clone();
    assert!(!String::from_utf8_lossy(&bytes).contains(SECRET2));
    let parsed = ClientRegistryFile::parse(&bytes)?;
    // Sorted by id.
    assert_eq!(parsed.clients[0].client_id, "team-a.app");
    let c = parsed.get("team-a.grafana").ok_or("missing")?;
    assert!(c.secret_matches(SECRET2, NOW + 10_000));
    assert!(c.secret_matches(SECRET, NOW + 60));
    assert!(!c.secret_matches(SECRET, NOW + 61));
    assert!(!c.secret_matches("wrong", NOW));
    Ok(())
}

#[test]
fn status_names_the_issuer_the_token_endpoint_and_the_secret() -> Result<(), TestError> {
    let c = client(spec());
    let ok = Verdict::Registered {
        secret_name: Some("grafana-oauth-client".into()),
        previous_until: Some(NOW + 60),
    };
    let s = build::status(&c, &ok, Some("https://auth.example.com/"), NOW);
    assert_eq!(s.client_id.as_deref(), Some("team-a.grafana"));
    assert_eq!(
        s.token_endpoint.as_deref(),
        Some("https://auth.example.com/oauth2/token")
    );
    assert_eq!(
        s.discovery_url.as_deref(),
        Some("https://auth.example.com/.well-known/openid-configuration")
    );
    assert_eq!(s.secret_name.as_deref(), Some("grafana-oauth-client"));
    assert_eq!(
        s.previous_secret_valid_until.as_deref(),
        Some("2026-01-01T00:01:00Z")
    );
    let ready = &s.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Registered")
    );
    assert_eq!(s.observed_generation, Some(3));
    // The transition time moves only when the status does.
    let mut c2 = c.clone();
    c2.status = Some(s.clone());
    let later = build::status(&c2, &ok, Some("https://auth.example.com/"), NOW + 99);
    assert_eq!(later, s);
    let bad = Verdict::Refused(Refused {
        reason: "InvalidSpec",
        message: "spec.scopes[0]: bad".into(),
    });
    let failed = build::status(&c2, &bad, Some("https://auth.example.com/"), NOW + 99);
    assert_eq!(failed.conditions[0].status, "False");
    assert_eq!(
        failed.conditions[0].last_transition_time,
        "2026-01-01T00:01:39Z"
    );
    assert_eq!(failed.secret_name, None);
    Ok(())
}

const SAMPLE: &str = include_str!("../../../examples/authclient.yaml");
const SAMPLE_REALM: &str = include_str!("../../../examples/authrealm.yaml");

#[test]
fn the_sample_clients_are_valid_clients_of_the_sample_realm() -> Result<(), TestError> {
    let realm: crate::crd::AuthRealm = serde_saphyr::from_str(SAMPLE_REALM)?;
    let r = validate(&realm, &Defaults::default())?;
    let clients: Vec<AuthClient> = serde_saphyr::from_multiple(SAMPLE)?;
    let names: Vec<String> = clients
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["grafana", "billing-worker", "dashboard-spa"]);
    let mut entries = Vec::new();
    for c in &clients {
        assert_eq!(
            super::realm_of(c),
            ("default".to_owned(), "demo".to_owned())
        );
        let mut v = validate_client(c, &r).map_err(|e| e.message)?;
        if v.kind == ClientKind::Confidential {
            v.entry.secret_hashes = Material {
                secret: SECRET.into(),
                handled: None,
                previous: None,
                generated: true,
            }
            .hashes();
        }
        entries.push(v.entry);
    }
    let file = build::registry(entries)?;
    ClientRegistryFile::parse(&file.to_json()?)?;
    assert_eq!(clients[1].spec.type_, ClientKind::Confidential);
    Ok(())
}
