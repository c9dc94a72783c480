#!/usr/bin/env python3
"""Lints and renders the operator's Helm chart, and checks what it renders.

    python3 scripts/helm_lint.py [-v] [CHART_DIR]

For each value set (the chart's defaults, and serviceMonitor.enabled=true):

1. `helm lint`: any warning or error fails.
2. Renders the chart and checks facts about the result: the objects it makes,
   the operator Deployment (non-root, read-only root filesystem, no args,
   RUST_LOG / POD_NAME / POD_NAMESPACE, /healthz probes on the `metrics` port),
   the exact RBAC rules, the leader-election Role, the metrics Service and the
   ServiceMonitor selecting it, NOTES.txt, and the CRD from the chart's crds/.
3. Checks that values.schema.json rejects a misspelt value.

With a `helm` binary on PATH it runs `helm lint --strict` and `helm template`.
Without one it uses the helm-sdkpy package (Helm as a library): its Lint action
runs offline; it has no `template` action, so the chart is rendered by its
Install action against FakeApiServer below, an in-memory stand-in for the
Kubernetes API on 127.0.0.1 that records what Helm would create. Nothing
leaves the machine. Exit status: 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

import chart_checks

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHART = ROOT / "charts" / "authrealm-operator"
RELEASE = "authrealm-operator"
NAMESPACE = "authrealm-system"
LEASE_NAME = "authrealm-operator-leader"
OPERATOR_UID = 65532

VALUE_SETS: list[tuple[str, dict[str, Any]]] = [
    ("default values", {}),
    ("serviceMonitor.enabled=true", {"serviceMonitor": {"enabled": True}}),
    ("watchNamespaces=[team-a, team-b]", {"watchNamespaces": ["team-a", "team-b"]}),
    ("watchNamespaces=[team-a], crd.manage=false", {"watchNamespaces": ["team-a"], "crd": {"manage": False}}),
    ("monitoring kit", {"monitoring": {"prometheusRule": {"enabled": True},
                                       "grafanaDashboard": {"enabled": True}}}),
]

EXPECTED_LEASE_VERBS = {"get", "create", "update", "patch"}


class Failures:
    """Collects check results; prints failures (and, when verbose, passes) as they come."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.count = 0
        self.passed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"    ok    {what}")
        else:
            self.count += 1
            print(f"    FAIL  {what}" + (f"\n          {detail}" if detail else ""))
        return ok


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------
# A stand-in Kubernetes API server for Helm's install action.


# group/version -> [(resource, kind, namespaced)]: what the chart creates.
API_RESOURCES: dict[tuple[str, str], list[tuple[str, str, bool]]] = {
    ("", "v1"): [
        ("namespaces", "Namespace", False),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("configmaps", "ConfigMap", True),
    ],
    ("apps", "v1"): [("deployments", "Deployment", True)],
    ("rbac.authorization.k8s.io", "v1"): [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    ("apiextensions.k8s.io", "v1"): [("customresourcedefinitions", "CustomResourceDefinition", False)],
    ("monitoring.coreos.com", "v1"): [("servicemonitors", "ServiceMonitor", True),
                                      ("prometheusrules", "PrometheusRule", True)],
    ("coordination.k8s.io", "v1"): [("leases", "Lease", True)],
}
OBJECT_PATH = re.compile(
    r"/(?:api/v1|apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?(?:/status)?"
)


class FakeApiServer:
    """In-memory Kubernetes API on a free loopback port: discovery for the
    resources above, create/get/list/update/delete of objects, and a record of
    every object created. Helm stores its release record as a protobuf Secret;
    that body is not decoded, only acknowledged."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str | None, str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def send(self, code: int, obj: dict[str, Any]) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def not_found(self) -> None:
                self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": "not found"})

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with server.lock:
                    server.route(self, path, raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def resource_list(group: str, version: str) -> dict[str, Any]:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                {"name": res, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                for res, kind, namespaced in API_RESOURCES[(group, version)]
            ],
        }

    def route(self, h: Any, path: str, raw: bytes) -> None:
        method = h.command
        if path == "/version":
            return h.send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/amd64"})
        if path == "/api":
            return h.send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            groups = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for (g, v) in API_RESOURCES if g
            ]
            return h.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if method == "GET" and path == "/api/v1":
            return h.send(200, self.resource_list("", "v1"))
        group_path = re.fullmatch(r"/apis/([^/]+)/([^/]+)", path)
        if method == "GET" and group_path:
            key = (group_path[1], group_path[2])
            return h.send(200, self.resource_list(*key)) if key in API_RESOURCES else h.not_found()
        m = OBJECT_PATH.fullmatch(path)
        if not m:
            return h.not_found()
        ns, res, name = m["ns"], m["res"], m["name"]
        if method == "GET":
            if name:
                obj = self.objects.get((ns, res, name))
                return h.send(200, obj) if obj else h.not_found()
            items = [o for (n, r, _), o in self.objects.items() if r == res and (ns is None or n == ns)]
            return h.send(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                "items": items})
        if method in ("POST", "PUT"):
            if "protobuf" in (h.headers.get("Content-Type") or ""):
                # Helm's release record: acknowledge it, keep nothing.
                obj = {"kind": "Secret", "apiVersion": "v1",
                       "metadata": {"name": name or "helm-release", "namespace": ns, "resourceVersion": "1"}}
                return h.send(201 if method == "POST" else 200, obj)
            obj = json.loads(raw)
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = "1"
            meta.setdefault("uid", f"uid-{len(self.created)}")
            if obj.get("kind") == "CustomResourceDefinition":
                # Helm waits for CRDs in crds/ to be Established before it goes on.
                obj["status"] = {
                    "conditions": [{"type": "Established", "status": "True"},
                                   {"type": "NamesAccepted", "status": "True"}],
                    "acceptedNames": obj.get("spec", {}).get("names", {}),
                }
            self.objects[(ns, res, meta.get("name", name or ""))] = obj
            if method == "POST":
                self.created.append(copy.deepcopy(obj))
            return h.send(201 if method == "POST" else 200, obj)
        if method == "PATCH":
            obj = self.objects.get((ns, res, name or ""))
            return h.send(200, obj) if obj else h.not_found()
        if method == "DELETE":
            self.objects.pop((ns, res, name or ""), None)
            return h.send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        return h.not_found()


# --------------------------------------------------------------------------
# Backends: the helm CLI when present, helm-sdkpy otherwise.


class Rendered:
    def __init__(self, manifest: str, notes: str | None, crds: list[dict[str, Any]]) -> None:
        self.docs = [d for d in yaml.safe_load_all(manifest) if d]
        self.notes = notes
        self.crds = crds


class HelmCli:
    name = "helm CLI"

    def __init__(self, helm: str) -> None:
        self.helm = helm

    def _values_file(self, tmp: Path, values: dict[str, Any]) -> list[str]:
        if not values:
            return []
        path = tmp / "override-values.yaml"
        path.write_text(yaml.safe_dump(values))
        return ["-f", str(path)]

    def lint(self, chart: Path, values: dict[str, Any]) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [self.helm, "lint", "--strict", str(chart), *self._values_file(Path(tmp), values)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            return []
        return [line for line in (proc.stdout + proc.stderr).splitlines()
                if "[WARNING]" in line or "[ERROR]" in line or "Error" in line] or [proc.stdout + proc.stderr]

    def render(self, chart: Path, values: dict[str, Any]) -> Rendered:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [self.helm, "template", RELEASE, str(chart), "-n", NAMESPACE, "--include-crds",
                   "--kube-version", "1.33.1", *self._values_file(Path(tmp), values)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip() or proc.stdout.strip())
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
        crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
        manifest = yaml.safe_dump_all([d for d in docs if d.get("kind") != "CustomResourceDefinition"])
        return Rendered(manifest, None, crds)


class HelmSdk:
    name = "helm-sdkpy"
    # helm.sh/helm/v4 pkg/lint/support severities.
    SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

    def __init__(self) -> None:
        import asyncio

        import helm_sdkpy

        self.asyncio = asyncio
        self.helm = helm_sdkpy
        # Keep Helm's cache/config/data out of the user's home.
        self.home = tempfile.mkdtemp(prefix="helm-lint-home.")
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            os.environ[var] = os.path.join(self.home, var.lower())
        self.name = f"helm-sdkpy {helm_sdkpy.__version__} ({helm_sdkpy.get_version()})"

    def _chart_with_values(self, chart: Path, values: dict[str, Any], tmp: Path) -> Path:
        """helm-sdkpy's Lint takes no values: lint a copy whose values.yaml has them merged in."""
        if not values:
            return chart
        copy_dir = tmp / chart.name
        shutil.copytree(chart, copy_dir)
        base = yaml.safe_load((chart / "values.yaml").read_text()) or {}
        (copy_dir / "values.yaml").write_text(yaml.safe_dump(deep_merge(base, values), sort_keys=False))
        return copy_dir

    def lint(self, chart: Path, values: dict[str, Any]) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            target = self._chart_with_values(chart, values, Path(tmp))
            config = self.helm.Configuration(namespace=NAMESPACE)
            result = self.asyncio.run(self.helm.Lint(config).run(str(target)))
        problems = []
        for msg in result.get("Messages") or []:
            sev = int(msg.get("Severity", 0))
            if sev >= 2:
                # The library does not pass the message text through (Go errors
                # serialise as {}); the render step below reports template errors in full.
                detail = msg.get("Err") or {}
                problems.append(f"[{self.SEVERITY.get(sev, sev)}] {msg.get('Path', '?')}"
                                + (f": {detail}" if detail else " (message not exposed by helm-sdkpy)"))
        if result.get("Errors") and not problems:
            problems.append(f"lint returned errors: {result['Errors']}")
        return problems

    def render(self, chart: Path, values: dict[str, Any]) -> Rendered:
        with FakeApiServer() as api, tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                          "namespace": NAMESPACE}}],
                "current-context": "fake",
            }))
            config = self.helm.Configuration(namespace=NAMESPACE, kubeconfig=str(kubeconfig))
            try:
                release = self.asyncio.run(self.helm.Install(config).run(
                    RELEASE, str(chart), values=values or None, wait=False, timeout=60))
            except self.helm.HelmError as e:
                raise RuntimeError(str(e)) from None
            crds = [o for o in api.created if o.get("kind") == "CustomResourceDefinition"]
        notes = release.get("notes") or (release.get("info") or {}).get("notes") or ""
        return Rendered(release.get("manifest", ""), notes, crds)


# --------------------------------------------------------------------------
# Checks on the rendered chart.


def find(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(f: Failures, docs: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = find(docs, kind)
    f.check(len(found) == 1, f"one {kind}", f"found {len(found)}")
    return found[0] if len(found) == 1 else None


def rule_map(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                out.setdefault((group, res), set()).update(rule.get("verbs", []))
    return out


def check_deployment(f: Failures, dep: dict[str, Any], chart_meta: dict[str, Any]) -> None:
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    f.check(spec.get("replicas") == 2, "Deployment: 2 replicas by default", f"replicas={spec.get('replicas')}")
    pod_labels = spec["template"]["metadata"].get("labels", {})
    selector = spec["selector"]["matchLabels"]
    f.check(all(pod_labels.get(k) == v for k, v in selector.items()), "Deployment: selector matches pod labels")
    psc = pod.get("securityContext", {})
    f.check(psc.get("runAsNonRoot") is True, "Deployment: pod runAsNonRoot")
    f.check(psc.get("runAsUser") == OPERATOR_UID, f"Deployment: pod runs as user {OPERATOR_UID}",
            f"runAsUser={psc.get('runAsUser')}")
    containers = pod.get("containers", [])
    if not f.check(len(containers) == 1, "Deployment: one container"):
        return
    c = containers[0]
    expected_image = f"authrealm/authrealm-operator:{chart_meta['appVersion']}"
    f.check(c.get("image") == expected_image, f"Deployment: image {expected_image}", f"image={c.get('image')}")
    f.check("args" not in c and "command" not in c, "Deployment: no command/args (the image's entrypoint)")
    csc = c.get("securityContext", {})
    f.check(csc.get("readOnlyRootFilesystem") is True, "Deployment: read-only root filesystem")
    f.check(csc.get("allowPrivilegeEscalation") is False, "Deployment: no privilege escalation")
    f.check(csc.get("capabilities", {}).get("drop") == ["ALL"], "Deployment: drops all capabilities")
    f.check(csc.get("runAsUser", psc.get("runAsUser")) not in (None, 0), "Deployment: container is not root")
    env = {e["name"]: e for e in c.get("env", [])}
    f.check(env.get("RUST_LOG", {}).get("value") == "info", "Deployment: RUST_LOG=info")
    f.check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
            "Deployment: POD_NAME from the downward API")
    f.check(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            == "metadata.namespace", "Deployment: POD_NAMESPACE from the downward API")
    ports = {p.get("name"): p for p in c.get("ports", [])}
    f.check(ports.get("metrics", {}).get("containerPort") == 8082, "Deployment: port 8082 named metrics")
    for probe in ("livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        f.check(get.get("path") == "/healthz" and get.get("port") == "metrics",
                f"Deployment: {probe} GET /healthz on port metrics", f"{probe}={c.get(probe)}")
    f.check(pod.get("serviceAccountName") == RELEASE, f"Deployment: serviceAccountName {RELEASE}")


def check_rbac(f: Failures, docs: list[dict[str, Any]], values: dict[str, Any]) -> None:
    watch = values.get("watchNamespaces", [])
    manage_crd = values.get("crd", {}).get("manage", True)
    chart_checks.check_rbac(f, docs, RELEASE, NAMESPACE, watch, manage_crd)
    cr = next((d for d in docs if d.get("kind") == "ClusterRole"), None)
    role = next((d for d in docs if d.get("kind") == "Role" and d["metadata"]["name"].endswith("-leader-election")),
                None)
    f.check(role is not None, "a leader-election Role")
    if role:
        f.check(role["metadata"].get("namespace") == NAMESPACE, "Role: in the release namespace")
        got = rule_map(role.get("rules", []))
        f.check(got == {("coordination.k8s.io", "leases"): EXPECTED_LEASE_VERBS},
                "Role: leases get/create/update/patch only", f"rules={got}")
        named = [r for r in role.get("rules", []) if r.get("resourceNames")]
        f.check(all(r["resourceNames"] == [LEASE_NAME] for r in named) and named,
                f"Role: get/update/patch limited to Lease {LEASE_NAME}")
    for kind, ref_kind, target in (("ClusterRoleBinding", "ClusterRole", cr), ("RoleBinding", "Role", role)):
        binding = next((d for d in docs if d.get("kind") == kind and target
                        and d["roleRef"]["name"] == target["metadata"]["name"]), None)
        f.check(binding is not None or target is None, f"a {kind} for the {ref_kind}")
        if binding and target:
            subjects = binding.get("subjects", [])
            f.check(binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind,
                                           "name": target["metadata"]["name"]}, f"{kind}: binds the {ref_kind}")
            f.check(subjects == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}],
                    f"{kind}: to the operator's ServiceAccount", f"subjects={subjects}")


def check_rendered(f: Failures, r: Rendered, chart: Path, values: dict[str, Any]) -> None:
    service_monitor = bool(values.get("serviceMonitor", {}).get("enabled"))
    watch = values.get("watchNamespaces", [])
    manage_crd = values.get("crd", {}).get("manage", True)
    chart_meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    kinds = sorted(d.get("kind", "?") for d in r.docs)
    cluster = ["ClusterRole", "ClusterRoleBinding"] if (manage_crd or not watch) else []
    kit = values.get("monitoring", {})
    kit_kinds = (["PrometheusRule"] if kit.get("prometheusRule", {}).get("enabled") else []) + (
        ["ConfigMap"] if kit.get("grafanaDashboard", {}).get("enabled") else [])
    chart_checks.check_monitoring(f, r.docs, chart, kit)
    expected = sorted(["ServiceAccount", "Role", "RoleBinding", "Service", "Deployment", "Lease"] + cluster + kit_kinds
                      + ["Role", "RoleBinding"] * len(watch) + (["ServiceMonitor"] if service_monitor else []))
    f.check(kinds == expected, "objects: " + ", ".join(expected), f"rendered: {kinds}")
    for d in r.docs:
        meta = d.get("metadata", {})
        labels = meta.get("labels", {})
        if not (labels.get("app.kubernetes.io/instance") == RELEASE and labels.get("app.kubernetes.io/managed-by")):
            f.check(False, f"{d.get('kind')}/{meta.get('name')}: standard labels", f"labels={labels}")
        in_watched = d.get("kind") in ("Role", "RoleBinding") and meta.get("namespace") in watch
        if d.get("kind") not in ("ClusterRole", "ClusterRoleBinding") and meta.get("namespace") != NAMESPACE \
                and not in_watched:
            f.check(False, f"{d.get('kind')}/{meta.get('name')}: in namespace {NAMESPACE}",
                    f"namespace={meta.get('namespace')}")
    dep = one(f, r.docs, "Deployment")
    if dep:
        check_deployment(f, dep, chart_meta)
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        chart_checks.check_operator_env(f, env, chart_meta["appVersion"], watch, manage_crd)
    check_rbac(f, r.docs, values)
    chart_checks.check_lease(f, r.docs, LEASE_NAME, NAMESPACE)
    svc = one(f, r.docs, "Service")
    if svc and dep:
        pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
        sel = svc["spec"].get("selector", {})
        f.check(bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items()),
                "metrics Service: selects the operator pods")
        f.check([(p.get("name"), p.get("port"), p.get("targetPort")) for p in svc["spec"]["ports"]]
                == [("metrics", 8082, "metrics")], "metrics Service: port 8082 -> metrics")
    if service_monitor:
        sm = one(f, r.docs, "ServiceMonitor")
        if sm and svc:
            sel = sm["spec"]["selector"]["matchLabels"]
            f.check(all(svc["metadata"]["labels"].get(k) == v for k, v in sel.items()),
                    "ServiceMonitor: selects the metrics Service")
            f.check([e.get("port") for e in sm["spec"]["endpoints"]] == ["metrics"]
                    and sm["spec"]["endpoints"][0].get("path") == "/metrics",
                    "ServiceMonitor: scrapes port metrics at /metrics")
    if r.notes is not None:
        f.check("kubectl apply -f examples/authrealm.yaml" in r.notes,
                "NOTES.txt: tells the user to apply the sample realm")
    crd_files = sorted((chart / "crds").glob("*.yaml")) if (chart / "crds").is_dir() else []
    want = [yaml.safe_load(p.read_text()) for p in crd_files]
    f.check(sorted(c["metadata"]["name"] for c in r.crds) == sorted(c["metadata"]["name"] for c in want),
            f"CRDs from crds/ installed: {[c['metadata']['name'] for c in want] or 'none yet'}",
            f"installed: {[c['metadata']['name'] for c in r.crds]}")


def main() -> int:
    args = sys.argv[1:]
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    chart = Path(args[0]).resolve() if args else DEFAULT_CHART
    if not (chart / "Chart.yaml").is_file():
        print(f"helm_lint: no chart at {chart}", file=sys.stderr)
        return 1
    helm = shutil.which("helm")
    try:
        backend: HelmCli | HelmSdk = HelmCli(helm) if helm else HelmSdk()
    except ImportError:
        print("helm_lint: no `helm` on PATH and the helm-sdkpy package is not installed\n"
              "  install it: python3 -m pip install --ignore-requires-python helm-sdkpy", file=sys.stderr)
        return 1
    print(f"helm_lint: {chart.relative_to(ROOT) if chart.is_relative_to(ROOT) else chart} with {backend.name}")
    f = Failures(verbose)

    def section(label: str) -> None:
        print(f"  [{label}]")

    for label, values in VALUE_SETS:
        section(label)
        problems = backend.lint(chart, values)
        f.check(not problems, "helm lint: no warnings or errors", "\n          ".join(problems))
        try:
            rendered = backend.render(chart, values)
        except RuntimeError as e:
            f.check(False, "chart renders", str(e))
            continue
        f.check(True, "chart renders")
        check_rendered(f, rendered, chart, values)
    section("values.schema.json")
    try:
        backend.render(chart, {"replicaCount": "two"})
        f.check(False, "schema rejects replicaCount: \"two\"", "it rendered")
    except RuntimeError as e:
        f.check("replicaCount" in str(e), "schema rejects replicaCount: \"two\"", str(e))
    try:
        backend.render(chart, {"serviceMonitor": {"enabeld": True}})
        f.check(False, "schema rejects a misspelt key (serviceMonitor.enabeld)", "it rendered")
    except RuntimeError as e:
        f.check("enabeld" in str(e), "schema rejects a misspelt key (serviceMonitor.enabeld)", str(e))
    if f.count:
        print(f"helm_lint: {f.count} check(s) failed, {f.passed} passed (-v lists them)")
        return 1
    print(f"helm_lint: all {f.passed} checks passed (-v lists them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
