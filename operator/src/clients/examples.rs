//! The "use it from an app" examples (`examples/oauth2-proxy.yaml`,
//! `examples/client-credentials.yaml`) checked against the sample realm and
//! the rules an `AuthClient` is held to: what a team copies must work with
//! what the operator registers at MA.

use authrealm_tokens::clients::{ClientEntry, GrantType};
use serde_json::Value;

use super::validate::validate_client;
use super::{CLIENT_ID_KEY, CLIENT_SECRET_KEY, TOKEN_PATH, secret_name};
use kube::ResourceExt as _;

use crate::crd::{AuthClient, AuthRealm, ClientKind};
use crate::validate::{Defaults, ValidRealm, validate};

type TestError = Box<dyn std::error::Error + Send + Sync>;

const SAMPLE_REALM: &str = include_str!("../../../examples/authrealm.yaml");
const SAMPLE_CLIENTS: &str = include_str!("../../../examples/authclient.yaml");
const OAUTH2_PROXY: &str = include_str!("../../../examples/oauth2-proxy.yaml");
const CLIENT_CREDENTIALS: &str = include_str!("../../../examples/client-credentials.yaml");

fn sample_realm() -> Result<ValidRealm, TestError> {
    let realm: AuthRealm = serde_saphyr::from_str(SAMPLE_REALM)?;
    Ok(validate(&realm, &Defaults::default())?)
}

/// The one document of `kind` in a multi-document file.
fn doc<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value, TestError> {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .ok_or_else(|| format!("no {kind}").into())
}

/// The registry entry the operator would write for `client`.
fn entry(client: &AuthClient, realm: &ValidRealm) -> Result<ClientEntry, TestError> {
    Ok(validate_client(client, realm)
        .map_err(|e| format!("{}: {}", e.reason, e.message))?
        .entry)
}

/// The container's env var `name`: its value, or its Secret reference.
fn env<'a>(container: &'a Value, name: &str) -> Result<&'a Value, TestError> {
    container["env"]
        .as_array()
        .and_then(|e| e.iter().find(|v| v["name"] == name))
        .ok_or_else(|| format!("no env {name}").into())
}

#[test]
fn the_oauth2_proxy_example_fits_its_client_and_the_realm() -> Result<(), TestError> {
    let realm = sample_realm()?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(OAUTH2_PROXY)?;
    let client: AuthClient = serde_json::from_value(doc(&docs, "AuthClient")?.clone())?;
    let e = entry(&client, &realm)?;

    let deployment = doc(&docs, "Deployment")?;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .ok_or("no args")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let arg = |flag: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{flag}=")))
            .ok_or_else(|| format!("no --{flag}"))
    };
    assert_eq!(arg("provider")?, "oidc");
    assert_eq!(arg("oidc-issuer-url")?, realm.config.issuer);
    assert_eq!(arg("client-id")?, e.client_id);
    // The redirect URI is registered exactly; PKCE S256 as MA requires.
    let redirect = arg("redirect-url")?;
    assert!(e.redirect_uris.iter().any(|u| u == redirect));
    assert_eq!(arg("code-challenge-method")?, "S256");
    assert!(e.grant_types.contains(&GrantType::AuthorizationCode));
    for scope in arg("scope")?.split(' ') {
        assert!(e.scopes.iter().any(|s| s == scope), "scope {scope}");
    }
    // OP's ID tokens say email_verified=false: the proxy must accept that.
    assert_eq!(arg("insecure-oidc-allow-unverified-email")?, "true");
    // The secret comes from the Secret the operator writes for the client.
    let secret = &env(container, "OAUTH2_PROXY_CLIENT_SECRET")?["valueFrom"]["secretKeyRef"];
    assert_eq!(secret["name"], secret_name(&client.name_any()).as_str());
    assert_eq!(secret["key"], CLIENT_SECRET_KEY);
    let cookie = &env(container, "OAUTH2_PROXY_COOKIE_SECRET")?["valueFrom"]["secretKeyRef"];
    let cookie_secret = doc(&docs, "Secret")?;
    assert_eq!(cookie["name"], cookie_secret["metadata"]["name"]);
    Ok(())
}

#[test]
fn the_client_credentials_example_uses_a_client_allowed_to() -> Result<(), TestError> {
    let realm = sample_realm()?;
    let clients: Vec<AuthClient> = serde_saphyr::from_multiple(SAMPLE_CLIENTS)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(CLIENT_CREDENTIALS)?;
    let job = doc(&docs, "CronJob")?;
    let container = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];

    // The Secret it reads belongs to a confidential client with the grant.
    let id_ref = &env(container, "CLIENT_ID")?["valueFrom"]["secretKeyRef"];
    let secret_ref = &env(container, "CLIENT_SECRET")?["valueFrom"]["secretKeyRef"];
    assert_eq!(id_ref["key"], CLIENT_ID_KEY);
    assert_eq!(secret_ref["key"], CLIENT_SECRET_KEY);
    assert_eq!(id_ref["name"], secret_ref["name"]);
    let client = clients
        .iter()
        .find(|c| id_ref["name"] == secret_name(&c.name_any()).as_str())
        .ok_or("the Secret is no sample client's")?;
    let e = entry(client, &realm)?;
    assert!(e.grant_types.contains(&GrantType::ClientCredentials));
    assert_eq!(client.spec.type_, ClientKind::Confidential);

    // The token endpoint is the realm's (what the client's status names).
    assert_eq!(
        env(container, "TOKEN_ENDPOINT")?["value"],
        format!("{}{TOKEN_PATH}", realm.config.issuer)
    );
    for scope in env(container, "SCOPE")?["value"]
        .as_str()
        .ok_or("no SCOPE")?
        .split(' ')
    {
        assert!(e.scopes.iter().any(|s| s == scope), "scope {scope}");
    }
    // The script asks for that grant with those variables.
    let script = container["args"][0].as_str().ok_or("no script")?;
    for needle in [
        "grant_type=client_credentials",
        "client_id=$CLIENT_ID",
        "client_secret=$CLIENT_SECRET",
        "scope=$SCOPE",
        "$TOKEN_ENDPOINT",
    ] {
        assert!(script.contains(needle), "{needle}");
    }
    Ok(())
}
