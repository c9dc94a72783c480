//! The committed CRD, the defaults it advertises, and the sample manifest.

use super::*;

const COMMITTED_CRD: &str = include_str!("../../../crds/authrealm.yaml");
const SAMPLE: &str = include_str!("../../../examples/authrealm.yaml");

#[test]
fn committed_crd_matches_the_code() -> Result<(), serde_saphyr::SerializeError> {
    let generated = crd_yaml()?;
    assert!(
        generated == COMMITTED_CRD,
        "crds/authrealm.yaml is stale: run `cargo run -p operator --bin crdgen -- crds/authrealm.yaml` \
         (and scripts/sync-chart-crd) and commit the result"
    );
    Ok(())
}

#[test]
fn an_empty_spec_means_every_default() -> Result<(), serde_json::Error> {
    let spec: AuthRealmSpec = serde_json::from_str("{}")?;
    assert_eq!(spec, AuthRealmSpec::default());
    assert_eq!(spec.auth_service.image, None);
    assert_eq!(spec.main_project.image, None);
    assert_eq!(spec.signing_keys.algorithm, Algorithm::EdDSA);
    assert!(spec.redis.external.is_none() && spec.database.postgres.is_none());
    // The defaults the schema advertises are the same values.
    let crd = serde_json::to_value(AuthRealm::crd())?;
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(
        props["signingKeys"]["default"],
        serde_json::to_value(SigningKeysSpec::default())?
    );
    assert_eq!(
        props["authService"]["default"],
        serde_json::to_value(ServiceSpec::auth_service())?
    );
    Ok(())
}

#[test]
fn scaling_alone_needs_no_image() -> Result<(), Box<dyn std::error::Error>> {
    // What `spec.authService: {replicas: 2}` becomes: no image, so the
    // schema must not require one and the operator fills its own.
    let spec: AuthRealmSpec = serde_json::from_str(r#"{"authService":{"replicas":2}}"#)?;
    assert_eq!(spec.auth_service.replicas, 2);
    assert_eq!(spec.auth_service.image, None);
    let crd = serde_json::to_value(AuthRealm::crd())?;
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for part in ["authService", "mainProject"] {
        let required = props[part]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(required.is_empty(), "{part} requires {required:?}");
    }
    Ok(())
}

#[test]
fn future_times_and_the_issuer_print_readably() -> Result<(), serde_json::Error> {
    let crd = serde_json::to_value(AuthRealm::crd())?;
    let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let column = |name: &str| columns.iter().find(|c| c["name"] == name).cloned();
    // `date` columns print <invalid> for times in the future.
    let next = column("Next Rotation").unwrap_or_default();
    assert_eq!(next["type"], "string");
    assert_eq!(next["jsonPath"], ".status.nextRotationTime");
    let issuer = column("Issuer").unwrap_or_default();
    assert_eq!(
        (issuer["jsonPath"].clone(), issuer["priority"].clone()),
        (".status.issuer".into(), 1.into())
    );
    Ok(())
}

#[test]
fn the_sample_manifest_is_a_valid_realm() -> Result<(), Box<dyn std::error::Error>> {
    let realm: AuthRealm = serde_saphyr::from_str(SAMPLE)?;
    assert_eq!(realm.metadata.name.as_deref(), Some("demo"));
    crate::validate::validate(&realm, &crate::validate::Defaults::default())?;
    assert!(realm.spec.redis.managed.is_some());
    assert_eq!(realm.spec.auth_service.replicas, 2);
    Ok(())
}

const ENVOY: &str = include_str!("../../../examples/envoy-jwt-authn.yaml");
const ISTIO: &str = include_str!("../../../examples/istio-requestauthentication.yaml");

/// What the status of the sample realm says a gateway must use.
fn sample_status() -> Result<(String, String, String), Box<dyn std::error::Error>> {
    let realm: AuthRealm = serde_saphyr::from_str(SAMPLE)?;
    let valid = crate::validate::validate(&realm, &crate::validate::Defaults::default())?;
    let jwks = crate::children::names::jwks_url("demo", "default");
    Ok((valid.config.issuer, valid.config.audience, jwks))
}

#[test]
fn the_envoy_snippet_uses_what_the_status_says() -> Result<(), Box<dyn std::error::Error>> {
    let (issuer, audience, jwks) = sample_status()?;
    let envoy: serde_json::Value = serde_saphyr::from_str(ENVOY)?;
    let provider = &envoy["http_filter"]["typed_config"]["providers"]["authrealm-demo"];
    assert_eq!(provider["issuer"], issuer.as_str());
    assert_eq!(provider["audiences"][0], audience.as_str());
    let uri = &provider["remote_jwks"]["http_uri"];
    assert_eq!(uri["uri"], jwks.as_str());
    // The cluster the filter fetches from points at the JWKS URL's host and port.
    assert_eq!(uri["cluster"], envoy["cluster"]["name"]);
    let addr = &envoy["cluster"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ["address"]["socket_address"];
    let host_port = format!(
        "http://{}:{}/",
        addr["address"].as_str().unwrap_or_default(),
        addr["port_value"]
    );
    assert!(jwks.starts_with(&host_port), "{jwks} vs {host_port}");
    Ok(())
}

#[test]
fn the_istio_snippet_uses_what_the_status_says() -> Result<(), Box<dyn std::error::Error>> {
    let (issuer, audience, jwks) = sample_status()?;
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(ISTIO)?;
    let auth = docs
        .iter()
        .find(|d| d["kind"] == "RequestAuthentication")
        .ok_or("no RequestAuthentication")?;
    let rule = &auth["spec"]["jwtRules"][0];
    assert_eq!(rule["issuer"], issuer.as_str());
    assert_eq!(rule["audiences"][0], audience.as_str());
    assert_eq!(rule["jwksUri"], jwks.as_str());
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "AuthorizationPolicy")
        .ok_or("no AuthorizationPolicy")?;
    let principal = &policy["spec"]["rules"][0]["from"][0]["source"]["requestPrincipals"][0];
    assert_eq!(principal, &serde_json::Value::from(format!("{issuer}/*")));
    Ok(())
}

const COMMITTED_CLIENT_CRD: &str = include_str!("../../../crds/authclient.yaml");

#[test]
fn committed_client_crd_matches_the_code() -> Result<(), serde_saphyr::SerializeError> {
    assert!(
        client_crd_yaml()? == COMMITTED_CLIENT_CRD,
        "crds/authclient.yaml is stale: run `cargo run -p operator --bin crdgen -- crds/authclient.yaml` \
         (and scripts/sync-chart-crd) and commit the result"
    );
    Ok(())
}

#[test]
fn the_client_crd_explains_itself_and_prints_its_columns() -> Result<(), serde_json::Error> {
    let crd = serde_json::to_value(AuthClient::crd())?;
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "AuthClient");
    let version = &crd["spec"]["versions"][0];
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    // Doc comments are what `kubectl explain` prints.
    for field in [
        "realmRef",
        "type",
        "grantTypes",
        "redirectUris",
        "accessTokenTtl",
        "introspection",
    ] {
        let d = spec["properties"][field]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(!d.is_empty(), "{field} has no description");
    }
    let mut required: Vec<String> = serde_json::from_value(spec["required"].clone())?;
    required.sort();
    assert_eq!(required, ["grantTypes", "realmRef"]);
    assert_eq!(spec["properties"]["type"]["default"], "confidential");
    let columns: Vec<String> = version["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        columns,
        [
            "Ready",
            "Reason",
            "Realm",
            "Client ID",
            "Type",
            "Secret",
            "Age"
        ]
    );
    // The realm's side: clients from other namespaces are opt-in.
    let spec: AuthRealmSpec = serde_json::from_str("{}")?;
    assert!(spec.clients.allowed_namespaces.is_empty());
    Ok(())
}

const INGRESS_NGINX: &str = include_str!("../../../examples/ingress-nginx-forward-auth.yaml");
const TRAEFIK: &str = include_str!("../../../examples/traefik-forward-auth.yaml");
const ISTIO_EXT_AUTHZ: &str = include_str!("../../../examples/istio-ext-authz.yaml");

/// The forward-auth URL the status of the sample realm carries, and the
/// identity headers OP answers with (default prefix), lower-cased.
fn forward_auth() -> Result<(String, Vec<String>), Box<dyn std::error::Error>> {
    // The reconcile test (fixtures/scenarios.rs) checks that the status
    // carries this URL.
    let realm: AuthRealm = serde_saphyr::from_str(SAMPLE)?;
    let url = crate::children::names::forward_auth_url(
        realm.metadata.name.as_deref().unwrap_or_default(),
        "default",
    );
    let names = main_project::forward_auth::ForwardAuthHeaders::new(
        main_project::forward_auth::DEFAULT_HEADER_PREFIX,
    )?;
    let headers = names
        .identity()
        .iter()
        .map(|h| h.as_str().to_owned())
        .collect();
    Ok((url, headers))
}

fn lower(list: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.as_ref().trim().to_lowercase())
        .collect()
}

/// The status URL with the cluster domain, for resolvers that search no domains.
fn with_cluster_domain(url: &str) -> String {
    url.replacen(".svc:", ".svc.cluster.local:", 1)
}

#[test]
fn the_ingress_nginx_snippet_uses_what_the_status_says() -> Result<(), Box<dyn std::error::Error>> {
    let (url, headers) = forward_auth()?;
    let ingress: serde_json::Value = serde_saphyr::from_str(INGRESS_NGINX)?;
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/auth-url"],
        with_cluster_domain(&url).as_str()
    );
    let listed = annotations["nginx.ingress.kubernetes.io/auth-response-headers"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(lower(listed.split(',')), headers);
    Ok(())
}

#[test]
fn the_traefik_snippet_uses_what_the_status_says() -> Result<(), Box<dyn std::error::Error>> {
    let (url, headers) = forward_auth()?;
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(TRAEFIK)?;
    let mw = docs
        .iter()
        .find(|d| d["kind"] == "Middleware")
        .ok_or("no Middleware")?;
    let fa = &mw["spec"]["forwardAuth"];
    assert_eq!(fa["address"], url.as_str());
    let listed = fa["authResponseHeaders"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        lower(listed.iter().map(|v| v.as_str().unwrap_or_default())),
        headers
    );
    let route = docs
        .iter()
        .find(|d| d["kind"] == "IngressRoute")
        .ok_or("no IngressRoute")?;
    assert_eq!(
        route["spec"]["routes"][0]["middlewares"][0]["name"],
        mw["metadata"]["name"]
    );
    Ok(())
}

#[test]
fn the_istio_ext_authz_snippet_uses_what_the_status_says() -> Result<(), Box<dyn std::error::Error>>
{
    let (url, headers) = forward_auth()?;
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(ISTIO_EXT_AUTHZ)?;
    let mesh = docs
        .iter()
        .find(|d| d["kind"] == "IstioOperator")
        .ok_or("no IstioOperator")?;
    let provider = &mesh["spec"]["meshConfig"]["extensionProviders"][0];
    let http = &provider["envoyExtAuthzHttp"];
    let rebuilt = format!(
        "http://{}:{}{}",
        http["service"].as_str().unwrap_or_default(),
        http["port"],
        http["pathPrefix"].as_str().unwrap_or_default()
    );
    assert_eq!(rebuilt, with_cluster_domain(&url));
    assert_eq!(
        lower(["authorization"]),
        lower(
            http["includeRequestHeadersInCheck"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| v.as_str().unwrap_or_default()),
        )
    );
    let upstream = http["headersToUpstreamOnAllow"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        lower(upstream.iter().map(|v| v.as_str().unwrap_or_default())),
        headers
    );
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "AuthorizationPolicy")
        .ok_or("no AuthorizationPolicy")?;
    assert_eq!(policy["spec"]["action"], "CUSTOM");
    assert_eq!(policy["spec"]["provider"]["name"], provider["name"]);
    Ok(())
}
