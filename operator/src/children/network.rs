//! Network policies: who may open a connection to MA and to the managed Redis.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec as K8sNetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Meta;
use super::names::{
    AUTH_SERVICE_INTERNAL_PORT, AUTH_SERVICE_METRICS_PORT, AUTH_SERVICE_PORT, Component,
    REDIS_PORT, selector,
};
use crate::crd::PeerSpec;

fn pods_of(realm: &str, c: Component) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(realm, c)),
        ..NetworkPolicyPeer::default()
    }
}

fn peer(p: &PeerSpec) -> NetworkPolicyPeer {
    let sel = |m: &Option<BTreeMap<String, String>>| {
        m.as_ref().map(|labels| LabelSelector {
            match_labels: (!labels.is_empty()).then(|| labels.clone()),
            ..LabelSelector::default()
        })
    };
    NetworkPolicyPeer {
        pod_selector: sel(&p.pod_labels),
        namespace_selector: sel(&p.namespace_labels),
        ..NetworkPolicyPeer::default()
    }
}

fn rule(from: Vec<NetworkPolicyPeer>, ports: &[i32]) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        from: Some(from),
        ports: Some(
            ports
                .iter()
                .map(|p| NetworkPolicyPort {
                    port: Some(IntOrString::Int(*p)),
                    protocol: Some("TCP".to_owned()),
                    ..NetworkPolicyPort::default()
                })
                .collect(),
        ),
    }
}

fn ingress_only(m: &Meta<'_>, c: Component, rules: Vec<NetworkPolicyIngressRule>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: m.object(m.names.workload(c), c.as_str()),
        spec: Some(K8sNetworkPolicySpec {
            pod_selector: Some(selector(&m.realm.name, c)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(rules),
            ..K8sNetworkPolicySpec::default()
        }),
    }
}

/// MA's internal port admits OP pods only; its public and metrics ports
/// admit OP pods and the listed extra peers (gateways, Prometheus).
#[must_use]
pub fn auth_service_policy(m: &Meta<'_>, extra: &[PeerSpec]) -> NetworkPolicy {
    let op = pods_of(&m.realm.name, Component::MainProject);
    let mut public = vec![op.clone()];
    public.extend(extra.iter().map(peer));
    // The operator's pods check each replica's JWKS before a key signs.
    if let Some(ns) = &m.realm.operator_namespace {
        public.push(peer(&PeerSpec {
            pod_labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/component".to_owned(),
                    "operator".to_owned(),
                ),
                (
                    "app.kubernetes.io/part-of".to_owned(),
                    "authrealm".to_owned(),
                ),
            ])),
            namespace_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                ns.clone(),
            )])),
        }));
    }
    ingress_only(
        m,
        Component::AuthService,
        vec![
            rule(vec![op], &[AUTH_SERVICE_INTERNAL_PORT]),
            rule(public, &[AUTH_SERVICE_PORT, AUTH_SERVICE_METRICS_PORT]),
        ],
    )
}

/// The managed Redis accepts connections from MA and OP pods only.
#[must_use]
pub fn redis_policy(m: &Meta<'_>) -> NetworkPolicy {
    let from = vec![
        pods_of(&m.realm.name, Component::AuthService),
        pods_of(&m.realm.name, Component::MainProject),
    ];
    ingress_only(m, Component::Redis, vec![rule(from, &[REDIS_PORT])])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::super::Child;
    use super::super::names::selector_labels;
    use super::super::testing::built;
    use crate::crd::{AuthRealmSpec, PeerSpec};
    use crate::validate::InvalidSpec;

    #[test]
    fn the_network_policy_admits_only_main_project_pods_and_listed_peers() -> Result<(), InvalidSpec>
    {
        let mut spec = AuthRealmSpec::default();
        spec.network_policy.extra_auth_service_peers = vec![PeerSpec {
            pod_labels: Some(BTreeMap::from([("app".into(), "gateway".into())])),
            namespace_labels: Some(BTreeMap::new()),
        }];
        let b = built(spec)?;
        let np = b.children.iter().find_map(|c| match c {
            Child::NetworkPolicy(n) if n.metadata.name.as_deref() == Some("demo-auth-service") => {
                n.spec.clone()
            }
            _ => None,
        });
        let np = np.unwrap_or_default();
        let ma = selector_labels("demo", "auth-service");
        assert_eq!(np.pod_selector.and_then(|s| s.match_labels), Some(ma));
        assert_eq!(np.policy_types, Some(vec!["Ingress".to_owned()]));
        let rules = np.ingress.unwrap_or_default();
        assert_eq!(rules.len(), 2);
        let ports = |i: usize| -> Vec<IntOrString> {
            rules[i]
                .ports
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.port)
                .collect()
        };
        let op_only = Some(selector_labels("demo", "main-project"));
        // The internal API: OP pods of this namespace, nobody else.
        assert_eq!(ports(0), [IntOrString::Int(8083)]);
        let internal = rules[0].from.clone().unwrap_or_default();
        assert_eq!(internal.len(), 1);
        assert_eq!(
            internal[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            op_only
        );
        assert!(
            internal[0].namespace_selector.is_none(),
            "OP pods of this namespace only"
        );
        // Public and metrics ports: OP and the extra peer (gateway pods in every namespace).
        assert_eq!(ports(1), [IntOrString::Int(8081), IntOrString::Int(9081)]);
        let public = rules[1].from.clone().unwrap_or_default();
        assert_eq!(
            public[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            op_only
        );
        assert!(
            public[1]
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.match_labels.is_none())
        );
        // The operator's own pods may fetch the JWKS (they check it before a key signs).
        let mut r = crate::children::testing::realm(AuthRealmSpec::default());
        r.metadata.namespace = Some("team-a".into());
        let defaults = crate::validate::Defaults {
            operator_namespace: Some("authrealm-system".into()),
            ..crate::validate::Defaults::default()
        };
        let valid = crate::validate::validate(&r, &defaults)?;
        let b = super::super::build(&valid, super::super::testing::INPUTS);
        let np = b.children.iter().find_map(|c| match c {
            Child::NetworkPolicy(n) if n.metadata.name.as_deref() == Some("demo-auth-service") => {
                n.spec.clone()
            }
            _ => None,
        });
        let rules = np.and_then(|n| n.ingress).unwrap_or_default();
        let operator = rules[1]
            .from
            .clone()
            .unwrap_or_default()
            .pop()
            .unwrap_or_default();
        let ns = operator
            .namespace_selector
            .and_then(|s| s.match_labels)
            .unwrap_or_default();
        assert_eq!(ns["kubernetes.io/metadata.name"], "authrealm-system");
        assert!(
            rules[0].from.clone().unwrap_or_default().len() == 1,
            "internal port: OP only"
        );
        // Turned off: both policies are pruned.
        let mut spec = AuthRealmSpec::default();
        spec.network_policy.enabled = false;
        let off = built(spec)?;
        assert!(
            !off.children
                .iter()
                .any(|c| matches!(c, Child::NetworkPolicy(_)))
        );
        assert_eq!(
            off.absent
                .iter()
                .filter(|(k, _)| *k == super::super::Kind::NetworkPolicy)
                .count(),
            2
        );
        Ok(())
    }
}
