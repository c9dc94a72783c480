//! A mock Kubernetes API server (`tower_test::mock`) that checks every request
//! the reconciler makes — method, path, field manager and body — and answers
//! it, plus the reconcile scenarios driven against it.

use std::sync::Arc;
use std::time::Duration;

use authrealm_tokens::keyset::{FILE_NAME, KeySetFile};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::DeploymentStatus;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

use crate::crd::AuthRealm;
use crate::metrics::Metrics;
use crate::reconcile::{Context, FIELD_MANAGER};

pub type TestError = Box<dyn std::error::Error + Send + Sync>;
type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The fixed "now" of every scenario: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;
/// Namespace of the test realms.
pub const NS: &str = "team-a";

fn fail(msg: impl Into<String>) -> TestError {
    msg.into().into()
}

/// A context whose client talks to the returned mock server, with time pinned at `now`.
pub fn context(now: i64) -> Result<(Arc<Context>, ApiServer), TestError> {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: None,
        },
    );
    let ctx = Context::with_clock(client, recorder, Metrics::new()?, Arc::new(move || now));
    Ok((Arc::new(ctx), ApiServer { handle }))
}

/// A request as the server saw it.
pub struct Seen {
    /// Method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Body as JSON (`Null` when empty).
    pub body: Value,
}

/// The mock API server's side.
pub struct ApiServer {
    handle: Handle,
}

impl ApiServer {
    /// Takes the next request, answers it with `respond(&seen)`, and returns it.
    async fn next(
        &mut self,
        respond: impl FnOnce(&Seen) -> (StatusCode, Value),
    ) -> Result<Seen, TestError> {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request())
            .await
            .map_err(|_| fail("timed out waiting for the next request"))?
            .ok_or_else(|| fail("the client went away before the expected request"))?;
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await?;
        let seen = Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)?
            },
        };
        let (status, answer) = respond(&seen);
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&answer)?))?,
        );
        Ok(seen)
    }

    /// Asserts the client makes no further request.
    pub async fn expect_no_more(mut self) -> Result<(), TestError> {
        match tokio::time::timeout(Duration::from_millis(300), self.handle.next_request()).await {
            Ok(Some((req, _))) => Err(fail(format!(
                "unexpected request {} {}",
                req.method(),
                req.uri()
            ))),
            _ => Ok(()),
        }
    }

    /// `GET` of a Secret, answered with it or 404.
    pub async fn get_secret(
        &mut self,
        name: &str,
        found: Option<&Secret>,
    ) -> Result<(), TestError> {
        let answer = match found {
            Some(s) => (StatusCode::OK, serde_json::to_value(s)?),
            None => not_found(),
        };
        let seen = self.next(|_| answer).await?;
        check(
            &seen,
            &Method::GET,
            &format!("/api/v1/namespaces/{NS}/secrets/{name}"),
        )?;
        Ok(())
    }

    /// A server-side apply of a child of `path` (`/api/v1/.../secrets/x`): checks
    /// the field manager, force, and that the body is the named object owned
    /// by the realm; answers with the object plus `status` when given.
    pub async fn apply(&mut self, path: &str, status: Option<&Value>) -> Result<Value, TestError> {
        let seen = self
            .next(|s| {
                let mut obj = s.body.clone();
                if let Some(st) = status {
                    obj["status"] = st.clone();
                }
                (StatusCode::OK, obj)
            })
            .await?;
        check(&seen, &Method::PATCH, path)?;
        check_apply_query(&seen)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        if seen.body["metadata"]["name"] != name {
            return Err(fail(format!(
                "{path}: body names {}",
                seen.body["metadata"]["name"]
            )));
        }
        let owner = &seen.body["metadata"]["ownerReferences"][0];
        if owner["kind"] != "AuthRealm" || owner["controller"] != true || owner["uid"] != "uid-1" {
            return Err(fail(format!("{path}: owner reference {owner}")));
        }
        if seen.body["metadata"]["labels"]["app.kubernetes.io/instance"] != "demo" {
            return Err(fail(format!(
                "{path}: labels {}",
                seen.body["metadata"]["labels"]
            )));
        }
        Ok(seen.body)
    }

    /// A `DELETE` of an optional child, answered 404 (it did not exist).
    pub async fn delete_absent(&mut self, path: &str) -> Result<(), TestError> {
        let seen = self.next(|_| not_found()).await?;
        check(&seen, &Method::DELETE, path)
    }

    /// The status apply; returns its `status`.
    pub async fn status_patch(&mut self) -> Result<Value, TestError> {
        let seen = self
            .next(|s| {
                let mut obj = json!({"metadata": {"name": "demo", "namespace": NS}, "spec": {}});
                obj["apiVersion"] = s.body["apiVersion"].clone();
                obj["kind"] = s.body["kind"].clone();
                obj["status"] = s.body["status"].clone();
                (StatusCode::OK, obj)
            })
            .await?;
        check(
            &seen,
            &Method::PATCH,
            &format!("/apis/authrealm.io/v1alpha1/namespaces/{NS}/authrealms/demo/status"),
        )?;
        check_apply_query(&seen)?;
        if seen.body["kind"] != "AuthRealm" || seen.body["apiVersion"] != "authrealm.io/v1alpha1" {
            return Err(fail(format!("status body {}", seen.body)));
        }
        Ok(seen.body["status"].clone())
    }

    /// An Event about the realm; returns `(type, reason, note)`.
    pub async fn event(&mut self) -> Result<(String, String, String), TestError> {
        let seen = self.next(|s| (StatusCode::CREATED, s.body.clone())).await?;
        check(
            &seen,
            &Method::POST,
            &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        )?;
        if seen.body["regarding"]["name"] != "demo" || seen.body["regarding"]["kind"] != "AuthRealm"
        {
            return Err(fail(format!("event about {}", seen.body["regarding"])));
        }
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Ok((
            s(&seen.body["type"]),
            s(&seen.body["reason"]),
            s(&seen.body["note"]),
        ))
    }
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

fn check(seen: &Seen, method: &Method, path: &str) -> Result<(), TestError> {
    if seen.method != method || seen.path != path {
        return Err(fail(format!(
            "expected {method} {path}, got {} {}",
            seen.method, seen.path
        )));
    }
    Ok(())
}

fn check_apply_query(seen: &Seen) -> Result<(), TestError> {
    let q = &seen.query;
    if !q.contains(&format!("fieldManager={FIELD_MANAGER}")) || !q.contains("force=true") {
        return Err(fail(format!("{}: apply query {q:?}", seen.path)));
    }
    Ok(())
}

/// Paths of a realm's children.
pub mod paths {
    use super::NS;

    /// A core/v1 object.
    pub fn core(plural: &str, name: &str) -> String {
        format!("/api/v1/namespaces/{NS}/{plural}/{name}")
    }
    /// An object of a named API group.
    pub fn group(group_version: &str, plural: &str, name: &str) -> String {
        format!("/apis/{group_version}/namespaces/{NS}/{plural}/{name}")
    }
}

/// What the applies of one reconcile of the default realm carried.
pub struct Applied {
    /// Body of each Secret apply, by name.
    pub secrets: std::collections::BTreeMap<String, Value>,
    /// Body of each Deployment apply, by name.
    pub deployments: std::collections::BTreeMap<String, Value>,
}

impl ApiServer {
    /// Every apply and prune of a default realm (managed Redis, one replica
    /// each, embedded database), in the reconciler's order.
    pub async fn default_realm_applies(
        &mut self,
        deployment_status: Option<&Value>,
    ) -> Result<Applied, TestError> {
        use paths::{core, group};
        let mut secrets = std::collections::BTreeMap::new();
        let mut deployments = std::collections::BTreeMap::new();
        for sa in ["demo-auth-service", "demo-main-project", "demo-redis"] {
            let b = self.apply(&core("serviceaccounts", sa), None).await?;
            if b["automountServiceAccountToken"] != false {
                return Err(fail(format!("{sa} mounts an API token")));
            }
        }
        for cm in ["demo-auth-service-config", "demo-main-project-config"] {
            self.apply(&core("configmaps", cm), None).await?;
        }
        for s in [
            "demo-signing-keys",
            "demo-service-credential",
            "demo-redis-password",
        ] {
            secrets.insert(s.to_owned(), self.apply(&core("secrets", s), None).await?);
        }
        for svc in ["demo-auth-service", "demo-main-project", "demo-redis"] {
            self.apply(&core("services", svc), None).await?;
        }
        for d in ["demo-auth-service", "demo-main-project", "demo-redis"] {
            let body = self
                .apply(&group("apps/v1", "deployments", d), deployment_status)
                .await?;
            deployments.insert(d.to_owned(), body);
        }
        for np in ["demo-auth-service", "demo-redis"] {
            self.apply(&group("networking.k8s.io/v1", "networkpolicies", np), None)
                .await?;
        }
        for pdb in ["demo-auth-service", "demo-main-project"] {
            self.delete_absent(&group("policy/v1", "poddisruptionbudgets", pdb))
                .await?;
        }
        Ok(Applied {
            secrets,
            deployments,
        })
    }
}

/// A realm as the API server would send it.
pub fn realm(spec: crate::crd::AuthRealmSpec) -> AuthRealm {
    let mut r = AuthRealm::new("demo", spec);
    r.metadata.namespace = Some(NS.into());
    r.metadata.uid = Some("uid-1".into());
    r.metadata.generation = Some(1);
    r
}

/// The Secret the API server would return for an applied Secret body.
pub fn secret_from_apply(body: &Value) -> Result<Secret, TestError> {
    Ok(serde_json::from_value(body.clone())?)
}

/// The key set inside an applied signing-key Secret body.
pub fn keyset_of(secret_body: &Value) -> Result<KeySetFile, TestError> {
    let s = secret_from_apply(secret_body)?;
    let bytes = s
        .data
        .as_ref()
        .and_then(|d| d.get(FILE_NAME))
        .ok_or_else(|| fail("no keyset.json in the key Secret"))?;
    Ok(KeySetFile::parse(&bytes.0)?)
}

/// A key Secret holding `file`, as the API server would return it.
pub fn key_secret(file: &KeySetFile, handled: Option<&str>) -> Result<Secret, TestError> {
    let mut s = Secret::default();
    s.metadata.name = Some("demo-signing-keys".into());
    s.metadata.namespace = Some(NS.into());
    if let Some(h) = handled {
        s.metadata.annotations = Some(
            [(
                crate::children::ROTATE_HANDLED_ANNOTATION.to_owned(),
                h.to_owned(),
            )]
            .into(),
        );
    }
    s.data = Some([(FILE_NAME.to_owned(), ByteString(file.to_json()?))].into());
    Ok(s)
}

/// A Deployment status reporting every pod available.
pub fn available() -> Result<Value, TestError> {
    Ok(serde_json::to_value(DeploymentStatus {
        available_replicas: Some(1),
        ready_replicas: Some(1),
        updated_replicas: Some(1),
        replicas: Some(1),
        conditions: Some(vec![k8s_openapi::api::apps::v1::DeploymentCondition {
            type_: "Available".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        ..DeploymentStatus::default()
    })?)
}

#[cfg(test)]
mod scenarios {
    use super::*;
    use crate::crd::{AuthRealmSpec, AuthRealmStatus, ROTATE_ANNOTATION, SecretKeyRef};
    use crate::reconcile::reconcile;
    use authrealm_tokens::keyset::{FORMAT_VERSION, KeyEntry};
    use authrealm_tokens::{KeyState, SigningAlgorithm};
    use kube::runtime::controller::Action;

    fn condition<'a>(status: &'a Value, type_: &str) -> Result<&'a Value, TestError> {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
            .ok_or_else(|| fail(format!("no {type_} condition in {status}")))
    }

    /// Runs `reconcile` while `script` plays the API server; both must succeed
    /// and the reconciler must make no request beyond the script.
    async fn run<T>(
        realm: AuthRealm,
        script: impl AsyncFnOnce(&mut ApiServer) -> Result<T, TestError>,
    ) -> Result<(Action, T), TestError> {
        let (ctx, mut server) = context(NOW)?;
        let verifier = async move {
            let out = script(&mut server).await?;
            server.expect_no_more().await?;
            Ok::<T, TestError>(out)
        };
        let (action, out) = tokio::join!(reconcile(Arc::new(realm), ctx), verifier);
        Ok((action?, out?))
    }

    #[tokio::test]
    async fn first_reconcile_of_a_new_realm_creates_everything() -> Result<(), TestError> {
        let (action, (applied, status, events)) = run(
            realm(AuthRealmSpec::default()),
            async |s: &mut ApiServer| {
                s.get_secret("demo-signing-keys", None).await?;
                s.get_secret("demo-service-credential", None).await?;
                s.get_secret("demo-redis-password", None).await?;
                let applied = s.default_realm_applies(None).await?;
                let status = s.status_patch().await?;
                let events = vec![s.event().await?];
                Ok((applied, status, events))
            },
        )
        .await?;

        // A fresh key set: one active key, one next key, in the format MA reads.
        let keys = keyset_of(&applied.secrets["demo-signing-keys"])?;
        let active = keys.active().ok_or_else(|| fail("no active key"))?;
        assert_eq!(active.alg, SigningAlgorithm::EdDSA);
        assert_eq!(keys.keys.len(), 2);
        assert!(keys.keys.iter().any(|k| k.state == KeyState::Next));
        // A generated credential and Redis password.
        let cred = secret_from_apply(&applied.secrets["demo-service-credential"])?;
        let cred = cred.data.unwrap_or_default();
        assert!(cred.get("credential").is_some_and(|v| v.0.len() >= 32));
        let redis = secret_from_apply(&applied.secrets["demo-redis-password"])?;
        let url = redis
            .data
            .unwrap_or_default()
            .get("url")
            .map(|v| v.0.clone())
            .unwrap_or_default();
        assert!(String::from_utf8(url)?.ends_with("@demo-redis.team-a.svc:6379/0"));

        // Status: keys ready, workloads still rolling out, URLs and key times.
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["activeKeyId"], active.kid.as_str());
        assert_eq!(
            status["authServiceUrl"],
            "http://demo-auth-service.team-a.svc:8081"
        );
        assert_eq!(
            status["mainProjectUrl"],
            "http://demo-main-project.team-a.svc:8080"
        );
        assert_eq!(status["nextRotationTime"], "2026-01-31T00:00:00Z");
        assert_eq!(condition(&status, "KeysReady")?["status"], "True");
        let ready = condition(&status, "Ready")?;
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "Progressing");
        assert_eq!(condition(&status, "AuthServiceReady")?["status"], "False");
        assert_eq!(status["keys"].as_array().map(Vec::len), Some(2));
        assert!(
            events
                .iter()
                .all(|(t, r, _)| t == "Normal" && r == "KeyCreated")
        );
        // Requeue at the next key event (the rotation in 30 days) capped at an hour.
        assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
        Ok(())
    }

    #[tokio::test]
    async fn a_second_reconcile_changes_nothing() -> Result<(), TestError> {
        // Round one, to learn what the cluster holds afterwards.
        let (_, (first, status)) = run(
            realm(AuthRealmSpec::default()),
            async |s: &mut ApiServer| {
                for n in [
                    "demo-signing-keys",
                    "demo-service-credential",
                    "demo-redis-password",
                ] {
                    s.get_secret(n, None).await?;
                }
                let applied = s.default_realm_applies(None).await?;
                let status = s.status_patch().await?;
                s.event().await?;
                Ok((applied, status))
            },
        )
        .await?;

        let mut again = realm(AuthRealmSpec::default());
        again.status = Some(serde_json::from_value::<AuthRealmStatus>(status)?);
        let stored = first.secrets.clone();
        let (_, second) = run(again, async move |s: &mut ApiServer| {
            for n in [
                "demo-signing-keys",
                "demo-service-credential",
                "demo-redis-password",
            ] {
                let existing = secret_from_apply(&stored[n])?;
                s.get_secret(n, Some(&existing)).await?;
            }
            // Same applies, then no status patch and no events.
            s.default_realm_applies(None).await
        })
        .await?;
        // Nothing regenerated: keys, credential and password are byte for byte the same.
        assert_eq!(second.secrets, first.secrets);
        assert_eq!(second.deployments, first.deployments);
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_referenced_secret_is_reported_and_nothing_is_applied()
    -> Result<(), TestError> {
        let mut spec = AuthRealmSpec::default();
        spec.database.postgres = Some(SecretKeyRef {
            name: "app-db".into(),
            key: "url".into(),
        });
        let (action, (status, event)) = run(realm(spec), async |s: &mut ApiServer| {
            s.get_secret("app-db", None).await?;
            let status = s.status_patch().await?;
            let event = s.event().await?;
            Ok((status, event))
        })
        .await?;
        let ready = condition(&status, "Ready")?;
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "SecretNotFound");
        let msg = ready["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("\"app-db\"") && msg.contains("spec.database.postgres"),
            "{msg}"
        );
        assert_eq!(
            condition(&status, "MainProjectReady")?["reason"],
            "SecretNotFound"
        );
        assert_eq!(event.0, "Warning");
        assert_eq!(event.1, "SecretNotFound");
        assert_eq!(action, Action::requeue(Duration::from_secs(300)));
        Ok(())
    }

    #[tokio::test]
    async fn a_referenced_secret_without_the_key_is_reported() -> Result<(), TestError> {
        let mut spec = AuthRealmSpec::default();
        spec.redis.external = Some(SecretKeyRef {
            name: "cache".into(),
            key: "url".into(),
        });
        let mut cache = Secret::default();
        cache.metadata.name = Some("cache".into());
        cache.data = Some([("uri".to_owned(), ByteString(b"redis://x".to_vec()))].into());
        let (_, status) = run(realm(spec), async move |s: &mut ApiServer| {
            s.get_secret("cache", Some(&cache)).await?;
            let status = s.status_patch().await?;
            s.event().await?;
            Ok(status)
        })
        .await?;
        let redis = condition(&status, "RedisReady")?;
        assert_eq!(redis["reason"], "SecretKeyNotFound");
        assert!(
            redis["message"]
                .as_str()
                .is_some_and(|m| m.contains("no key \"url\""))
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_invalid_spec_is_reported_with_its_field() -> Result<(), TestError> {
        let mut spec = AuthRealmSpec::default();
        spec.signing_keys.pre_publish = "forever".into();
        let (action, (status, event)) = run(realm(spec), async |s: &mut ApiServer| {
            let status = s.status_patch().await?;
            let event = s.event().await?;
            Ok((status, event))
        })
        .await?;
        let ready = condition(&status, "Ready")?;
        assert_eq!(ready["reason"], "InvalidSpec");
        assert!(ready["message"].as_str().is_some_and(|m| {
            m.starts_with("spec.signingKeys.prePublish: invalid duration \"forever\"")
        }));
        assert_eq!(event.1, "InvalidSpec");
        assert_eq!(action, Action::await_change());
        Ok(())
    }

    #[tokio::test]
    async fn the_rotate_annotation_rotates_a_pre_published_key() -> Result<(), TestError> {
        let day = 86_400;
        let mut active = KeyEntry::generate(
            SigningAlgorithm::EdDSA,
            "old".into(),
            KeyState::Active,
            NOW - 2 * day,
        )?;
        active.activated_at = Some(NOW - 2 * day);
        let mut next = KeyEntry::generate(
            SigningAlgorithm::EdDSA,
            "new".into(),
            KeyState::Next,
            NOW - 2 * day,
        )?;
        next.activated_at = Some(NOW + 28 * day);
        let file = KeySetFile {
            version: FORMAT_VERSION,
            keys: vec![active, next],
        };
        let existing = key_secret(&file, None)?;
        let mut r = realm(AuthRealmSpec::default());
        r.metadata.annotations = Some([(ROTATE_ANNOTATION.to_owned(), "r1".to_owned())].into());
        let (action, (applied, status, events)) = run(r, async move |s: &mut ApiServer| {
            s.get_secret("demo-signing-keys", Some(&existing)).await?;
            s.get_secret("demo-service-credential", None).await?;
            s.get_secret("demo-redis-password", None).await?;
            let applied = s.default_realm_applies(Some(&available()?)).await?;
            let status = s.status_patch().await?;
            let mut events = Vec::new();
            for _ in 0..4 {
                events.push(s.event().await?);
            }
            Ok((applied, status, events))
        })
        .await?;
        let key_body = &applied.secrets["demo-signing-keys"];
        let keys = keyset_of(key_body)?;
        let state = |kid: &str| keys.keys.iter().find(|k| k.kid == kid).map(|k| k.state);
        assert_eq!(state("new"), Some(KeyState::Active));
        assert_eq!(state("old"), Some(KeyState::Retiring));
        let old = keys.keys.iter().find(|k| k.kid == "old");
        // 5m access TTL + 60s skew + 120s propagation.
        assert_eq!(old.and_then(|k| k.remove_after), Some(NOW + 300 + 60 + 120));
        assert_eq!(keys.keys.len(), 3);
        // The request is marked served, so it does not rotate again.
        assert_eq!(
            key_body["metadata"]["annotations"][crate::children::ROTATE_HANDLED_ANNOTATION],
            "r1"
        );
        assert_eq!(status["activeKeyId"], "new");
        assert_eq!(condition(&status, "Ready")?["status"], "True");
        let reasons: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(
            reasons,
            ["KeyRetiring", "KeyRotated", "KeyCreated", "Ready"]
        );
        // Next key event: the old key's removal in 8 minutes.
        assert_eq!(action, Action::requeue(Duration::from_secs(480)));
        Ok(())
    }

    #[tokio::test]
    async fn a_served_rotate_request_does_not_rotate_again() -> Result<(), TestError> {
        let mut active = KeyEntry::generate(
            SigningAlgorithm::EdDSA,
            "a".into(),
            KeyState::Active,
            NOW - 100,
        )?;
        active.activated_at = Some(NOW - 100);
        let mut next = KeyEntry::generate(
            SigningAlgorithm::EdDSA,
            "n".into(),
            KeyState::Next,
            NOW - 100,
        )?;
        next.activated_at = Some(NOW - 100 + 30 * 86_400);
        let file = KeySetFile {
            version: FORMAT_VERSION,
            keys: vec![active, next],
        };
        let existing = key_secret(&file, Some("r1"))?;
        let mut r = realm(AuthRealmSpec::default());
        r.metadata.annotations = Some([(ROTATE_ANNOTATION.to_owned(), "r1".to_owned())].into());
        let (_, applied) = run(r, async move |s: &mut ApiServer| {
            s.get_secret("demo-signing-keys", Some(&existing)).await?;
            s.get_secret("demo-service-credential", None).await?;
            s.get_secret("demo-redis-password", None).await?;
            let applied = s.default_realm_applies(None).await?;
            s.status_patch().await?;
            Ok(applied)
        })
        .await?;
        let keys = keyset_of(&applied.secrets["demo-signing-keys"])?;
        assert_eq!(keys.active().map(|k| k.kid.as_str()), Some("a"));
        assert_eq!(keys.keys.len(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn an_unreadable_key_set_is_never_overwritten() -> Result<(), TestError> {
        let mut broken = Secret::default();
        broken.metadata.name = Some("demo-signing-keys".into());
        broken.data = Some([(FILE_NAME.to_owned(), ByteString(b"{not json".to_vec()))].into());
        let (_, status) = run(
            realm(AuthRealmSpec::default()),
            async move |s: &mut ApiServer| {
                s.get_secret("demo-signing-keys", Some(&broken)).await?;
                let status = s.status_patch().await?;
                s.event().await?;
                Ok(status)
            },
        )
        .await?;
        assert_eq!(condition(&status, "KeysReady")?["reason"], "KeySetInvalid");
        Ok(())
    }
}
