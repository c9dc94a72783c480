//! The realm's optional Ingress (`spec.ingress`): one host, MA's public
//! endpoints to MA's public port, OP's to OP's. Never MA's internal port or
//! a metrics port.

use authrealm_tokens::oauth;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::Meta;
use super::names::Component;
use crate::validate::ValidIngress;

/// Prefix of the well-known documents (discovery, JWKS) MA serves.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known";
/// Prefix of OP's protected API (`/api/v1/*`).
pub const API_PREFIX: &str = "/api";
/// Prefix of the login page's stylesheet and icon (OP).
pub const ASSETS_PREFIX: &str = "/oauth2/assets";

/// Every routed path: `(path, pathType, component)`. `Prefix` matches whole
/// path segments (`/api` matches `/api/v1/me`, not `/apis`).
#[must_use]
pub fn routes() -> [(&'static str, &'static str, Component); 9] {
    [
        (WELL_KNOWN_PREFIX, "Prefix", Component::AuthService),
        (oauth::PATH_TOKEN, "Exact", Component::AuthService),
        (oauth::PATH_REVOKE, "Exact", Component::AuthService),
        (oauth::PATH_INTROSPECT, "Exact", Component::AuthService),
        // The authorization endpoint and its login form (`/oauth2/authorize/login`).
        (oauth::PATH_AUTHORIZE, "Prefix", Component::MainProject),
        (ASSETS_PREFIX, "Prefix", Component::MainProject),
        (oauth::PATH_USERINFO, "Exact", Component::MainProject),
        (oauth::PATH_END_SESSION, "Exact", Component::MainProject),
        (API_PREFIX, "Prefix", Component::MainProject),
    ]
}

/// The Ingress `<realm>`.
#[must_use]
pub fn ingress(m: &Meta<'_>, v: &ValidIngress) -> Ingress {
    let mut meta = m.object(m.realm.name.clone(), "ingress");
    if !v.spec.annotations.is_empty() {
        meta.annotations = Some(v.spec.annotations.clone());
    }
    let paths = routes()
        .into_iter()
        .map(|(path, path_type, c)| HTTPIngressPath {
            path: Some(path.to_owned()),
            path_type: path_type.to_owned(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: m.names.workload(c),
                    port: Some(ServiceBackendPort {
                        number: Some(c.port()),
                        name: None,
                    }),
                }),
                resource: None,
            },
        })
        .collect();
    Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: v.spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(v.spec.host.clone()),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            tls: v.spec.tls_secret_name.as_ref().map(|s| {
                vec![IngressTLS {
                    hosts: Some(vec![v.spec.host.clone()]),
                    secret_name: Some(s.clone()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use authrealm_runtime::env;

    use super::super::names::{
        AUTH_SERVICE_INTERNAL_PORT, AUTH_SERVICE_METRICS_PORT, AUTH_SERVICE_PORT,
        MAIN_PROJECT_METRICS_PORT, MAIN_PROJECT_PORT,
    };
    use super::super::testing::{built, config_data, names_of, realm};
    use super::super::{Built, Child, Kind};
    use super::*;
    use crate::crd::{AuthRealmSpec, IngressSpec as Spec};
    use crate::status::published_jwks_url;
    use crate::validate::{Defaults, InvalidSpec, validate};

    fn with_ingress(tls: Option<&str>) -> AuthRealmSpec {
        AuthRealmSpec {
            ingress: Some(Spec {
                host: "login.example.com".into(),
                class_name: Some("nginx".into()),
                tls_secret_name: tls.map(Into::into),
                annotations: BTreeMap::from([(
                    "cert-manager.io/cluster-issuer".into(),
                    "letsencrypt".into(),
                )]),
            }),
            ..AuthRealmSpec::default()
        }
    }

    fn missing() -> InvalidSpec {
        InvalidSpec {
            field: "spec.ingress".into(),
            message: "no Ingress was built".into(),
        }
    }

    fn the_ingress(b: &Built) -> Option<&Ingress> {
        b.children.iter().find_map(|c| match c {
            Child::Ingress(i) => Some(i),
            _ => None,
        })
    }

    /// `(path, pathType, service, port)` of every rule path.
    fn paths(i: &Ingress) -> Vec<(String, String, String, i32)> {
        let rules = i.spec.as_ref().and_then(|s| s.rules.clone());
        rules
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.http)
            .flat_map(|h| h.paths)
            .map(|p| {
                let svc = p.backend.service.unwrap_or_default();
                let port = svc.port.and_then(|p| p.number).unwrap_or_default();
                (p.path.unwrap_or_default(), p.path_type, svc.name, port)
            })
            .collect()
    }

    #[test]
    fn the_ingress_routes_public_paths_to_public_ports_only() -> Result<(), InvalidSpec> {
        let b = built(with_ingress(Some("login-tls")))?;
        assert_eq!(
            names_of(&b).last().map(String::as_str),
            Some("Ingress/demo")
        );
        assert!(!b.absent.iter().any(|(k, _)| *k == Kind::Ingress));
        let i = the_ingress(&b).ok_or_else(missing)?;
        let owners = i.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "AuthRealm");
        assert_eq!(i.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(
            i.metadata.annotations.clone().unwrap_or_default()["cert-manager.io/cluster-issuer"],
            "letsencrypt"
        );
        let spec = i.spec.clone().unwrap_or_default();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let tls = spec.tls.unwrap_or_default();
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].secret_name.as_deref(), Some("login-tls"));
        assert_eq!(tls[0].hosts, Some(vec!["login.example.com".to_owned()]));
        let rules = spec.rules.unwrap_or_default();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].host.as_deref(), Some("login.example.com"));
        let (ma, op) = ("demo-auth-service", "demo-main-project");
        let want = [
            ("/.well-known", "Prefix", ma, AUTH_SERVICE_PORT),
            ("/oauth2/token", "Exact", ma, AUTH_SERVICE_PORT),
            ("/oauth2/revoke", "Exact", ma, AUTH_SERVICE_PORT),
            ("/oauth2/introspect", "Exact", ma, AUTH_SERVICE_PORT),
            ("/oauth2/authorize", "Prefix", op, MAIN_PROJECT_PORT),
            ("/oauth2/assets", "Prefix", op, MAIN_PROJECT_PORT),
            ("/oauth2/userinfo", "Exact", op, MAIN_PROJECT_PORT),
            ("/oauth2/logout", "Exact", op, MAIN_PROJECT_PORT),
            ("/api", "Prefix", op, MAIN_PROJECT_PORT),
        ];
        let got = paths(i);
        let want: Vec<_> = want
            .iter()
            .map(|(p, t, s, n)| ((*p).to_owned(), (*t).to_owned(), (*s).to_owned(), *n))
            .collect();
        assert_eq!(got, want);
        for (path, _, _, port) in &got {
            assert!(
                ![
                    AUTH_SERVICE_INTERNAL_PORT,
                    AUTH_SERVICE_METRICS_PORT,
                    MAIN_PROJECT_METRICS_PORT
                ]
                .contains(port),
                "{path} goes to the internal or a metrics port {port}"
            );
        }
        Ok(())
    }

    #[test]
    fn without_tls_class_or_annotations_the_ingress_is_plain() -> Result<(), InvalidSpec> {
        let mut spec = with_ingress(None);
        if let Some(i) = spec.ingress.as_mut() {
            i.class_name = None;
            i.annotations.clear();
        }
        let b = built(spec)?;
        let i = the_ingress(&b).ok_or_else(missing)?;
        assert_eq!(i.metadata.annotations, None);
        let s = i.spec.clone().unwrap_or_default();
        assert_eq!((s.ingress_class_name, s.tls), (None, None));
        Ok(())
    }

    #[test]
    fn the_issuer_and_public_url_follow_the_host() -> Result<(), InvalidSpec> {
        for (tls, origin) in [
            (Some("login-tls"), "https://login.example.com"),
            (None, "http://login.example.com"),
        ] {
            let v = validate(&realm(with_ingress(tls)), &Defaults::default())?;
            assert_eq!(v.config.issuer, origin);
            assert_eq!(v.clients.public_url, origin);
            assert_eq!(
                published_jwks_url(&v),
                format!("{origin}/.well-known/jwks.json")
            );
            let b = built(with_ingress(tls))?;
            let ma = config_data(&b, "demo-auth-service-config");
            assert_eq!(ma[env::ISSUER], origin);
            assert_eq!(ma[env::ma::OP_PUBLIC_URL], origin);
            assert_eq!(
                config_data(&b, "demo-main-project-config")[env::ISSUER],
                origin
            );
        }
        Ok(())
    }

    #[test]
    fn an_explicit_issuer_or_public_url_wins() -> Result<(), InvalidSpec> {
        let mut spec = with_ingress(Some("login-tls"));
        spec.tokens.issuer = Some("https://id.example.com/realm".into());
        let v = validate(&realm(spec.clone()), &Defaults::default())?;
        assert_eq!(v.config.issuer, "https://id.example.com/realm");
        // OP's public URL still follows the host unless it is set too.
        assert_eq!(v.clients.public_url, "https://login.example.com");
        spec.clients.public_url = Some("https://app.example.com/".into());
        let v = validate(&realm(spec), &Defaults::default())?;
        assert_eq!(v.clients.public_url, "https://app.example.com");
        Ok(())
    }

    #[test]
    fn without_the_field_there_is_no_ingress_and_it_is_pruned() -> Result<(), InvalidSpec> {
        let b = built(AuthRealmSpec::default())?;
        assert!(the_ingress(&b).is_none());
        assert!(b.absent.contains(&(Kind::Ingress, "demo".into())));
        let v = validate(&realm(AuthRealmSpec::default()), &Defaults::default())?;
        assert_eq!(v.config.issuer, super::super::testing::URL);
        assert_eq!(
            published_jwks_url(&v),
            "http://demo-auth-service.team-a.svc:8081/.well-known/jwks.json"
        );
        // Turning it on adds the Ingress and changes the issuer the services get.
        let on = built(with_ingress(None))?;
        assert!(the_ingress(&on).is_some());
        assert!(!on.absent.contains(&(Kind::Ingress, "demo".into())));
        Ok(())
    }

    #[test]
    fn a_bad_ingress_is_refused_naming_its_field() {
        type Change = fn(&mut Spec);
        let cases: [(&str, Change); 7] = [
            ("spec.ingress.host", |i| {
                i.host = "https://login.example.com".into()
            }),
            ("spec.ingress.host", |i| i.host = "Login.example.com".into()),
            ("spec.ingress.host", |i| i.host = "*.example.com".into()),
            ("spec.ingress.host", |i| {
                i.host = "login..example.com".into()
            }),
            ("spec.ingress.host", |i| {
                i.host = "login.example.com:443".into()
            }),
            ("spec.ingress.tlsSecretName", |i| {
                i.tls_secret_name = Some("Bad Name".into());
            }),
            ("spec.ingress.annotations", |i| {
                i.annotations.insert("has space".into(), "x".into());
            }),
        ];
        for (field, change) in cases {
            let mut spec = with_ingress(None);
            if let Some(i) = spec.ingress.as_mut() {
                change(i);
            }
            match validate(&realm(spec), &Defaults::default()) {
                Err(e) => assert_eq!(e.field, field),
                Ok(v) => unreachable!("accepted {:?}", v.ingress),
            }
        }
    }
}
