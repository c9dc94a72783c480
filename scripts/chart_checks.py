"""Checks of the rendered chart that concern what the operator does to the
cluster beyond its own Deployment: the leader Lease the release owns, the
CRDs the operator applies at start, the realm images it hands on, namespaced
mode, and the monitoring kit. Used by helm_lint.py for each value set."""

from __future__ import annotations

from typing import Any

CHILD_VERBS = {"get", "list", "watch", "create", "patch", "update", "delete"}
# What the operator needs where it reconciles realms: (apiGroup, resource) -> verbs.
REALM_RULES: dict[tuple[str, str], set[str]] = {
    ("authrealm.io", "authrealms"): {"get", "list", "watch", "patch", "update"},
    ("authrealm.io", "authrealms/status"): {"get", "patch", "update"},
    ("authrealm.io", "authclients"): {"get", "list", "watch"},
    ("authrealm.io", "authclients/status"): {"get", "patch", "update"},
    **{("", r): CHILD_VERBS for r in ("secrets", "services", "configmaps", "serviceaccounts",
                                       "persistentvolumeclaims")},
    ("apps", "deployments"): CHILD_VERBS,
    ("policy", "poddisruptionbudgets"): CHILD_VERBS,
    ("networking.k8s.io", "networkpolicies"): CHILD_VERBS,
    ("networking.k8s.io", "ingresses"): CHILD_VERBS,
    ("discovery.k8s.io", "endpointslices"): {"get", "list", "watch"},
    ("monitoring.coreos.com", "podmonitors"): CHILD_VERBS,
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "events"): {"create", "patch"},
}
CRD_RULE = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "patch"}}
CRD_NAMES = ["authrealms.authrealm.io", "authclients.authrealm.io"]


def rule_map(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                out.setdefault((group, res), set()).update(rule.get("verbs", []))
    return out


def exact(f: Any, what: str, got: dict[tuple[str, str], set[str]], want: dict[tuple[str, str], set[str]]) -> None:
    missing = {k: v - got.get(k, set()) for k, v in want.items() if v - got.get(k, set())}
    extra = {k: v - want.get(k, set()) for k, v in got.items() if v - want.get(k, set())}
    f.check(not missing and not extra, what, f"missing={missing} extra={extra}")


def check_rbac(f: Any, docs: list[dict[str, Any]], release: str, namespace: str,
               watch: list[str], manage_crd: bool) -> None:
    """Cluster-wide mode: one ClusterRole with the realm rules (and the CRD).
    Namespaced mode: a Role per watched namespace, the ClusterRole only for the CRD."""
    cluster_roles = [d for d in docs if d.get("kind") == "ClusterRole"]
    want = ({} if watch else dict(REALM_RULES)) | (CRD_RULE if manage_crd else {})
    if not want:
        f.check(not cluster_roles, "no ClusterRole (namespaced mode, CRD managed elsewhere)")
    elif f.check(len(cluster_roles) == 1, "one ClusterRole", f"found {len(cluster_roles)}"):
        cr = cluster_roles[0]
        exact(f, "ClusterRole: exactly the operator's cluster-wide rules", rule_map(cr.get("rules", [])), want)
        named = [r for r in cr.get("rules", []) if "resourceNames" in r]
        f.check(all(r["resourceNames"] == CRD_NAMES and r["resources"] == ["customresourcedefinitions"]
                    for r in named), f"ClusterRole: resourceNames only to limit the CRD rule to {CRD_NAMES}")
        f.check(all("nonResourceURLs" not in r for r in cr.get("rules", [])), "ClusterRole: no nonResourceURLs")
    realm_roles = {d["metadata"].get("namespace"): d for d in docs
                   if d.get("kind") == "Role" and not d["metadata"]["name"].endswith("-leader-election")}
    f.check(sorted(realm_roles) == sorted(watch), f"a realm Role in each watched namespace {watch}",
            f"Roles in {sorted(realm_roles)}")
    for ns, role in realm_roles.items():
        exact(f, f"Role in {ns}: exactly the realm rules", rule_map(role.get("rules", [])), REALM_RULES)
        bindings = [d for d in docs if d.get("kind") == "RoleBinding" and d["metadata"].get("namespace") == ns]
        f.check(len(bindings) == 1 and bindings[0]["roleRef"]["name"] == role["metadata"]["name"]
                and bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": release, "namespace": namespace}],
                f"RoleBinding in {ns}: the Role to the operator's ServiceAccount")


def check_operator_env(f: Any, env: dict[str, Any], app_version: str, watch: list[str], manage_crd: bool) -> None:
    value = lambda k: env.get(k, {}).get("value")  # noqa: E731
    f.check(value("AUTHREALM_AUTH_SERVICE_IMAGE") == f"authrealm/auth-service:{app_version}"
            and value("AUTHREALM_MAIN_PROJECT_IMAGE") == f"authrealm/main-project:{app_version}",
            "Deployment: the realm images of this release (what unpinned realms run)",
            f"{value('AUTHREALM_AUTH_SERVICE_IMAGE')}, {value('AUTHREALM_MAIN_PROJECT_IMAGE')}")
    f.check(value("AUTHREALM_MANAGE_CRD") == ("true" if manage_crd else "false"),
            f"Deployment: AUTHREALM_MANAGE_CRD={manage_crd}")
    f.check(value("AUTHREALM_WATCH_NAMESPACES") == (",".join(watch) or None),
            f"Deployment: AUTHREALM_WATCH_NAMESPACES={','.join(watch) or 'unset'}")


def check_lease(f: Any, docs: list[dict[str, Any]], name: str, namespace: str) -> None:
    """The release owns the Lease, so `helm uninstall` deletes it; Helm sets no spec."""
    leases = [d for d in docs if d.get("kind") == "Lease"]
    if f.check(len(leases) == 1, "one Lease (removed by helm uninstall)", f"found {len(leases)}"):
        meta = leases[0]["metadata"]
        f.check(meta.get("name") == name and meta.get("namespace") == namespace,
                f"Lease: {name} in {namespace}", f"{meta}")
        f.check(not leases[0].get("spec"), "Lease: no spec from Helm (an upgrade keeps the leader)")


def check_monitoring(f: Any, docs: list[dict[str, Any]], chart: Any, kit: dict[str, Any]) -> None:
    """The PrometheusRule carries exactly files/prometheus-rules.yaml; the
    dashboard ConfigMap is labelled for the Grafana sidecar and holds valid JSON."""
    import json

    import yaml

    if kit.get("prometheusRule", {}).get("enabled"):
        rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
        want = yaml.safe_load((chart / "files" / "prometheus-rules.yaml").read_text())
        f.check(len(rules) == 1 and rules[0]["spec"] == want,
                "PrometheusRule: the groups of files/prometheus-rules.yaml")
        alerts = {r.get("alert") for g in want["groups"] for r in g["rules"]}
        need = {"AuthRealmSigningKeyTooOld", "AuthRealmKeyRotationStuck", "AuthRealmRefreshTokenReuse",
                "AuthRealmRevocationListenerDisconnected", "AuthRealmRedisDataLoss", "AuthRealmNotReady",
                "AuthRealmLoginLockoutsSpiking"}
        f.check(need <= alerts, "PrometheusRule: the alerts issue 12 lists", f"missing {need - alerts}")
    if kit.get("grafanaDashboard", {}).get("enabled"):
        maps = [d for d in docs if d.get("kind") == "ConfigMap"]
        ok = len(maps) == 1 and maps[0]["metadata"]["labels"].get("grafana_dashboard") == "1"
        f.check(ok, "dashboard ConfigMap: labelled grafana_dashboard=1")
        if ok:
            try:
                dash = json.loads(maps[0]["data"]["authrealm.json"])
                f.check(dash.get("uid") == "authrealm" and len(dash.get("panels", [])) >= 6,
                        "dashboard: valid JSON with its panels")
            except (KeyError, ValueError) as e:
                f.check(False, "dashboard: valid JSON", str(e))
