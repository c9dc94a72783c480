//! Names, ports, URLs and labels of a realm's children: the one place that
//! says what an object is called and how it is selected.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// MA's public port (JWKS, discovery, `/oauth2/*`): `AUTHREALM_LISTEN`.
pub const AUTH_SERVICE_PORT: i32 = 8081;
/// MA's internal `/v1` API (service credential; only OP may reach it):
/// `AUTHREALM_INTERNAL_LISTEN`.
pub const AUTH_SERVICE_INTERNAL_PORT: i32 = 8083;
/// MA's `/metrics`, `/healthz`, `/readyz`: `AUTHREALM_METRICS_LISTEN`.
pub const AUTH_SERVICE_METRICS_PORT: i32 = 9081;
/// OP's API: `AUTHREALM_LISTEN`.
pub const MAIN_PROJECT_PORT: i32 = 8080;
/// OP's `/metrics`, `/healthz`, `/readyz`: `AUTHREALM_METRICS_LISTEN`.
pub const MAIN_PROJECT_METRICS_PORT: i32 = 9080;
/// Path of the JWKS on MA's public port.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of OP's forward-auth endpoint on its API port (gateways'
/// `auth_request`, `forwardAuth`, `ext_authz`).
pub const FORWARD_AUTH_PATH: &str = "/auth/verify";
/// Redis's port.
pub const REDIS_PORT: i32 = 6379;

/// The three workloads of a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// MA.
    AuthService,
    /// OP.
    MainProject,
    /// Managed Redis.
    Redis,
}

impl Component {
    /// Label value and name suffix.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthService => "auth-service",
            Self::MainProject => "main-project",
            Self::Redis => "redis",
        }
    }

    /// The port its Service and container serve on (MA: the public one).
    #[must_use]
    pub fn port(self) -> i32 {
        match self {
            Self::AuthService => AUTH_SERVICE_PORT,
            Self::MainProject => MAIN_PROJECT_PORT,
            Self::Redis => REDIS_PORT,
        }
    }

    /// Every named port of its container and Service: `(name, port)`.
    #[must_use]
    pub fn ports(self) -> &'static [(&'static str, i32)] {
        match self {
            Self::AuthService => &[
                ("http", AUTH_SERVICE_PORT),
                ("internal", AUTH_SERVICE_INTERNAL_PORT),
                ("metrics", AUTH_SERVICE_METRICS_PORT),
            ],
            Self::MainProject => &[
                ("http", MAIN_PROJECT_PORT),
                ("metrics", MAIN_PROJECT_METRICS_PORT),
            ],
            Self::Redis => &[("redis", REDIS_PORT)],
        }
    }
}

/// Names of a realm's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    realm: String,
}

impl Names {
    /// Names for the realm called `realm`.
    #[must_use]
    pub fn new(realm: &str) -> Self {
        Self {
            realm: realm.to_owned(),
        }
    }
    /// Deployment, Service, ServiceAccount, PDB and NetworkPolicy of a component.
    #[must_use]
    pub fn workload(&self, c: Component) -> String {
        format!("{}-{}", self.realm, c.as_str())
    }
    /// ConfigMap of a component.
    #[must_use]
    pub fn config(&self, c: Component) -> String {
        format!("{}-{}-config", self.realm, c.as_str())
    }
    /// The signing-key Secret.
    #[must_use]
    pub fn keys(&self) -> String {
        format!("{}-signing-keys", self.realm)
    }
    /// The internal service-credential Secret.
    #[must_use]
    pub fn credential(&self) -> String {
        format!("{}-service-credential", self.realm)
    }
    /// The managed Redis's PersistentVolumeClaim.
    #[must_use]
    pub fn redis_data(&self) -> String {
        format!("{}-redis-data", self.realm)
    }
    /// The managed Redis password Secret.
    #[must_use]
    pub fn redis_secret(&self) -> String {
        format!("{}-redis-password", self.realm)
    }
    /// The OAuth client registry Secret (`clients.json`, hashes only).
    #[must_use]
    pub fn clients(&self) -> String {
        format!("{}-oauth-clients", self.realm)
    }
}

/// In-cluster base URL of a component's Service.
#[must_use]
pub fn service_url(realm: &str, namespace: &str, c: Component) -> String {
    format!("http://{realm}-{}.{namespace}.svc:{}", c.as_str(), c.port())
}

/// MA's internal API as OP reaches it (`AUTHREALM_AUTH_SERVICE_URL`).
#[must_use]
pub fn internal_url(realm: &str, namespace: &str) -> String {
    format!(
        "http://{realm}-{}.{namespace}.svc:{AUTH_SERVICE_INTERNAL_PORT}",
        Component::AuthService.as_str()
    )
}

/// MA's JWKS in the cluster (`AUTHREALM_JWKS_URL` of OP, `status.jwksUrl`).
#[must_use]
pub fn jwks_url(realm: &str, namespace: &str) -> String {
    format!(
        "{}{JWKS_PATH}",
        service_url(realm, namespace, Component::AuthService)
    )
}

/// OP's forward-auth endpoint in the cluster (`status.forwardAuthUrl`).
#[must_use]
pub fn forward_auth_url(realm: &str, namespace: &str) -> String {
    format!(
        "{}{FORWARD_AUTH_PATH}",
        service_url(realm, namespace, Component::MainProject)
    )
}

/// The managed Redis URL for a password.
#[must_use]
pub fn redis_url(realm: &str, namespace: &str, password: &str) -> String {
    format!(
        "redis://:{password}@{}.{namespace}.svc:{REDIS_PORT}/0",
        Names::new(realm).workload(Component::Redis)
    )
}

/// Labels every child carries.
#[must_use]
pub fn common_labels(realm: &str, component: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(realm, component);
    l.insert("app.kubernetes.io/part-of".into(), "authrealm".into());
    l.insert(
        "app.kubernetes.io/managed-by".into(),
        "authrealm-operator".into(),
    );
    l
}

/// The subset of labels used in selectors (never changes for a workload).
#[must_use]
pub fn selector_labels(realm: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "authrealm".into()),
        ("app.kubernetes.io/instance".into(), realm.to_owned()),
        ("app.kubernetes.io/component".into(), component.to_owned()),
    ])
}

/// The label selector of a component's pods.
#[must_use]
pub fn selector(realm: &str, c: Component) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(realm, c.as_str())),
        ..LabelSelector::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_and_selectors_follow_the_realm() {
        let n = Names::new("demo");
        assert_eq!(n.workload(Component::AuthService), "demo-auth-service");
        assert_eq!(n.config(Component::MainProject), "demo-main-project-config");
        assert_eq!(n.keys(), "demo-signing-keys");
        assert_eq!(n.credential(), "demo-service-credential");
        assert_eq!(n.redis_secret(), "demo-redis-password");
        assert_eq!(n.clients(), "demo-oauth-clients");
        assert_eq!(
            service_url("demo", "team-a", Component::AuthService),
            "http://demo-auth-service.team-a.svc:8081"
        );
        assert_eq!(
            internal_url("demo", "team-a"),
            "http://demo-auth-service.team-a.svc:8083"
        );
        assert_eq!(
            jwks_url("demo", "team-a"),
            "http://demo-auth-service.team-a.svc:8081/.well-known/jwks.json"
        );
        assert_eq!(
            forward_auth_url("demo", "team-a"),
            "http://demo-main-project.team-a.svc:8080/auth/verify"
        );
        // The path OP serves.
        assert_eq!(FORWARD_AUTH_PATH, main_project::forward_auth::PATH);
        assert_eq!(
            redis_url("demo", "team-a", "pw"),
            "redis://:pw@demo-redis.team-a.svc:6379/0"
        );
        let sel = selector("demo", Component::Redis)
            .match_labels
            .unwrap_or_default();
        assert_eq!(sel["app.kubernetes.io/component"], "redis");
        assert_eq!(sel.len(), 3);
        // The longest name a 40-character realm produces fits a DNS label.
        let long = Names::new(&"r".repeat(crate::crd::MAX_NAME_LEN));
        assert!(long.config(Component::MainProject).len() <= 63);
    }
}
