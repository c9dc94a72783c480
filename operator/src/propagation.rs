//! Which auth-service replicas serve which signing keys. Before a `next` key
//! signs, the operator checks instead of assuming: it lists the ready
//! endpoints of MA's Service (EndpointSlices) and fetches each replica's JWKS
//! on the public port. A key counts as served everywhere only when every
//! ready replica (at least one) lists it; a replica that does not answer
//! serves nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use crate::children::names::{AUTH_SERVICE_PORT, JWKS_PATH};
use crate::children::{Component, Names};
use crate::context::Context;
use crate::error::Error;
use crate::validate::ValidRealm;

/// How long one replica's JWKS may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// What the replicas served when looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Ready auth-service replicas.
    pub replicas: usize,
    /// Per key id, how many of them list it in their JWKS.
    pub serving: BTreeMap<String, usize>,
}

impl Observed {
    /// Every ready replica (at least one) serves `kid`.
    #[must_use]
    pub fn everywhere(&self, kid: &str) -> bool {
        self.replicas > 0 && self.serving.get(kid) == Some(&self.replicas)
    }

    /// `served/replicas`, e.g. `1/2`.
    #[must_use]
    pub fn label(&self, kid: &str) -> String {
        format!(
            "{}/{}",
            self.serving.get(kid).copied().unwrap_or(0),
            self.replicas
        )
    }
}

/// The base URLs (`http://addr:port`) of the ready endpoints in `slices`, on
/// the port named `http` (MA's public port).
#[must_use]
pub fn ready_endpoints(slices: &[EndpointSlice]) -> Vec<String> {
    let mut out = Vec::new();
    for s in slices {
        let port = s
            .ports
            .as_ref()
            .and_then(|ps| ps.iter().find(|p| p.name.as_deref() == Some("http")))
            .and_then(|p| p.port)
            .unwrap_or(AUTH_SERVICE_PORT);
        for e in &s.endpoints {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if let (true, Some(addr)) = (ready, e.addresses.first()) {
                let host = if addr.contains(':') {
                    format!("[{addr}]")
                } else {
                    addr.clone()
                };
                out.push(format!("http://{host}:{port}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The key ids one replica's JWKS lists (none when it does not answer).
async fn kids_at(http: &reqwest::Client, base: &str) -> Vec<String> {
    let fetched = async {
        let res = http.get(format!("{base}{JWKS_PATH}")).send().await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        res.json::<serde_json::Value>().await.ok()
    };
    let body = tokio::time::timeout(FETCH_TIMEOUT, fetched)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    body["keys"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Looks at every ready replica of the realm's auth service.
///
/// # Errors
/// The EndpointSlice list failing.
pub async fn observe(ctx: &Context, realm: &ValidRealm) -> Result<Observed, Error> {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &realm.namespace);
    let service = Names::new(&realm.name).workload(Component::AuthService);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let slices = api.list(&params).await?.items;
    let bases = ready_endpoints(&slices);
    let answers = futures::future::join_all(bases.iter().map(|b| kids_at(&ctx.http, b))).await;
    let mut serving = BTreeMap::new();
    for kids in answers {
        for kid in kids {
            *serving.entry(kid).or_insert(0) += 1;
        }
    }
    Ok(Observed {
        replicas: bases.len(),
        serving,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    #[test]
    fn only_ready_endpoints_on_the_public_port_count() {
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: vec![
                Endpoint {
                    addresses: vec!["10.0.0.1".into()],
                    ..Endpoint::default()
                },
                Endpoint {
                    addresses: vec!["10.0.0.2".into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(false),
                        ..EndpointConditions::default()
                    }),
                    ..Endpoint::default()
                },
            ],
            ports: Some(vec![
                EndpointPort {
                    name: Some("internal".into()),
                    port: Some(8083),
                    ..EndpointPort::default()
                },
                EndpointPort {
                    name: Some("http".into()),
                    port: Some(8081),
                    ..EndpointPort::default()
                },
            ]),
            ..EndpointSlice::default()
        };
        assert_eq!(ready_endpoints(&[slice]), ["http://10.0.0.1:8081"]);
        let o = Observed {
            replicas: 2,
            serving: BTreeMap::from([("a".into(), 2), ("b".into(), 1)]),
        };
        assert!(o.everywhere("a") && !o.everywhere("b") && !o.everywhere("c"));
        assert_eq!(o.label("b"), "1/2");
        assert!(
            !Observed::default().everywhere("a"),
            "no replica confirms nothing"
        );
    }
}
