//! Network policies: who may open a connection to MA and to the managed Redis.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec as K8sNetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Meta;
use super::names::{Component, selector};
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

fn ingress_only(m: &Meta<'_>, c: Component, from: Vec<NetworkPolicyPeer>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: m.object(m.names.workload(c), c.as_str()),
        spec: Some(K8sNetworkPolicySpec {
            pod_selector: Some(selector(&m.realm.name, c)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(c.port())),
                    protocol: Some("TCP".to_owned()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..K8sNetworkPolicySpec::default()
        }),
    }
}

/// MA accepts connections on its port from OP pods and the listed extra peers only.
#[must_use]
pub fn auth_service_policy(m: &Meta<'_>, extra: &[PeerSpec]) -> NetworkPolicy {
    let mut from = vec![pods_of(&m.realm.name, Component::MainProject)];
    from.extend(extra.iter().map(peer));
    ingress_only(m, Component::AuthService, from)
}

/// The managed Redis accepts connections from MA and OP pods only.
#[must_use]
pub fn redis_policy(m: &Meta<'_>) -> NetworkPolicy {
    ingress_only(
        m,
        Component::Redis,
        vec![
            pods_of(&m.realm.name, Component::AuthService),
            pods_of(&m.realm.name, Component::MainProject),
        ],
    )
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
        let rule = np.ingress.unwrap_or_default();
        assert_eq!(rule.len(), 1);
        let from = rule[0].from.clone().unwrap_or_default();
        assert_eq!(
            from[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(selector_labels("demo", "main-project"))
        );
        assert!(
            from[0].namespace_selector.is_none(),
            "OP pods of this namespace only"
        );
        // The extra peer: gateway pods in every namespace.
        assert!(
            from[1]
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.match_labels.is_none())
        );
        assert_eq!(
            rule[0].ports.clone().unwrap_or_default()[0].port,
            Some(IntOrString::Int(8081))
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
