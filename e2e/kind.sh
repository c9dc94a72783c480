#!/usr/bin/env bash
# End-to-end test on a local kind cluster:
#
#   1. creates the cluster from kind-config.yaml (unless $KIND_CLUSTER exists)
#   2. builds the three images from the Dockerfile and loads them into kind
#   3. installs the operator's Helm chart with those images (the operator's,
#      and through realmImages.tag the ones realms run unless they pin one)
#   4. applies the sample realm (examples/authrealm.yaml, "demo" in "default"),
#      which pins no image and so runs the local ones, shortens its key
#      pre-publication so a rotation completes within the test, and waits for Ready
#   5. port-forwards OP and MA and runs the flow test (the workspace's
#      authrealm-flow binary) against them
#   6. rotates the signing keys (annotation) while `authrealm-flow --soak`
#      keeps calling the protected API, waits until the new key is the active
#      one, and requires zero failed requests
#   7. deletes the realm and checks that everything it made is gone
#   8. deletes the cluster it created, unless KEEP_CLUSTER=1
#
# Needs docker (a running engine), kind, kubectl, helm and cargo on PATH, and
# is run from anywhere inside the repository:  e2e/kind.sh
#
# Settings (environment):
#   KIND_CLUSTER      cluster name (default authrealm-e2e); an existing one is reused and kept
#   KEEP_CLUSTER=1    keep the cluster this run created
#   KIND_NODE_IMAGE   node image instead of the one in kind-config.yaml
#   IMAGE_TAG         tag of the locally built images (default e2e)
#   JWKS_MAX_AGE      the realm's tokens.jwksMaxAge for the test (default 10s)
#   PRE_PUBLISH_SECONDS  the realm's signingKeys.prePublish for the test, in
#                     seconds (default 150; the operator wants at least
#                     jwksMaxAge + 2 minutes)
#   SOAK_DURATION     how long the load runs across the key rotation (default:
#                     warm-up + prePublish + 60 s, so it spans the key switch)
#   READY_TIMEOUT     how long to wait for the realm to be Ready (default 600s)
#   OP_PORT, MA_PORT  local ports for the port-forwards (default 18080, 18081)
#   OP_METRICS_PORT, MA_METRICS_PORT  local ports for the services' metrics
#                     listeners (default 19080, 19081)
#   SOAK_WARMUP       seconds of load before the rotation is triggered (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_CLUSTER=${KIND_CLUSTER:-authrealm-e2e}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
IMAGE_TAG=${IMAGE_TAG:-e2e}
READY_TIMEOUT=${READY_TIMEOUT:-600s}
OP_PORT=${OP_PORT:-18080}
MA_PORT=${MA_PORT:-18081}
OP_METRICS_PORT=${OP_METRICS_PORT:-19080}
MA_METRICS_PORT=${MA_METRICS_PORT:-19081}
SOAK_WARMUP=${SOAK_WARMUP:-10}
JWKS_MAX_AGE=${JWKS_MAX_AGE:-10s}
PRE_PUBLISH_SECONDS=${PRE_PUBLISH_SECONDS:-150}
SOAK_DURATION=${SOAK_DURATION:-$((SOAK_WARMUP + PRE_PUBLISH_SECONDS + 60))s}

OPERATOR_NS=authrealm-system
RELEASE=authrealm-operator
REALM=demo
REALM_NS=default
SAMPLE=examples/authrealm.yaml
LEASE=authrealm-operator-leader
IMG_MA="authrealm/auth-service:${IMAGE_TAG}"
IMG_OP="authrealm/main-project:${IMAGE_TAG}"
IMG_OPERATOR="authrealm/authrealm-operator:${IMAGE_TAG}"
CTX="kind-${KIND_CLUSTER}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\033[1;31me2e: %s\033[0m\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CTX" "$@"; }

created_cluster=0
pids=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/authrealm-e2e.XXXXXX")

diagnose() {
  step "diagnostics (the run failed)"
  k get authrealm -A -o wide 2>/dev/null || true
  k describe authrealm "$REALM" -n "$REALM_NS" 2>/dev/null | tail -n 60 || true
  k get pods -A -o wide 2>/dev/null || true
  k get events -n "$REALM_NS" --sort-by=.lastTimestamp 2>/dev/null | tail -n 30 || true
  k logs -n "$OPERATOR_NS" -l app.kubernetes.io/instance="$RELEASE" --tail=80 --prefix 2>/dev/null || true
  local f
  for f in "$logdir"/*.log; do
    [ -s "$f" ] || continue
    info "--- $f (last lines)"
    tail -n 20 "$f" || true
  done
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ] && kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    diagnose
  fi
  if [ "$created_cluster" = 1 ] && [ "$KEEP_CLUSTER" != 1 ]; then
    step "deleting kind cluster $KIND_CLUSTER (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$KIND_CLUSTER" || true
  elif kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    info "cluster $KIND_CLUSTER kept; kubectl context $CTX; delete it with: kind delete cluster --name $KIND_CLUSTER"
  fi
  rm -rf "$logdir"
  if [ "$status" = 0 ]; then step "end-to-end test passed"; else printf '\033[1;31me2e: FAILED (exit %s)\033[0m\n' "$status" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until http://127.0.0.1:$1$2 answers (any HTTP status) or $3 seconds pass.
wait_http() {
  local port=$1 path=$2 secs=$3 i
  for ((i = 0; i < secs * 2; i++)); do
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:${port}${path}"; then return 0; fi
    sleep 0.5
  done
  return 1
}

# Starts a background port-forward to svc/$1: its port $3 on local port $2,
# and its metrics port $5 (where /healthz answers) on local port $4.
port_forward() {
  local svc=$1 local_port=$2 remote_port=$3 local_metrics=$4 remote_metrics=$5
  # kubectl itself in the background (not through a function, which would
  # fork a subshell), so that $! is the process to stop.
  kubectl --context "$CTX" port-forward -n "$REALM_NS" "svc/${svc}" "${local_port}:${remote_port}" \
    "${local_metrics}:${remote_metrics}" --address 127.0.0.1 >"$logdir/port-forward-${svc}.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  if ! wait_http "$local_metrics" /healthz 60 || ! kill -0 "$pid" 2>/dev/null; then
    cat "$logdir/port-forward-${svc}.log" >&2 || true
    die "port-forward to svc/${svc} on 127.0.0.1:${local_port} and :${local_metrics} did not come up (port in use? set OP_PORT/MA_PORT/OP_METRICS_PORT/MA_METRICS_PORT)"
  fi
  info "svc/${svc} -> http://127.0.0.1:${local_port} (metrics: http://127.0.0.1:${local_metrics})"
}

# The flow test program, built below (whichever workspace package holds it)
# and run directly, so that a background run's $! is the program itself.
FLOW=("${CARGO_TARGET_DIR:-target}/release/authrealm-flow")

# ---------------------------------------------------------------- 0. tools
step "checking tools"
missing=()
for tool in docker kind kubectl helm cargo curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" != 0 ]; then
  die "missing on PATH: ${missing[*]}
  docker:  a Docker engine (https://docs.docker.com/engine/install/)
  kind:    https://kind.sigs.k8s.io/docs/user/quick-start/#installation
  kubectl: https://kubernetes.io/docs/tasks/tools/
  helm:    https://helm.sh/docs/intro/install/
  cargo:   https://rustup.rs (builds and runs the flow test)
  curl:    your package manager"
fi
docker info >/dev/null 2>&1 || die "docker is installed but its engine is not reachable (is the daemon running? are you in the docker group?)"
[ -f "$SAMPLE" ] || die "$SAMPLE is missing"
info "docker $(docker version --format '{{.Server.Version}}'), $(kind version), helm $(helm version --short)"

step "building the flow test (authrealm-flow)"
cargo build --release --locked --workspace --bin authrealm-flow
[ -x "${FLOW[0]}" ] || die "cargo built authrealm-flow but ${FLOW[0]} is not there"

# ---------------------------------------------------------------- 1. cluster
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  step "reusing kind cluster $KIND_CLUSTER"
else
  step "creating kind cluster $KIND_CLUSTER"
  image_args=()
  [ -n "$KIND_NODE_IMAGE" ] && image_args=(--image "$KIND_NODE_IMAGE")
  kind create cluster --name "$KIND_CLUSTER" --config kind-config.yaml "${image_args[@]}" --wait 180s
  created_cluster=1
fi
k cluster-info >/dev/null || die "cannot reach cluster through kubectl context $CTX"
k get nodes -o wide

# ---------------------------------------------------------------- 2. images
step "building images (tag $IMAGE_TAG)"
export DOCKER_BUILDKIT=1
docker build --target auth-service -t "$IMG_MA" .
docker build --target main-project -t "$IMG_OP" .
docker build --target operator -t "$IMG_OPERATOR" .
step "loading images into kind"
# With Docker's containerd image store (the default since Docker 29)
# `kind load docker-image` can fail with "content digest ... not found"; the
# workaround kind documents is a single-platform `docker image save` loaded as
# an archive.
platform=$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')
for img in "$IMG_MA" "$IMG_OP" "$IMG_OPERATOR"; do
  if ! kind load docker-image "$img" --name "$KIND_CLUSTER"; then
    info "retrying $img as a $platform image archive"
    docker image save --platform "$platform" -o "$logdir/image.tar" "$img"
    kind load image-archive "$logdir/image.tar" --name "$KIND_CLUSTER"
    rm -f "$logdir/image.tar"
  fi
done

# ---------------------------------------------------------------- 3. operator
step "installing the operator chart into $OPERATOR_NS"
helm upgrade --install "$RELEASE" charts/authrealm-operator \
  --kube-context "$CTX" -n "$OPERATOR_NS" --create-namespace \
  --set image.repository="${IMG_OPERATOR%:*}" --set image.tag="$IMAGE_TAG" --set image.pullPolicy=Never \
  --set realmImages.tag="$IMAGE_TAG" \
  --set logLevel=info --wait --timeout 5m
k get crd authrealms.authrealm.io >/dev/null || die "the chart did not install the AuthRealm CRD"
k -n "$OPERATOR_NS" get pods -l app.kubernetes.io/instance="$RELEASE" -o wide
for _ in $(seq 1 60); do
  k -n "$OPERATOR_NS" get lease "$LEASE" >/dev/null 2>&1 && break
  sleep 2
done
holder=$(k -n "$OPERATOR_NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null) \
  || die "no leader-election Lease $LEASE in $OPERATOR_NS after 2 minutes"
info "leader: ${holder:-<none yet>}"

# ---------------------------------------------------------------- 4. realm
step "applying the sample realm ($SAMPLE) with the local images"
k apply -f "$SAMPLE"
# The realm pins no image: it runs the operator's (realmImages.tag). A JWKS
# cache lifetime and key pre-publication short enough for a rotation to
# finish while the test watches.
k -n "$REALM_NS" patch authrealm "$REALM" --type merge -p "{\"spec\":{
  \"tokens\":{\"jwksMaxAge\":\"$JWKS_MAX_AGE\"},
  \"signingKeys\":{\"prePublish\":\"${PRE_PUBLISH_SECONDS}s\"}}}"
step "waiting for authrealm/$REALM to be Ready (up to $READY_TIMEOUT)"
# Ready must be about the patched spec: first wait for the operator to have seen it.
generation=$(k -n "$REALM_NS" get authrealm "$REALM" -o jsonpath='{.metadata.generation}')
k -n "$REALM_NS" wait --for=jsonpath='{.status.observedGeneration}'="$generation" "authrealm/$REALM" \
  --timeout="$READY_TIMEOUT"
k -n "$REALM_NS" wait --for=condition=Ready "authrealm/$REALM" --timeout="$READY_TIMEOUT"
k -n "$REALM_NS" get authrealm "$REALM" -o wide
k -n "$REALM_NS" get deploy,svc,pods -l app.kubernetes.io/instance="$REALM"

# ---------------------------------------------------------------- 5. flow test
step "port-forwarding OP and MA"
port_forward "${REALM}-main-project" "$OP_PORT" 8080 "$OP_METRICS_PORT" 9080
port_forward "${REALM}-auth-service" "$MA_PORT" 8081 "$MA_METRICS_PORT" 9081
OP_URL="http://127.0.0.1:${OP_PORT}"
MA_URL="http://127.0.0.1:${MA_PORT}"
METRICS_URLS=(--op-metrics-url "http://127.0.0.1:${OP_METRICS_PORT}" --ma-metrics-url "http://127.0.0.1:${MA_METRICS_PORT}")
# The flow test checks the tokens' audience: the realm's (default: its name).
AUDIENCE=$(k -n "$REALM_NS" get authrealm "$REALM" -o jsonpath='{.spec.tokens.audience}')
AUDIENCE=${AUDIENCE:-$REALM}

step "flow test against the cluster"
"${FLOW[@]}" --op-url "$OP_URL" --ma-url "$MA_URL" "${METRICS_URLS[@]}" --audience "$AUDIENCE"

# ---------------------------------------------------------------- 6. rotation under load
step "key rotation while the protected API is under load ($SOAK_DURATION)"
status_before=$(k -n "$REALM_NS" get authrealm "$REALM" -o jsonpath='{.status}')
kid_before=$(k -n "$REALM_NS" get authrealm "$REALM" -o jsonpath='{.status.activeKeyId}')
info "active key before: ${kid_before:-<none>}"
"${FLOW[@]}" --op-url "$OP_URL" --ma-url "$MA_URL" "${METRICS_URLS[@]}" --audience "$AUDIENCE" --soak "$SOAK_DURATION" \
  >"$logdir/soak.log" 2>&1 &
soak_pid=$!
pids+=("$soak_pid")
sleep "$SOAK_WARMUP"
k -n "$REALM_NS" annotate "authrealm/$REALM" "authrealm.io/rotate-keys=$(date +%s)" --overwrite
rotated=0
for _ in $(seq 1 60); do
  if [ "$(k -n "$REALM_NS" get authrealm "$REALM" -o jsonpath='{.status}')" != "$status_before" ]; then
    rotated=1
    break
  fi
  sleep 2
done
[ "$rotated" = 1 ] || die "the realm's status did not change within 2 minutes of the rotate-keys annotation"
info "new key published; waiting for it to become active (prePublish ${PRE_PUBLISH_SECONDS}s)"
kid_after=$kid_before
for _ in $(seq 1 $(((PRE_PUBLISH_SECONDS + 180) / 5))); do
  kid_after=$(k -n "$REALM_NS" get authrealm "$REALM" -o jsonpath='{.status.activeKeyId}')
  [ "$kid_after" != "$kid_before" ] && break
  sleep 5
done
[ "$kid_after" != "$kid_before" ] \
  || die "the active key is still ${kid_before} $((PRE_PUBLISH_SECONDS + 180))s after the rotation"
info "active key now: $kid_after"
kill -0 "$soak_pid" 2>/dev/null \
  || info "warning: the load run ended before the new key became active (raise SOAK_DURATION)"
k -n "$REALM_NS" wait --for=condition=Ready "authrealm/$REALM" --timeout="$READY_TIMEOUT"
k -n "$REALM_NS" get authrealm "$REALM" -o wide
info "waiting for the load run to finish"
soak_status=0
wait "$soak_pid" || soak_status=$?
cat "$logdir/soak.log"
[ "$soak_status" = 0 ] || die "authrealm-flow --soak reported failed requests across the key rotation (exit $soak_status)"
info "zero failed requests across the rotation"
k -n "$REALM_NS" get events --field-selector "involvedObject.name=$REALM" --sort-by=.lastTimestamp | tail -n 10 || true

# ---------------------------------------------------------------- 7. deletion
step "deleting the realm; its children must go with it"
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
k -n "$REALM_NS" delete authrealm "$REALM" --wait=true --timeout=180s
children=""
for _ in $(seq 1 90); do
  children=$(k -n "$REALM_NS" get deployments,replicasets,pods,services,secrets,configmaps,serviceaccounts,poddisruptionbudgets,networkpolicies \
    -l app.kubernetes.io/instance="$REALM" -o name 2>/dev/null || echo "(kubectl get failed)")
  [ -z "$children" ] && break
  sleep 2
done
[ -z "$children" ] || die "children of authrealm/$REALM still exist 3 minutes after it was deleted:
$children"
info "no object labelled app.kubernetes.io/instance=$REALM is left in $REALM_NS"
