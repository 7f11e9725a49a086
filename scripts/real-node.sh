#!/usr/bin/env bash
# The local stack's one real node, beside kwok's simulated ones: kubelet with containerd and runc,
# the CNI bridge, kube-proxy for Services, kube-network-policies as the NetworkPolicy enforcer and
# CoreDNS (a pod on this node) as the cluster DNS. Tenant pods that must really run select it;
# its taint keeps everything else (the kwok scale bench) off it.
#
# Usage: scripts/real-node.sh check | up | down | status | env
#   check   prints why this machine cannot run the node (one line) and exits 1, or exits 0
#   up      starts the node (idempotent); needs the stack's cluster (scripts/stack.sh up calls this)
#   down    stops it and undoes every host change: processes, mounts, the network namespace with its
#           veth, bridge and nftables rules, cgroups, kernel settings kubelet changed
#   status  one line: the node and its pods
#   env     the lines scripts/stack.sh writes into $STACK_DIR/env
#   leftovers  prints every host change of the node still in place (nothing after down)
#
# The node lives in its own network namespace ($NETNS), joined to the host by a veth pair on
# 198.51.100.0/24 (TEST-NET-2, never routed outside): the host end 198.51.100.1 is the API
# server's advertised address (the kubernetes Service's endpoint), the node end 198.51.100.2 the
# node's InternalIP. Every daemon runs in one private mount namespace, so the mounts of containers,
# volumes and pod network namespaces vanish with it. Pods get 10.244.0.0/24.
#
# Settings: STACK_REAL_NODE=0 turns it off; STACK_DIR, STACK_CLUSTER, STACK_KUBE_PORT as stack.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tools/versions.env
source "$ROOT/tools/versions.env"
STACK_DIR=$(mkdir -p "${STACK_DIR:-$ROOT/.stack}" && cd "${STACK_DIR:-$ROOT/.stack}" && pwd)
CLUSTER=${STACK_CLUSTER:-tenant-provisioner}
KUBE_PORT=${STACK_KUBE_PORT:-6443}
KWOK_WORKDIR="$STACK_DIR/kwok"
PKI="$KWOK_WORKDIR/clusters/$CLUSTER/pki"
KUBECONFIG_FILE="$STACK_DIR/kubeconfig"

NODE_NAME=real-node
NODE_LABEL=tenant-provisioner.dev/node-kind=real
NODE_TAINT_KEY=tenant-provisioner.dev/real-node
NETNS=tp-real-node
VETH_HOST=tprn-host
VETH_NODE=tprn-node
HOST_IP=198.51.100.1
NODE_IP=198.51.100.2
POD_CIDR=10.244.0.0/24
SENTINEL_NAMESPACE=tenant-provisioner-sentinel
KUBE_DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
# Allocatable for pods: what a small real node offers, whatever the machine has.
ALLOC_CPU_MILLI=1500
ALLOC_MEM_MI=4096
EVICTION_MEM_MI=100
TENANT_APP_IMAGE=localhost/tenant-provisioner/tenant-app:dev
PAUSE_IMAGE=localhost/tenant-provisioner/pause:dev
COREDNS_IMAGE=localhost/tenant-provisioner/coredns:$COREDNS_VERSION
# kubelet's cgroups (every controller) sit under this one name, so down removes exactly them.
CGROUP_ROOT=/tp-real-node
# Global kernel settings kubelet sets at start (protectKernelDefaults=false); down restores them.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Paths the daemons write outside their own directories; each gets a private tmpfs in the mount
# namespace (the directory itself is created on the host when missing, and removed by down).
PRIVATE_MOUNTS=(/run/containerd /run/netns /var/lib/cni /var/log/containers /var/log/pods /opt/containerd)
# Debian packages the node needs, with the versions this stack runs (a newer patch release works).
APT_PACKAGES=(containerd runc containernetworking-plugins nftables iptables conntrack)

RN="$STACK_DIR/real-node"
LOGS="$RN/logs"
READY_FILE="$STACK_DIR/REAL_NODE_READY"
# One real node per machine (its namespace, veth and addresses are fixed): the stack that runs it.
OWNER_FILE=/run/tenant-provisioner-real-node.owner
REASON_FILE="$RN/reason"

BIN=$("$ROOT/scripts/tools.sh" bindir)
export PATH="$BIN:$PATH"

log() { printf '[real-node] %s\n' "$*" >&2; }
die() { printf '[real-node] error: %s\n' "$*" >&2; exit 1; }

kube() { kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout 10s "$@"; }
holder_pid() { [ -f "$RN/holder.pid" ] && kill -0 "$(cat "$RN/holder.pid")" 2>/dev/null && cat "$RN/holder.pid"; }
# Runs a command inside the node: its network namespace and its private mount namespace.
in_node() { nsenter -t "$(holder_pid)" -m -n -- "$@"; }

# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

# --- can this machine run it? -------------------------------------------------------------------

# Prints the reason this machine cannot run a real node, or nothing.
unfit_reason() {
  [ "${STACK_REAL_NODE:-1}" = 0 ] && { echo "turned off by STACK_REAL_NODE=0"; return; }
  [ "$(uname -s)" = Linux ] || { echo "not Linux"; return; }
  [ "$(id -u)" = 0 ] || { echo "not root (kubelet, containerd and the CNI bridge need root)"; return; }
  if [ ! -d /sys/fs/cgroup/memory ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "no cgroups mounted at /sys/fs/cgroup"; return
  fi
  local b
  for b in ip nsenter unshare openssl; do command -v "$b" >/dev/null || { echo "no $b command"; return; }; done
  unshare --net --mount true 2>/dev/null || { echo "cannot create network and mount namespaces (unshare failed)"; return; }
  if [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" != "$STACK_DIR" ] && [ -e "/run/netns/$NETNS" ]; then
    echo "this machine's real node belongs to the stack in $(cat "$OWNER_FILE")"; return
  fi
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || { echo "no br_netfilter (bridged pod traffic would bypass Services and policies)"; return; }
  [ -d /proc/sys/net/netfilter ] || [ -e /proc/net/netfilter/nfnetlink_queue ] || { echo "no netfilter in this kernel"; return; }
  [ -e /proc/net/netfilter/nfnetlink_queue ] || modprobe nfnetlink_queue 2>/dev/null || true
  [ -e /proc/net/netfilter/nfnetlink_queue ] || { echo "no nfnetlink_queue (the NetworkPolicy enforcer needs NFQUEUE)"; return; }
}

# --- packages and binaries ----------------------------------------------------------------------

deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

ensure_packages() {
  local p missing=()
  command -v dpkg-query >/dev/null || { command -v containerd >/dev/null && command -v runc >/dev/null && return 0; die "no containerd/runc and no dpkg to install them"; }
  for p in "${APT_PACKAGES[@]}"; do [ -n "$(deb_version "$p")" ] || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1 ||
      { DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update >>"$LOGS/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOGS/apt.log" 2>&1; } ||
      die "apt-get install ${missing[*]} failed; see $LOGS/apt.log"
  fi
  # containerd 1.6 is the oldest containerd that serves kubelet 1.34's CRI v1; older ones refuse it.
  local want have
  for p in containerd:$CONTAINERD_DEB_VERSION runc:$RUNC_DEB_VERSION containernetworking-plugins:$CNI_PLUGINS_DEB_VERSION; do
    want=${p#*:}; have=$(deb_version "${p%%:*}")
    if [ "$have" != "$want" ]; then
      dpkg --compare-versions "$have" ge "$want" || die "${p%%:*} $have is older than the pinned $want (tools/versions.env)"
      log "${p%%:*} $have differs from the pinned $want (newer: used)"
    fi
  done
  [ -x /usr/lib/cni/bridge ] || die "no CNI bridge plugin in /usr/lib/cni (package containernetworking-plugins)"
}

ensure_tools() {
  local b missing=()
  for b in kubelet kube-proxy kube-network-policies coredns kubectl; do command -v "$b" >/dev/null || missing+=("$b"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "building ${missing[*]} (cached in $("$ROOT/scripts/tools.sh" bindir)/..)"
    "$ROOT/scripts/tools.sh" install kubernetes kube-network-policies coredns >&2 || die "installing the real node's tools failed"
  fi
}

# Builds the project's images (tenant-app, pause) and packs them and CoreDNS as OCI archives;
# rebuilt only when their source or the CoreDNS binary changed.
build_images() {
  local dir="$RN/images" key
  mkdir -p "$dir/bin"
  key=$(find "$ROOT/images" -name '*.go' ! -name '*_test.go' -o -name go.mod | sort | xargs cat "$(readlink -f "$BIN/coredns")" | sha256sum | cut -c1-16)
  if [ -f "$dir/key" ] && [ "$(cat "$dir/key")" = "$key" ] && [ -f "$dir/tenant-app.tar" ] && [ -f "$dir/pause.tar" ] && [ -f "$dir/coredns.tar" ]; then
    return 0
  fi
  log "building the images (tenant-app, pause, CoreDNS)"
  (cd "$ROOT/images" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$dir/bin/" ./tenant-app ./pause ./ocipack) \
    >"$LOGS/images.log" 2>&1 || { tail -20 "$LOGS/images.log" >&2; die "building images/ failed; see $LOGS/images.log"; }
  "$dir/bin/ocipack" -name "$TENANT_APP_IMAGE" -o "$dir/tenant-app.tar" -file "$dir/bin/tenant-app=/tenant-app" \
    -entrypoint /tenant-app -cmd serve -user 65532:65532 -port 8080/tcp -port 8081/udp
  "$dir/bin/ocipack" -name "$PAUSE_IMAGE" -o "$dir/pause.tar" -file "$dir/bin/pause=/pause" -entrypoint /pause -user 65535:65535
  "$dir/bin/ocipack" -name "$COREDNS_IMAGE" -o "$dir/coredns.tar" -file "$(readlink -f "$BIN/coredns")=/coredns" \
    -entrypoint /coredns -port 53/udp -port 53/tcp
  echo "$key" >"$dir/key"
}

# --- host side: network namespace, veth, mount namespace ----------------------------------------

netns_up() {
  if [ ! -e "/run/netns/$NETNS" ]; then
    # ip netns makes /run/netns a mount point the first time; down undoes that if it was us.
    if [ ! -f "$RN/netns-dir" ] && ! mountpoint -q /run/netns; then
      if [ -d /run/netns ]; then echo mounted >"$RN/netns-dir"; else echo created >"$RN/netns-dir"; fi
    fi
    ip netns add "$NETNS"
  fi
  if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
    ip link add "$VETH_HOST" type veth peer name "$VETH_NODE"
    ip link set "$VETH_NODE" netns "$NETNS"
  fi
  ip addr replace "$HOST_IP/24" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  ip netns exec "$NETNS" sh -c "
    ip link set lo up
    ip addr replace $NODE_IP/24 dev $VETH_NODE
    ip link set $VETH_NODE up
    ip route replace default via $HOST_IP
    sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1"
  # Replies from the host (the API server) to pods go back through the node.
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$VETH_HOST"
}

# The holder is the first process of the node's mount namespace: every daemon joins its
# namespaces, and the namespace (with every mount made in it) ends when its last process does.
holder_up() {
  [ -n "$(holder_pid || true)" ] && return 0
  local m
  : >"$RN/created-dirs"
  for m in "${PRIVATE_MOUNTS[@]}"; do
    if [ ! -d "$m" ]; then mkdir -p "$m" && echo "$m" >>"$RN/created-dirs"; fi
  done
  rm -f "$RN/holder.ready"
  local mounts=""
  for m in "${PRIVATE_MOUNTS[@]}"; do mounts+="mount -t tmpfs -o mode=0755 tp-real-node $m && "; done
  setsid nsenter --net="/run/netns/$NETNS" -- unshare --mount --propagation private -- \
    sh -c "${mounts}touch '$RN/holder.ready' && exec sleep infinity" >"$LOGS/holder.log" 2>&1 </dev/null &
  echo $! >"$RN/holder.pid"
  wait_for "node namespaces" 10 test -f "$RN/holder.ready" || die "could not set up the node's mount namespace; see $LOGS/holder.log"
}

# kubelet refuses a cgroup root that does not exist. On cgroup v1 it is one directory per
# controller; a new cpuset needs its parent's CPUs and memory nodes before tasks can join it.
cgroups_up() {
  local d
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup$CGROUP_ROOT"
    return 0
  fi
  for d in /sys/fs/cgroup/*/; do
    [ -d "$d" ] && mountpoint -q "$d" || continue
    mkdir -p "$d${CGROUP_ROOT#/}"
    if [ -f "$d/cpuset.cpus" ]; then
      [ -n "$(cat "$d${CGROUP_ROOT#/}/cpuset.cpus")" ] || cat "$d/cpuset.cpus" >"$d${CGROUP_ROOT#/}/cpuset.cpus"
      [ -n "$(cat "$d${CGROUP_ROOT#/}/cpuset.mems")" ] || cat "$d/cpuset.mems" >"$d${CGROUP_ROOT#/}/cpuset.mems"
    fi
  done
}

# --- certificates and configuration -------------------------------------------------------------

# A client certificate signed by the cluster's CA, and a kubeconfig using it.
client_kubeconfig() {
  local name=$1 subject=$2 out="$RN/$1.kubeconfig"
  [ -f "$out" ] && [ "$RN/$name.crt" -nt "$PKI/ca.crt" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$RN/$name.key" -subj "$subject" -out "$RN/$name.csr" 2>/dev/null
  printf 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$RN/$name.ext"
  openssl x509 -req -in "$RN/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -extfile "$RN/$name.ext" -days 365 -out "$RN/$name.crt" 2>/dev/null || die "cannot sign the $name certificate with $PKI/ca.key"
  rm -f "$RN/$name.csr" "$RN/$name.ext"
  cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$HOST_IP:$KUBE_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $name
  user:
    client-certificate: $RN/$name.crt
    client-key: $RN/$name.key
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
EOF
}

# Replaces FILE with stdin only when the content differs: kube-proxy exits when its configuration
# file changes under it, even to the same content.
write_if_changed() {
  local new
  new=$(cat)
  [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 0
  printf '%s\n' "$new" >"$1"
}

# true when this process lacks CAP_SYS_RESOURCE (bit 24), which lowering oom_score_adj needs.
restrict_oom() {
  local eff
  eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  if (( (16#$eff >> 24) & 1 )); then echo false; else echo true; fi
}

write_configs() {
  mkdir -p "$RN/cni" "$RN/kubelet"
  client_kubeconfig kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  client_kubeconfig kube-proxy "/CN=system:kube-proxy"
  client_kubeconfig enforcer "/O=system:masters/CN=tenant-provisioner:network-policy-enforcer"

  write_if_changed "$RN/containerd.toml" <<EOF
version = 2
root = "$RN/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "/opt/containerd"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  # Machines that withhold CAP_SYS_RESOURCE even from root (this one) refuse the negative
  # oom_score_adj the CRI gives sandboxes; this clamps it to containerd's own.
  restrict_oom_score_adj = $(restrict_oom)
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RN/cni"
EOF

  write_if_changed "$RN/cni/10-tenant-bridge.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "tenant-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

  local mem_kib reserved_mem_mi cpus reserved_cpu_milli
  mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  reserved_mem_mi=$((mem_kib / 1024 - ALLOC_MEM_MI - EVICTION_MEM_MI))
  ((reserved_mem_mi > 0)) || die "the machine has $((mem_kib / 1024)) MiB, less than the node's ${ALLOC_MEM_MI} MiB allocatable"
  cpus=$(nproc)
  reserved_cpu_milli=$((cpus * 1000 - ALLOC_CPU_MILLI))
  ((reserved_cpu_milli >= 0)) || reserved_cpu_milli=0
  write_if_changed "$RN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$KUBE_DNS_IP]
resolvConf: ""
podLogsDir: /var/log/pods
maxPods: 110
kubeReserved:
  cpu: ${reserved_cpu_milli}m
  memory: ${reserved_mem_mi}Mi
evictionHard:
  memory.available: ${EVICTION_MEM_MI}Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerWithTaints:
- key: $NODE_TAINT_KEY
  value: "true"
  effect: NoSchedule
nodeStatusReportFrequency: 10s
EOF

  write_if_changed "$RN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: $RN/kube-proxy.kubeconfig
# 0 keeps the kernel's conntrack settings (nf_conntrack_max is machine-wide).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# --- daemons ------------------------------------------------------------------------------------

# daemon NAME ARGS...: starts ARGS inside the node, in its own process group, unless running.
daemon() {
  local name=$1; shift
  if [ -f "$RN/$name.pid" ] && kill -0 "$(cat "$RN/$name.pid")" 2>/dev/null; then return 0; fi
  setsid nsenter -t "$(holder_pid)" -m -n -- "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RN/$name.pid"
}

ctr_node() { in_node ctr --address /run/containerd/containerd.sock --timeout 30s "$@"; }

import_images() {
  local img
  for img in tenant-app pause coredns; do
    ctr_node -n k8s.io images import "$RN/images/$img.tar" >>"$LOGS/images.log" 2>&1 ||
      die "ctr images import $RN/images/$img.tar failed; see $LOGS/images.log"
  done
  ctr_node -n k8s.io images ls -q | grep -qx "$TENANT_APP_IMAGE" || die "containerd does not list $TENANT_APP_IMAGE after the import; see $LOGS/images.log"
}

node_ready() { kube get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; }
dns_answers() { in_node "$RN/images/bin/tenant-app" probe dns "$KUBE_DNS_IP:53" --timeout 1s --name "kubernetes.default.svc.$CLUSTER_DOMAIN"; }

cluster_dns() {
  kube apply -f - >>"$LOGS/coredns.log" 2>&1 <<EOF || die "applying the CoreDNS objects failed; see $LOGS/coredns.log"
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
            pods insecure
            ttl 30
        }
        cache 30
        loop
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      nodeSelector: {tenant-provisioner.dev/node-kind: real}
      tolerations:
      - {key: $NODE_TAINT_KEY, operator: Exists, effect: NoSchedule}
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        resources:
          requests: {cpu: 50m, memory: 64Mi}
          limits: {memory: 170Mi}
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
          readOnlyRootFilesystem: true
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          periodSeconds: 10
          failureThreshold: 5
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $KUBE_DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
EOF
}

# App pods the isolation rules are about, on the real node, from the tenant app's image:
# - the per-tenant check's sentinel (ISOLATION_CHECK=on), in a namespace of the provisioner's own
#   with no policy of its own, so a probe from a tenant that does not reach it was stopped by the
#   tenant's own policies;
# - a stand-in for the ingress controller (namespace ingress-nginx, the controller's label), the
#   one client the tenants' policies let in, so `tenantctl verify-isolation` can probe that rule.
isolation_pods() {
  app_deployment "$SENTINEL_NAMESPACE" isolation-sentinel "app.kubernetes.io/part-of: tenant-provisioner"
  app_deployment ingress-nginx ingress-nginx-controller "app.kubernetes.io/part-of: ingress-nginx"
}

# app_deployment NAMESPACE NAME NAMESPACE-LABEL: one tenant-app pod labelled app.kubernetes.io/name=NAME.
app_deployment() {
  local ns=$1 name=$2 nslabel=$3 app=$2
  [ "$name" = ingress-nginx-controller ] && app=ingress-nginx
  kube apply -f - >>"$LOGS/isolation-pods.log" 2>&1 <<EOF || die "applying $ns/$name failed; see $LOGS/isolation-pods.log"
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels: {$nslabel, pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name, namespace: $ns}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: $app}}
  template:
    metadata: {labels: {app.kubernetes.io/name: $app}}
    spec:
      nodeSelector: {${NODE_LABEL%%=*}: "${NODE_LABEL#*=}"}
      tolerations: [{key: $NODE_TAINT_KEY, operator: Equal, value: "true", effect: NoSchedule}]
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: app
        image: $TENANT_APP_IMAGE
        imagePullPolicy: Never
        args: [serve]
        env:
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
EOF
}

up() {
  local reason start=$SECONDS
  mkdir -p "$RN" "$LOGS"
  # A node that was ready stays marked ready while up re-checks it, unless this run fails.
  trap 'rm -f "$READY_FILE"' EXIT
  reason=$(unfit_reason)
  if [ -n "$reason" ]; then
    # Turned off while running: stop it (only when this stack runs it; down checks).
    [ -n "$(holder_pid || true)" ] && down
    mkdir -p "$RN"
    echo "$reason" >"$REASON_FILE"
    log "not started: $reason"
    rm -f "$READY_FILE"
    trap - EXIT
    return 0
  fi
  rm -f "$REASON_FILE"
  [ -f "$PKI/ca.key" ] || die "no cluster CA at $PKI (start the cluster first: scripts/stack.sh up)"
  kube get --raw /readyz >/dev/null 2>&1 || die "the cluster's API server does not answer (scripts/stack.sh up starts it)"
  kube get endpoints kubernetes -o jsonpath='{.subsets[*].addresses[*].ip}' 2>/dev/null | grep -qw "$HOST_IP" ||
    die "the API server does not advertise $HOST_IP (the cluster was created without the real node): recreate it with scripts/stack.sh down && scripts/stack.sh up"
  echo "$STACK_DIR" >"$OWNER_FILE"
  ensure_packages
  ensure_tools
  build_images
  netns_up
  holder_up
  cgroups_up
  write_configs
  if [ ! -f "$RN/sysctls.saved" ]; then
    local k
    for k in "${KUBELET_SYSCTLS[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$RN/sysctls.saved"
  fi

  daemon containerd containerd --config "$RN/containerd.toml"
  wait_for "containerd" 30 ctr_node version || { tail -20 "$LOGS/containerd.log" >&2; die "containerd did not answer within 30 s; see $LOGS/containerd.log"; }
  import_images
  daemon kubelet kubelet --config "$RN/kubelet.yaml" --kubeconfig "$RN/kubelet.kubeconfig" --root-dir "$RN/kubelet" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --node-labels "$NODE_LABEL" --v 1
  # kube-proxy exits when its config file changes under it: the file is written before it starts.
  daemon kube-proxy kube-proxy --config "$RN/kube-proxy.yaml" --v 1
  daemon kube-network-policies kube-network-policies --kubeconfig "$RN/enforcer.kubeconfig" \
    --hostname-override "$NODE_NAME" --disable-nri --queue-with-xt-target --netfilter-bug-1766-fix=false \
    --metrics-bind-address 127.0.0.1:9080 --v 1
  wait_for "node $NODE_NAME" 120 node_ready || { tail -20 "$LOGS/kubelet.log" >&2; die "node $NODE_NAME did not become Ready within 120 s; see $LOGS/kubelet.log"; }
  cluster_dns
  wait_for "CoreDNS" 120 kube -n kube-system rollout status deployment/coredns --timeout 5s ||
    { kube -n kube-system get pods -o wide >&2 || true; die "CoreDNS did not become ready within 120 s; kubectl -n kube-system describe pod -l k8s-app=kube-dns"; }
  wait_for "cluster DNS at $KUBE_DNS_IP" 60 dns_answers || die "kube-dns ($KUBE_DNS_IP) does not answer from the node; see $LOGS/kube-proxy.log"
  isolation_pods
  wait_for "the isolation sentinel" 120 kube -n "$SENTINEL_NAMESPACE" rollout status deployment/isolation-sentinel --timeout 5s ||
    die "the isolation sentinel did not become ready within 120 s; kubectl -n $SENTINEL_NAMESPACE describe pod"
  wait_for "the stand-in ingress controller" 120 kube -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout 5s ||
    die "the stand-in ingress controller did not become ready within 120 s; kubectl -n ingress-nginx describe pod"
  touch "$READY_FILE"
  trap - EXIT
  log "node $NODE_NAME ready in $((SECONDS - start)) s (node IP $NODE_IP, pods $POD_CIDR, DNS $KUBE_DNS_IP)"
}

# --- teardown -----------------------------------------------------------------------------------

cgroup_dirs() {
  local d
  for d in "/sys/fs/cgroup$CGROUP_ROOT" /sys/fs/cgroup/*"$CGROUP_ROOT"; do [ -d "$d" ] && echo "$d"; done
  true
}

# Pids of every process in the node: the daemons and shims (in the holder's mount namespace) and
# the containers (in kubelet's cgroups).
node_pids() {
  local ns p f
  if [ -f "$RN/holder.pid" ] && ns=$(readlink "/proc/$(cat "$RN/holder.pid")/ns/mnt" 2>/dev/null); then
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
    done
  fi
  for f in $(cgroup_dirs); do
    [ -d "$f" ] && find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  true
}

kill_all() {
  local sig=$1 pids
  pids=$(node_pids | sort -u | grep -vx "$$" || true)
  [ -n "$pids" ] && kill "-$sig" $pids 2>/dev/null || true
}

down() {
  local name i
  if [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" != "$STACK_DIR" ]; then
    rm -f "$READY_FILE" "$REASON_FILE"
    return 0
  fi
  # kubelet first, so it restarts nothing while the rest stops.
  for name in kubelet kube-network-policies kube-proxy containerd; do
    if [ -f "$RN/$name.pid" ] && kill -0 "$(cat "$RN/$name.pid")" 2>/dev/null; then
      kill -TERM -- "-$(cat "$RN/$name.pid")" 2>/dev/null || kill -TERM "$(cat "$RN/$name.pid")" 2>/dev/null || true
    fi
  done
  for i in $(seq 1 20); do [ -z "$(node_pids)" ] && break; kill_all TERM; sleep 0.5; done
  kill_all KILL
  [ -n "$(node_pids)" ] && sleep 1
  rm -f "$RN"/*.pid "$RN/holder.ready"
  if [ -e "/run/netns/$NETNS" ]; then
    ip netns del "$NETNS" 2>/dev/null || log "could not delete network namespace $NETNS"
  fi
  ip link del "$VETH_HOST" 2>/dev/null || true
  if [ -f "$RN/netns-dir" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
    umount /run/netns 2>/dev/null || true
    [ "$(cat "$RN/netns-dir")" = created ] && rmdir /run/netns 2>/dev/null
    rm -f "$RN/netns-dir"
  fi
  local d
  for d in $(cgroup_dirs); do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && log "could not remove cgroup $d (processes left in it?)"
  done
  if [ -f "$RN/sysctls.saved" ]; then
    while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || log "could not restore $kv"; done <"$RN/sysctls.saved"
    rm -f "$RN/sysctls.saved"
  fi
  if [ -f "$RN/created-dirs" ]; then
    while IFS= read -r d; do rmdir "$d" 2>/dev/null || true; done <"$RN/created-dirs"
    rm -f "$RN/created-dirs"
  fi
  # Node state: containers, pod volumes and certificates are per cluster; the built images stay.
  rm -rf "$RN/containerd" "$RN/kubelet" "$RN/cni" "$RN"/*.kubeconfig "$RN"/*.crt "$RN"/*.key "$RN"/*.csr "$RN"/*.srl
  rm -f "$READY_FILE"
  [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" = "$STACK_DIR" ] && rm -f "$OWNER_FILE"
  [ -d "$RN" ] && log "stopped; host changes undone"
  true
}

status() {
  if [ -f "$REASON_FILE" ]; then echo "real-node   off   $(cat "$REASON_FILE")"; return 0; fi
  if [ -z "$(holder_pid || true)" ]; then echo "real-node   down"; return 1; fi
  local ready pods
  ready=$(kube get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || echo '?')
  pods=$(kube get pods -A --field-selector "spec.nodeName=$NODE_NAME" --no-headers 2>/dev/null | wc -l)
  if [ "$ready" = True ] && [ -f "$READY_FILE" ]; then
    echo "real-node   up    $NODE_NAME $NODE_IP (Ready; $pods pods; DNS $KUBE_DNS_IP; logs $LOGS)"
  else
    echo "real-node   down  $NODE_NAME $NODE_IP (Ready=$ready; logs $LOGS)"; return 1
  fi
}

leftovers() {
  local d
  [ -e "/run/netns/$NETNS" ] && echo "network namespace $NETNS"
  ip link show "$VETH_HOST" >/dev/null 2>&1 && echo "veth $VETH_HOST"
  for d in $(cgroup_dirs); do echo "cgroup $d"; done
  [ -f "$OWNER_FILE" ] && echo "owner file $OWNER_FILE ($(cat "$OWNER_FILE"))"
  grep -E " (/run/containerd|/var/lib/cni|/var/log/pods|/var/log/containers|/opt/containerd)[ /]" /proc/self/mountinfo | sed 's/^/mount /' || true
  [ -n "$(node_pids)" ] && echo "processes $(node_pids | sort -u | tr '\n' ' ')"
  true
}

# Lines for $STACK_DIR/env, quoted the way test/integration/global-setup.ts reads them.
env_lines() {
  local on=0 reason
  reason=$(cat "$REASON_FILE" 2>/dev/null || true)
  [ -f "$READY_FILE" ] && on=1
  [ $on = 0 ] && [ -z "$reason" ] && reason="not running (scripts/stack.sh up starts it; logs in $LOGS)"
  cat <<EOF
export STACK_REAL_NODE='$on'
export STACK_REAL_NODE_REASON='${reason//\'/}'
export STACK_REAL_NODE_NAME='$NODE_NAME'
export KUBE_DNS_IP='$KUBE_DNS_IP'
export TENANT_APP_IMAGE='$TENANT_APP_IMAGE'
EOF
  if [ $on = 1 ]; then
    cat <<EOF
export TENANT_IMAGE='$TENANT_APP_IMAGE'
export TENANT_UDP_PORT='8081'
export ISOLATION_CHECK='on'
export CLUSTER_POD_CIDRS='$POD_CIDR'
export CLUSTER_NODE_CIDRS='${HOST_IP%.*}.0/24'
export TENANT_POD_PLACEMENT='{"nodeSelector":{"${NODE_LABEL%%=*}":"${NODE_LABEL#*=}"},"tolerations":[{"key":"$NODE_TAINT_KEY","operator":"Equal","value":"true","effect":"NoSchedule"}]}'
EOF
  fi
}

case ${1:-} in
  check) r=$(unfit_reason); [ -z "$r" ] || { echo "$r"; exit 1; } ;;
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_lines ;;
  leftovers) leftovers ;;
  *) die "usage: scripts/real-node.sh check | up | down | status | env | leftovers" ;;
esac
