#!/usr/bin/env bash
# The embedded local stack: PostgreSQL, the Temporal dev server (with its Web UI) and a Kubernetes
# control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok's simulated
# nodes), stripe-mock as the Stripe API and toxiproxy-server for fault tests, all run from the pinned
# binaries of scripts/tools.sh; and, where the machine can run it, one real node beside the kwok
# ones (scripts/real-node.sh: kubelet, containerd, kube-proxy, a NetworkPolicy enforcer, CoreDNS).
#
# Usage: scripts/stack.sh up | down | status | env
#   up      starts what is not running yet (idempotent) and writes $STACK_DIR/env
#   down    stops everything this script started; leaves a PostgreSQL it did not start alone
#   status  one line per component, with its address
#   env     prints the environment (DATABASE_URL, TEMPORAL_ADDRESS, KUBECONFIG, PATH) to source
#
# Settings (environment): STACK_DIR (default .stack), STACK_PG_PORT (5432), STACK_DB (tenants),
# STACK_TEMPORAL_PORT (7233), STACK_TEMPORAL_UI_PORT (8233), STACK_KUBE_PORT (6443),
# STACK_KWOK_NODES (2; each simulated node runs 110 pods, one per tenant), STACK_CLUSTER
# (tenant-provisioner), STACK_KUBE_SERVICE_CIDR (10.96.0.0/16: one ClusterIP per tenant; read when
# the cluster is created), STACK_STRIPE_MOCK_PORT (12111), STACK_TOXIPROXY_PORT (8474),
# STACK_REAL_NODE (1; 0 leaves the real node out).
#
# kube-apiserver writes an audit log (every request's client, verb and object, no bodies) to
# $KUBE_AUDIT_LOG, which the provisioning benchmark reads to split requests by client; a cluster
# created before the stack had one has none until it is recreated (down, then up).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=$(mkdir -p "${STACK_DIR:-$ROOT/.stack}" && cd "${STACK_DIR:-$ROOT/.stack}" && pwd)
PG_HOST=127.0.0.1
PG_PORT=${STACK_PG_PORT:-5432}
DB_NAME=${STACK_DB:-tenants}
TEMPORAL_PORT=${STACK_TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${STACK_TEMPORAL_UI_PORT:-8233}
KUBE_PORT=${STACK_KUBE_PORT:-6443}
KWOK_NODES=${STACK_KWOK_NODES:-2}
# kube-apiserver's own default is 10.0.0.0/24: about 250 Services, fewer than a 500-tenant burst needs.
KUBE_SERVICE_CIDR=${STACK_KUBE_SERVICE_CIDR:-10.96.0.0/16}
CLUSTER=${STACK_CLUSTER:-tenant-provisioner}
STRIPE_MOCK_PORT=${STACK_STRIPE_MOCK_PORT:-12111}
TOXIPROXY_PORT=${STACK_TOXIPROXY_PORT:-8474}
KUBECONFIG_FILE="$STACK_DIR/kubeconfig"
export KWOK_WORKDIR="$STACK_DIR/kwok"
# Where kwokctl (binary runtime) has kube-apiserver write the audit log; rotated backups sit beside it.
AUDIT_LOG="$KWOK_WORKDIR/clusters/$CLUSTER/logs/audit.log"
AUDIT_POLICY_FILE="$STACK_DIR/audit-policy.yaml"
KWOKCTL_CONFIG="$STACK_DIR/kwokctl.yaml"
REAL_NODE="$ROOT/scripts/real-node.sh"
# The API server's address on the real node's veth (scripts/real-node.sh): the kubernetes
# Service's endpoint, so that pods reach the API server (and policies can be shown to block it).
REAL_NODE_HOST_IP=198.51.100.1
# Rotate at 100 MB, keep 2 backups: at about 1 KB per request and 150 requests per tenant from its
# creation to its deletion, a 500-tenant benchmark (1000 tenants) writes about 150 MB.
AUDIT_LOG_MAXSIZE_MB=100
AUDIT_LOG_MAXBACKUP=2
# Search attributes the workflows set, so the Web UI can filter tenants by them.
SEARCH_ATTRIBUTES=(TenantId=Keyword TenantStatus=Keyword TenantPlan=Keyword CustomerId=Keyword TenantCondition=Keyword)

BIN=$("$ROOT/scripts/tools.sh" bindir)
export PATH="$BIN:$PATH"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_owner() { ss -ltnpH "sport = :$1" 2>/dev/null | grep -oE 'users:\(\("[^"]+",pid=[0-9]+' | head -1 | sed -E 's/users:\(\("([^"]+)",pid=([0-9]+)/\1 (pid \2)/'; }

# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

need_tools() {
  local b missing=()
  for b in "$@"; do command -v "$b" >/dev/null || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}; run 'npm run tools' (scripts/tools.sh install) first"
}

# --- PostgreSQL --------------------------------------------------------------------------------

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }

pg_up() {
  if pg_ready; then
    log "PostgreSQL already answers on $PG_HOST:$PG_PORT"
  elif command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting the system's PostgreSQL $ver cluster"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || die "pg_ctlcluster $ver main start failed; see /var/log/postgresql"
    wait_for "PostgreSQL" 30 pg_ready || die "PostgreSQL did not answer on $PG_HOST:$PG_PORT within 30 s"
  else
    pg_up_own
  fi
  psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 ||
    psql_admin -qc "CREATE DATABASE \"$DB_NAME\"" || die "cannot create database $DB_NAME"
}

# A private cluster in $STACK_DIR/postgres, for machines without a running PostgreSQL.
pg_up_own() {
  local bindir data="$STACK_DIR/postgres" as=()
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bindir" ] || die "no PostgreSQL on $PG_HOST:$PG_PORT and none installed; install postgresql (apt-get install postgresql) or point STACK_PG_PORT at a running one"
  # PostgreSQL refuses to run as root.
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data" && [ ${#as[@]} -eq 0 ] || chown postgres "$data"
    "${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >"$STACK_DIR/postgres-init.log" 2>&1 ||
      die "initdb failed; see $STACK_DIR/postgres-init.log"
  fi
  log "starting a private PostgreSQL on $PG_HOST:$PG_PORT ($data)"
  "${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 30 \
    -o "-h $PG_HOST -p $PG_PORT -k /tmp" start >/dev/null || die "PostgreSQL did not start; see $data/server.log"
  touch "$STACK_DIR/postgres.owned"
}

pg_down() {
  if [ -f "$STACK_DIR/postgres.owned" ]; then
    local bindir as=()
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$bindir/pg_ctl" -D "$STACK_DIR/postgres" -m fast -w stop >/dev/null 2>&1 || true
    rm -f "$STACK_DIR/postgres.owned"
    log "stopped the private PostgreSQL"
  fi
}

psql_admin() { PGCONNECT_TIMEOUT=5 psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

# --- Temporal ----------------------------------------------------------------------------------

temporal_ready() { temporal operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" --command-timeout 3s 2>/dev/null | grep -q SERVING; }

# A server started by an older checkout lacks attributes added since; --search-attribute applies
# only at start, so register the missing ones on the running server.
register_search_attributes() {
  local p existing
  existing=$(temporal operator search-attribute list --address "127.0.0.1:$TEMPORAL_PORT" --command-timeout 5s 2>/dev/null) || return 0
  for p in "${SEARCH_ATTRIBUTES[@]}"; do
    grep -qw "${p%%=*}" <<<"$existing" && continue
    log "registering search attribute ${p%%=*}"
    temporal operator search-attribute create --address "127.0.0.1:$TEMPORAL_PORT" --command-timeout 5s \
      --name "${p%%=*}" --type "${p#*=}" >/dev/null 2>&1 || log "could not register search attribute ${p%%=*}"
  done
}

temporal_up() {
  need_tools temporal
  if pid_alive "$STACK_DIR/temporal.pid" && grep -qa "$STACK_DIR/temporal.db" "/proc/$(cat "$STACK_DIR/temporal.pid")/cmdline" 2>/dev/null; then
    log "Temporal already running (pid $(cat "$STACK_DIR/temporal.pid"))"
    if wait_for "Temporal" 20 temporal_ready; then register_search_attributes; return; fi
    log "Temporal (pid $(cat "$STACK_DIR/temporal.pid")) does not answer; restarting it (its log: $STACK_DIR/temporal.log)"
    stop_pidfile "$STACK_DIR/temporal.pid" Temporal
  fi
  rm -f "$STACK_DIR/temporal.pid"
  local p owner
  for p in "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT"; do
    if port_open "$p"; then
      owner=$(port_owner "$p")
      die "port $p is taken${owner:+ by $owner}; stop it or set STACK_TEMPORAL_PORT / STACK_TEMPORAL_UI_PORT"
    fi
  done
  local args=(server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
    --db-filename "$STACK_DIR/temporal.db" --log-level warn --log-format json
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal)
  for p in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$p"); done
  log "starting Temporal on 127.0.0.1:$TEMPORAL_PORT (Web UI http://127.0.0.1:$TEMPORAL_UI_PORT)"
  setsid nohup temporal "${args[@]}" >"$STACK_DIR/temporal.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/temporal.pid"
  wait_for "Temporal" 90 temporal_ready || { tail -20 "$STACK_DIR/temporal.log" >&2; die "Temporal did not become healthy within 90 s; see $STACK_DIR/temporal.log"; }
}

stop_pidfile() {
  local pidfile=$1 name=$2 pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# --- Small daemons: stripe-mock, toxiproxy-server ---------------------------------------------------

http_ok() { curl -fsS --max-time 3 -o /dev/null "$@"; }
stripe_mock_ready() { http_ok -u sk_test_123: "http://127.0.0.1:$STRIPE_MOCK_PORT/v1/customers/cus_ping"; }
toxiproxy_ready() { http_ok "http://127.0.0.1:$TOXIPROXY_PORT/version"; }

# daemon_up NAME PORT READY_FN BINARY ARGS...: starts BINARY in its own session unless its pid file
# names a live process that answers READY_FN; refuses a port someone else holds.
daemon_up() {
  local name=$1 port=$2 ready=$3; shift 3
  local pidfile="$STACK_DIR/$name.pid" owner
  need_tools "$1"
  if pid_alive "$pidfile"; then
    if wait_for "$name" 10 "$ready"; then log "$name already running (pid $(cat "$pidfile"))"; return; fi
    log "$name (pid $(cat "$pidfile")) does not answer; restarting it (its log: $STACK_DIR/$name.log)"
    stop_pidfile "$pidfile" "$name"
  fi
  rm -f "$pidfile"
  if port_open "$port"; then
    owner=$(port_owner "$port")
    die "port $port is taken${owner:+ by $owner}; stop it or set the STACK_*_PORT variable for $name"
  fi
  log "starting $name on 127.0.0.1:$port"
  setsid nohup "$@" >"$STACK_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_for "$name" 30 "$ready" || { tail -20 "$STACK_DIR/$name.log" >&2; die "$name did not answer on 127.0.0.1:$port within 30 s; see $STACK_DIR/$name.log"; }
}

# stripe-mock also serves HTTPS (on the next port): bound to loopback like everything else.
stripe_mock_up() { daemon_up stripe-mock "$STRIPE_MOCK_PORT" stripe_mock_ready stripe-mock -http-addr "127.0.0.1:$STRIPE_MOCK_PORT" -https-addr "127.0.0.1:$((STRIPE_MOCK_PORT + 1))"; }
toxiproxy_up() { daemon_up toxiproxy "$TOXIPROXY_PORT" toxiproxy_ready toxiproxy-server -host 127.0.0.1 -port "$TOXIPROXY_PORT"; }

# --- Kubernetes --------------------------------------------------------------------------------

kube() { kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout 10s "$@"; }
kube_ready() { kube get --raw /readyz >/dev/null 2>&1; }
cluster_exists() { [ -d "$KWOK_WORKDIR/clusters/$CLUSTER" ]; }

# Request metadata (who, verb, object; no bodies), once per request when it ends (a watch also when
# it starts). Left out as noise: the API server's own loopback requests, leader-election and node
# leases, Events (the controllers' and the scheduler's notes), and the health, metrics, version and
# OpenAPI endpoints. API discovery (/api, /apis) is kept: Helm's share of it is part of a tenant's cost.
write_audit_policy() {
  cat >"$AUDIT_POLICY_FILE" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:apiserver"]
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: [leases]
      - group: ""
        resources: [events]
      - group: events.k8s.io
        resources: [events]
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/metrics", "/version", "/openapi/*"]
  - level: Metadata
EOF
}

# scripts/real-node.sh for this stack (its directory, cluster and API server port).
real_node() { STACK_DIR="$STACK_DIR" STACK_CLUSTER="$CLUSTER" STACK_KUBE_PORT="$KUBE_PORT" "$REAL_NODE" "$@"; }

# The cluster's component settings. kwok's controller manages only its own nodes (they carry the
# annotation kwok.x-k8s.io/node=fake), never the real node. With a real node the API server also
# listens beyond loopback and advertises the host end of the node's veth, its certificate names the
# kubernetes Service IP, and it reaches kubelets (exec, logs, port-forward) with the admin client
# certificate at their InternalIP.
write_kwokctl_config() {
  local real=$1 pki="$KWOK_WORKDIR/clusters/$CLUSTER/pki"
  {
    cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
EOF
    if [ "$real" = 1 ]; then
      # The first address of the Service range is the kubernetes Service's ClusterIP.
      printf '  kubeApiserverCertSANs: ["%s", "%s"]\n' "$(service_cidr_first_ip)" "$REAL_NODE_HOST_IP"
    else
      printf '  kubeApiserverCertSANs: []\n'
    fi
    cat <<EOF
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: service-cluster-ip-range, value: "$KUBE_SERVICE_CIDR"}
  - {key: audit-log-maxsize, value: "$AUDIT_LOG_MAXSIZE_MB"}
  - {key: audit-log-maxbackup, value: "$AUDIT_LOG_MAXBACKUP"}
EOF
    if [ "$real" = 1 ]; then
      cat <<EOF
  - {key: bind-address, value: "0.0.0.0"}
  - {key: advertise-address, value: "$REAL_NODE_HOST_IP"}
  - {key: kubelet-client-certificate, value: "$pki/admin.crt"}
  - {key: kubelet-client-key, value: "$pki/admin.key"}
  - {key: kubelet-preferred-address-types, value: "InternalIP"}
EOF
    fi
    cat <<EOF
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
EOF
  } >"$KWOKCTL_CONFIG"
}

service_cidr_first_ip() {
  local base=${KUBE_SERVICE_CIDR%/*} a b c d
  IFS=. read -r a b c d <<<"$base"
  echo "$a.$b.$c.$((d + 1))"
}

kube_up() {
  need_tools kwokctl kwok etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
  if cluster_exists; then
    if ! kube_ready; then
      log "starting the existing Kubernetes cluster $CLUSTER"
      timeout 300 kwokctl start cluster --name "$CLUSTER" >>"$STACK_DIR/kwokctl.log" 2>&1 ||
        die "kwokctl start cluster failed; see $STACK_DIR/kwokctl.log"
    else
      log "Kubernetes already running on 127.0.0.1:$KUBE_PORT"
    fi
  else
    if port_open "$KUBE_PORT"; then
      local owner; owner=$(port_owner "$KUBE_PORT")
      die "port $KUBE_PORT is taken${owner:+ by $owner}; stop it or set STACK_KUBE_PORT"
    fi
    log "creating the Kubernetes cluster $CLUSTER (kube-apiserver on 127.0.0.1:$KUBE_PORT, audit log $AUDIT_LOG)"
    # kwokctl copies the policy into the cluster's directory: it applies from creation on.
    write_audit_policy
    local real=1
    real_node check >/dev/null 2>&1 || real=0
    write_kwokctl_config "$real"
    timeout 600 kwokctl --config "$KWOKCTL_CONFIG" create cluster --name "$CLUSTER" --runtime binary \
      --kubeconfig "$KUBECONFIG_FILE" \
      --kube-apiserver-port "$KUBE_PORT" \
      --kube-audit-policy "$AUDIT_POLICY_FILE" \
      --etcd-binary "$BIN/etcd" \
      --kube-apiserver-binary "$BIN/kube-apiserver" \
      --kube-controller-manager-binary "$BIN/kube-controller-manager" \
      --kube-scheduler-binary "$BIN/kube-scheduler" \
      --kwok-controller-binary "$BIN/kwok" \
      --wait 3m >>"$STACK_DIR/kwokctl.log" 2>&1 || { tail -30 "$STACK_DIR/kwokctl.log" >&2; die "kwokctl create cluster failed; see $STACK_DIR/kwokctl.log"; }
  fi
  wait_for "Kubernetes API" 120 kube_ready || die "kube-apiserver did not become ready; see $KWOK_WORKDIR/clusters/$CLUSTER/logs"
  local have
  have=$(kube get nodes --no-headers -l type=kwok 2>/dev/null | wc -l)
  if [ "$have" -lt "$KWOK_NODES" ]; then
    timeout 120 kwokctl scale node --name "$CLUSTER" --replicas "$KWOK_NODES" >>"$STACK_DIR/kwokctl.log" 2>&1 ||
      die "kwokctl scale node failed; see $STACK_DIR/kwokctl.log"
  fi
  wait_for "simulated nodes" 60 nodes_ready || die "kwok nodes did not become Ready; see $KWOK_WORKDIR/clusters/$CLUSTER/logs"
  # The default ServiceAccount appears asynchronously; pods in new namespaces need it.
  wait_for "default service account" 60 kube -n default get serviceaccount default || die "the controller manager created no default ServiceAccount; see $KWOK_WORKDIR/clusters/$CLUSTER/logs"
}

nodes_ready() { [ "$(kube get nodes --no-headers -l type=kwok 2>/dev/null | grep -c ' Ready')" -ge "$KWOK_NODES" ]; }

kube_down() {
  cluster_exists || return 0
  timeout 120 kwokctl delete cluster --name "$CLUSTER" >>"$STACK_DIR/kwokctl.log" 2>&1 || log "kwokctl delete cluster reported an error; see $STACK_DIR/kwokctl.log"
  rm -f "$KUBECONFIG_FILE"
  log "deleted the Kubernetes cluster $CLUSTER"
}

# --- commands ----------------------------------------------------------------------------------

write_env() {
  cat >"$STACK_DIR/env" <<EOF
export DATABASE_URL='postgresql://postgres@$PG_HOST:$PG_PORT/$DB_NAME'
export PG_ADMIN_URL='postgresql://postgres@$PG_HOST:$PG_PORT/postgres'
export TEMPORAL_ADDRESS='127.0.0.1:$TEMPORAL_PORT'
export TEMPORAL_NAMESPACE='default'
export TEMPORAL_UI_URL='http://127.0.0.1:$TEMPORAL_UI_PORT'
export KUBECONFIG='$KUBECONFIG_FILE'
export KUBE_AUDIT_LOG='$AUDIT_LOG'
export STRIPE_MOCK_URL='http://127.0.0.1:$STRIPE_MOCK_PORT'
export TOXIPROXY_URL='http://127.0.0.1:$TOXIPROXY_PORT'
export PATH='$BIN':"\$PATH"
EOF
  real_node env >>"$STACK_DIR/env"
}

# A real node that fails to start leaves the rest of the stack usable: its one-line reason goes to
# $STACK_DIR/env (STACK_REAL_NODE_REASON), where the tests that need it read it.
real_node_up() {
  local out
  if ! out=$(real_node up 2>&1 | tee /dev/stderr | tail -1); then
    mkdir -p "$STACK_DIR/real-node"
    echo "failed to start: ${out#\[real-node\] error: }" >"$STACK_DIR/real-node/reason"
    log "the real node failed to start; the stack runs without it (see $STACK_DIR/real-node/logs)"
  fi
}

status() {
  local rc=0
  if pg_ready; then echo "postgres    up    postgresql://postgres@$PG_HOST:$PG_PORT/$DB_NAME"; else echo "postgres    down  $PG_HOST:$PG_PORT"; rc=1; fi
  if temporal_ready 2>/dev/null; then echo "temporal    up    127.0.0.1:$TEMPORAL_PORT (pid $(cat "$STACK_DIR/temporal.pid" 2>/dev/null || echo ?))"; else echo "temporal    down  127.0.0.1:$TEMPORAL_PORT"; rc=1; fi
  if port_open "$TEMPORAL_UI_PORT"; then echo "temporal-ui up    http://127.0.0.1:$TEMPORAL_UI_PORT"; else echo "temporal-ui down  http://127.0.0.1:$TEMPORAL_UI_PORT"; rc=1; fi
  if [ -f "$KUBECONFIG_FILE" ] && kube_ready; then
    echo "kubernetes  up    https://127.0.0.1:$KUBE_PORT ($(kube get nodes --no-headers 2>/dev/null | grep -c ' Ready') nodes Ready; KUBECONFIG=$KUBECONFIG_FILE)"
  else
    echo "kubernetes  down  https://127.0.0.1:$KUBE_PORT"; rc=1
  fi
  if stripe_mock_ready; then echo "stripe-mock up    http://127.0.0.1:$STRIPE_MOCK_PORT (pid $(cat "$STACK_DIR/stripe-mock.pid" 2>/dev/null || echo ?))"; else echo "stripe-mock down  http://127.0.0.1:$STRIPE_MOCK_PORT"; rc=1; fi
  if toxiproxy_ready; then echo "toxiproxy   up    http://127.0.0.1:$TOXIPROXY_PORT (pid $(cat "$STACK_DIR/toxiproxy.pid" 2>/dev/null || echo ?))"; else echo "toxiproxy   down  http://127.0.0.1:$TOXIPROXY_PORT"; rc=1; fi
  if command -v helm >/dev/null; then echo "helm        ok    $(command -v helm) ($(helm version --template '{{.Version}}' 2>/dev/null))"; else echo "helm        missing"; rc=1; fi
  real_node status || rc=1
  return $rc
}

case ${1:-} in
  up)
    pg_up
    temporal_up
    kube_up
    stripe_mock_up
    toxiproxy_up
    real_node_up
    write_env
    status
    log "ready: source $STACK_DIR/env to use it" ;;
  down)
    stop_pidfile "$STACK_DIR/toxiproxy.pid" toxiproxy
    stop_pidfile "$STACK_DIR/stripe-mock.pid" stripe-mock
    stop_pidfile "$STACK_DIR/temporal.pid" Temporal
    real_node down
    kube_down
    pg_down ;;
  status) status ;;
  env) write_env; cat "$STACK_DIR/env" ;;
  *) die "usage: scripts/stack.sh up | down | status | env" ;;
esac
