//! The contract test: what the operator writes into a pod is parsed by the
//! services' own configuration parsers (`auth_service::Config`,
//! `main_project::Config`) and validated, with the ConfigMap and the Secret
//! references resolved and the mounted Secrets as files. A realm the operator
//! accepts must produce pods whose services start; a variable renamed on one
//! side only fails here.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{CommandFactory, FromArgMatches};
use k8s_openapi::api::core::v1::Container;

use super::env::{CLIENTS_DIR, CREDENTIAL_DIR, CREDENTIAL_KEY, KEYS_DIR, SESSION_COOKIE_KEY_KEY};
use super::testing::{INPUTS, config_data, deployment, pod, realm};
use super::{Built, build};
use crate::crd::{AuthRealmSpec, SecretKeyRef};
use crate::validate::{Defaults, validate};

type TestError = Box<dyn std::error::Error + Send + Sync>;

/// The container's environment as the kubelet gives it: the ConfigMap
/// (`envFrom`) plus each `secretKeyRef` resolved from `secrets`.
fn environment(
    b: &Built,
    c: &Container,
    secrets: &BTreeMap<(&str, &str), String>,
) -> Result<BTreeMap<String, String>, TestError> {
    let mut env = BTreeMap::new();
    for from in c.env_from.iter().flatten() {
        let name = from
            .config_map_ref
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default();
        env.extend(config_data(b, name));
    }
    for e in c.env.iter().flatten() {
        let value = match (
            &e.value,
            e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref()),
        ) {
            (Some(v), _) => v.clone(),
            (None, Some(r)) => secrets
                .get(&(r.name.as_str(), r.key.as_str()))
                .cloned()
                .ok_or_else(|| format!("no Secret {}/{} for {}", r.name, r.key, e.name))?,
            (None, None) => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

/// Mounted paths moved under `root`, where the test puts the Secret files.
fn mounted(env: &mut BTreeMap<String, String>, root: &Path) {
    for v in env.values_mut() {
        if v.starts_with("/etc/authrealm/") {
            *v = format!("{}{v}", root.display());
        }
    }
}

/// Parses `env` with `C`'s own clap definition: each variable becomes the
/// flag that reads it. A variable no setting reads is an error.
fn parse<C: CommandFactory + FromArgMatches>(
    service: &str,
    env: &BTreeMap<String, String>,
) -> Result<C, TestError> {
    let cmd = C::command();
    let mut args = vec![service.to_owned()];
    for (k, v) in env {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == k.as_str()));
        match arg.and_then(|a| a.get_long()) {
            Some(long) => args.push(format!("--{long}={v}")),
            None => return Err(format!("{service} reads no {k}, which the operator writes").into()),
        }
    }
    let matches = cmd.try_get_matches_from(args)?;
    Ok(C::from_arg_matches(&matches)?)
}

fn check(spec: AuthRealmSpec) -> Result<(), TestError> {
    let valid = validate(&realm(spec), &Defaults::default())?;
    let b = build(&valid, INPUTS);
    let secrets = BTreeMap::from([
        (
            ("demo-redis-password", "url"),
            "redis://:pw@demo-redis.team-a.svc:6379/0".to_owned(),
        ),
        (
            ("cache", "url"),
            "redis://:pw@cache.example:6380/1".to_owned(),
        ),
        (
            ("db", "url"),
            "postgres://app:pw@db.example:5432/app".to_owned(),
        ),
    ]);
    // The mounted Secrets: the credential, and a key set for MA.
    let root = tempfile::tempdir()?;
    let cred_dir = root.path().join(CREDENTIAL_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&cred_dir)?;
    std::fs::write(cred_dir.join(CREDENTIAL_KEY), INPUTS.credential)?;
    std::fs::write(
        cred_dir.join(SESSION_COOKIE_KEY_KEY),
        INPUTS.session_cookie_key,
    )?;
    let keys_dir = root.path().join(KEYS_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&keys_dir)?;
    let clients_dir = root.path().join(CLIENTS_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&clients_dir)?;

    for (name, service) in [
        ("demo-auth-service", "auth-service"),
        ("demo-main-project", "main-project"),
    ] {
        let (_, p) = deployment(&b, name).and_then(pod).ok_or("no Deployment")?;
        let mut env = environment(&b, &p.containers[0], &secrets)?;
        mounted(&mut env, root.path());
        if service == "auth-service" {
            let c: auth_service::Config = parse(service, &env)?;
            c.validate()
                .map_err(|e| format!("auth-service refuses: {e}"))?;
            assert_eq!(c.audience, valid.config.audience);
            assert_eq!(c.issuer, valid.config.issuer);
            // The client registry directory and OP's public URL reach MA's own settings.
            assert_eq!(c.clients_dir.as_deref(), Some(clients_dir.as_path()));
            assert_eq!(
                c.op_public_url.as_deref(),
                Some(valid.clients.public_url.as_str())
            );
        } else {
            let c: main_project::Config = parse(service, &env)?;
            c.validate()
                .map_err(|e| format!("main-project refuses: {e}"))?;
            assert_eq!(c.issuer, valid.config.issuer);
            // Every OP replica reads one session-cookie key (a login form
            // served by one replica is accepted by another), from the
            // mounted credential Secret.
            assert_eq!(
                c.session_cookie_key_file.as_deref(),
                Some(cred_dir.join(SESSION_COOKIE_KEY_KEY).as_path())
            );
        }
    }
    Ok(())
}

#[test]
fn the_services_accept_what_the_operator_writes() -> Result<(), TestError> {
    check(AuthRealmSpec::default())?;
    let mut prod = AuthRealmSpec::default();
    prod.database.postgres = Some(SecretKeyRef {
        name: "db".into(),
        key: "url".into(),
    });
    prod.redis.external = Some(SecretKeyRef {
        name: "cache".into(),
        key: "url".into(),
    });
    prod.main_project.replicas = 3;
    prod.tokens.issuer = Some("https://auth.example.com/".into());
    prod.tokens.access_token_ttl = "15m".into();
    prod.tokens.clock_skew = "0s".into();
    prod.clients.public_url = Some("https://login.example.com/".into());
    prod.clients.allowed_namespaces = vec!["apps".into()];
    check(prod)?;
    // Behind an Ingress, the issuer and OP's public URL the services get are the host's.
    check(AuthRealmSpec {
        ingress: Some(crate::crd::IngressSpec {
            host: "login.example.com".into(),
            class_name: None,
            tls_secret_name: Some("login-tls".into()),
            annotations: BTreeMap::new(),
        }),
        ..AuthRealmSpec::default()
    })
}

#[test]
fn a_variable_no_service_reads_is_caught() {
    let env = BTreeMap::from([("AUTHREALM_ISSUER_URL".to_owned(), "http://x".to_owned())]);
    let refused = parse::<auth_service::Config>("auth-service", &env);
    assert!(refused.is_err_and(|e| e.to_string().contains("reads no AUTHREALM_ISSUER_URL")));
}
