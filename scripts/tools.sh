#!/usr/bin/env bash
# Installs the pinned binaries the local stack needs: temporal (dev server + Web UI), etcd,
# kube-apiserver / kube-controller-manager / kube-scheduler / kubectl (and kubelet / kube-proxy for
# the real node), kwok / kwokctl, helm,
# stripe-mock (Stripe's own mock of its API, the Stripe API of the local stack) and toxiproxy-server
# (a TCP proxy that injects faults, for the fault tests); for the real node, kube-network-policies
# (SIG Network's NetworkPolicy enforcer, built with tools/patches/kube-network-policies-*.patch) and
# CoreDNS (the cluster DNS, built with only the plugins a cluster DNS uses).
#
# For each tool, in order:
#   1. the cache (outside the repository, so fresh clones on the same machine reuse it);
#   2. a binary of exactly the pinned version already on PATH;
#   3. the official release download (skipped with TOOLS_NO_DOWNLOAD=1, or when it fails);
#   4. a build from the tool's Go module at the pinned version (slow on small machines, always works
#      where the Go module proxy is reachable).
#
# Usage: scripts/tools.sh install [tool ...]   install (default: all tools)
#        scripts/tools.sh bindir               print the directory holding every tool's binary
#        scripts/tools.sh status               print what is installed and from where
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tools/versions.env
source "$ROOT/tools/versions.env"

CACHE=${TENANT_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenant-provisioner/tools}
BIN="$CACHE/bin"
ALL_TOOLS=(helm kwok etcd temporal kubernetes stripe-mock toxiproxy kube-network-policies coredns)
GOARCH_HOST=$(go env GOARCH 2>/dev/null || echo amd64)
DOWNLOAD_TIMEOUT=${TOOLS_DOWNLOAD_TIMEOUT:-120}

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

version_of() {
  case $1 in
    helm) echo "$HELM_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    temporal) echo "$TEMPORAL_CLI_VERSION" ;;
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    stripe-mock) echo "$STRIPE_MOCK_VERSION" ;;
    toxiproxy) echo "$TOXIPROXY_VERSION" ;;
    kube-network-policies) echo "$KUBE_NETWORK_POLICIES_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    *) die "unknown tool '$1' (known: ${ALL_TOOLS[*]})" ;;
  esac
}

binaries_of() {
  case $1 in
    helm) echo helm ;;
    kwok) echo kwok kwokctl ;;
    etcd) echo etcd ;;
    temporal) echo temporal ;;
    kubernetes) echo kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy ;;
    stripe-mock) echo stripe-mock ;;
    toxiproxy) echo toxiproxy-server ;;
    kube-network-policies) echo kube-network-policies ;;
    coredns) echo coredns ;;
  esac
}

# The stamp records the pin a tool was installed for; a changed pin invalidates it.
stamp_of() { echo "$CACHE/$1-$(version_of "$1")/.installed"; }

installed() {
  local tool=$1 b
  [ -f "$(stamp_of "$tool")" ] || return 1
  for b in $(binaries_of "$tool"); do [ -x "$CACHE/$tool-$(version_of "$tool")/bin/$b" ] || return 1; done
}

# Links every binary of the installed version into $BIN, the one directory callers put on PATH.
link_tool() {
  local tool=$1 b
  mkdir -p "$BIN"
  for b in $(binaries_of "$tool"); do ln -sfn "$CACHE/$tool-$(version_of "$tool")/bin/$b" "$BIN/$b"; done
}

# Prints the version a binary on PATH reports, or nothing.
path_version() {
  local b=$1 out
  command -v "$b" >/dev/null 2>&1 || return 0
  case $b in
    helm) out=$(timeout 10 helm version --template '{{.Version}}' 2>/dev/null) ;;
    temporal) out=$(timeout 10 temporal --version 2>/dev/null) ;;
    etcd) out=$(timeout 10 etcd --version 2>/dev/null | head -1) ;;
    kwok|kwokctl) out=$(timeout 10 "$b" --version 2>/dev/null) ;;
    stripe-mock) out=$(timeout 10 stripe-mock -version 2>&1 | head -1) ;;
    toxiproxy-server) out=$(timeout 10 toxiproxy-server -version 2>&1 | head -1) ;;
    kubectl) out=$(timeout 10 kubectl version --client 2>/dev/null | head -1) ;;
    *) out=$(timeout 10 "$b" --version 2>/dev/null) ;;
  esac
  echo "$out"
}

# Step 2: reuse binaries already on PATH when every one of them reports exactly the pinned version.
from_path() {
  local tool=$1 v b dir
  case $tool in kube-network-policies|coredns) return 1 ;; esac
  v=$(version_of "$tool")
  dir="$CACHE/$tool-$v/bin"
  for b in $(binaries_of "$tool"); do
    [[ " $(path_version "$b") " =~ [^0-9.]v?${v//./\\.}[^0-9.] ]] || return 1
  done
  mkdir -p "$dir"
  for b in $(binaries_of "$tool"); do ln -sfn "$(command -v "$b")" "$dir/$b"; done
  log "$tool $v: using the binaries already on PATH"
}

# Downloads $1 to $2 with a bounded time; verifies it against the sha256 published at $3 when given.
fetch() {
  local url=$1 out=$2 sum_url=${3:-} want got
  curl -fsSL --connect-timeout 10 --max-time "$DOWNLOAD_TIMEOUT" -o "$out" "$url" || return 1
  if [ -n "$sum_url" ]; then
    want=$(curl -fsSL --connect-timeout 10 --max-time 30 "$sum_url" | grep -E "$(basename "$url")\$|^[0-9a-f]{64}\$" | awk '{print $1}' | head -1) || return 1
    got=$(sha256sum "$out" | awk '{print $1}')
    [ -n "$want" ] && [ "$want" = "$got" ] || { log "checksum mismatch for $url"; return 1; }
  fi
}

# Step 3: the official release artifacts.
from_download() {
  local tool=$1 v tmp dir
  [ "${TOOLS_NO_DOWNLOAD:-0}" = 1 ] && return 1
  # Built here on purpose: the enforcer needs a patch, CoreDNS carries only the plugins it uses.
  case $tool in kube-network-policies|coredns) return 1 ;; esac
  v=$(version_of "$tool")
  dir="$CACHE/$tool-$v/bin"
  tmp=$(mktemp -d)
  mkdir -p "$dir"
  if ! download_release "$tool" "$v" "$dir" "$tmp"; then rm -rf "$tmp"; return 1; fi
  rm -rf "$tmp"
  log "$tool $v: downloaded the release binaries"
}

download_release() {
  local tool=$1 v=$2 dir=$3 tmp=$4 b
  case $tool in
    helm)
      fetch "https://get.helm.sh/helm-v$v-linux-$GOARCH_HOST.tar.gz" "$tmp/h.tgz" \
        "https://get.helm.sh/helm-v$v-linux-$GOARCH_HOST.tar.gz.sha256sum" || return 1
      tar -xzf "$tmp/h.tgz" -C "$tmp" && install -m 0755 "$tmp/linux-$GOARCH_HOST/helm" "$dir/helm" ;;
    temporal)
      fetch "https://github.com/temporalio/cli/releases/download/v$v/temporal_cli_${v}_linux_$GOARCH_HOST.tar.gz" "$tmp/t.tgz" \
        "https://github.com/temporalio/cli/releases/download/v$v/temporal_cli_${v}_checksums.txt" || return 1
      tar -xzf "$tmp/t.tgz" -C "$tmp" && install -m 0755 "$tmp/temporal" "$dir/temporal" ;;
    etcd)
      fetch "https://github.com/etcd-io/etcd/releases/download/v$v/etcd-v$v-linux-$GOARCH_HOST.tar.gz" "$tmp/e.tgz" \
        "https://github.com/etcd-io/etcd/releases/download/v$v/SHA256SUMS" || return 1
      tar -xzf "$tmp/e.tgz" -C "$tmp" && install -m 0755 "$tmp/etcd-v$v-linux-$GOARCH_HOST/etcd" "$dir/etcd" ;;
    kwok)
      for b in kwok kwokctl; do
        fetch "https://github.com/kubernetes-sigs/kwok/releases/download/v$v/$b-linux-$GOARCH_HOST" "$dir/$b" || return 1
        chmod 0755 "$dir/$b"
      done ;;
    kubernetes)
      for b in $(binaries_of kubernetes); do
        fetch "https://dl.k8s.io/release/v$v/bin/linux/$GOARCH_HOST/$b" "$dir/$b" \
          "https://dl.k8s.io/release/v$v/bin/linux/$GOARCH_HOST/$b.sha256" || return 1
        chmod 0755 "$dir/$b"
      done ;;
    stripe-mock)
      fetch "https://github.com/stripe/stripe-mock/releases/download/v$v/stripe-mock_${v}_linux_$GOARCH_HOST.tar.gz" "$tmp/s.tgz" || return 1
      tar -xzf "$tmp/s.tgz" -C "$tmp" && install -m 0755 "$tmp/stripe-mock" "$dir/stripe-mock" ;;
    toxiproxy)
      fetch "https://github.com/Shopify/toxiproxy/releases/download/v$v/toxiproxy-server-linux-$GOARCH_HOST" "$dir/toxiproxy-server" || return 1
      chmod 0755 "$dir/toxiproxy-server" ;;
  esac
}

# Runs a long `go build -v` in the background, printing how far it got every 30 s.
go_with_progress() {
  local name=$1 logf=$2; shift 2
  local start=$SECONDS next=$((SECONDS + 30)) pid
  ("$@" >"$logf" 2>&1) &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if ((SECONDS >= next)); then
      log "building $name: $(grep -c '^[a-z]' "$logf" 2>/dev/null || echo 0) packages compiled, $((SECONDS - start))s"
      next=$((next + 30))
    fi
  done
  wait "$pid" || { tail -40 "$logf" >&2; die "building $name failed; full log: $logf"; }
  log "built $name in $((SECONDS - start))s"
}

# Step 4: build from the Go modules.
from_source() {
  local tool=$1 v dir work logf
  v=$(version_of "$tool")
  dir="$CACHE/$tool-$v/bin"
  work="$CACHE/src/$tool-$v"
  logf="$CACHE/logs/$tool-$v.log"
  command -v go >/dev/null || die "no release download and no Go toolchain: install Go >= 1.24 to build $tool"
  mkdir -p "$dir" "$work" "$(dirname "$logf")"
  export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  log "$tool $v: building from its Go module (log: $logf)"
  case $tool in
    helm)
      go_with_progress helm "$logf" env GOBIN="$dir" go install -v -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
        "helm.sh/helm/v3/cmd/helm@v$v" ;;
    kwok)
      go_with_progress kwok "$logf" env GOBIN="$dir" go install -v -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$v -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=v$KUBERNETES_VERSION" \
        "sigs.k8s.io/kwok/cmd/kwok@v$v" "sigs.k8s.io/kwok/cmd/kwokctl@v$v" ;;
    temporal)
      go_with_progress temporal "$logf" env GOBIN="$dir" go install -v -trimpath \
        -ldflags "-s -w -X github.com/temporalio/cli/temporalcli.Version=$v" \
        "github.com/temporalio/cli/cmd/temporal@v$v" ;;
    etcd)
      # etcd's own go.mod replaces its sibling modules with local paths, so `go install` refuses it;
      # a wrapper module with the same main (server/main.go only calls etcdmain.Main) builds it.
      cat >"$work/go.mod" <<EOF
module localstack/etcd

go 1.24

require go.etcd.io/etcd/server/v3 v$v
EOF
      cat >"$work/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
      (cd "$work" && go mod tidy >>"$logf" 2>&1) || { tail -20 "$logf" >&2; die "resolving etcd $v failed; log: $logf"; }
      (cd "$work" && go_with_progress etcd "$logf" go build -v -trimpath -ldflags "-s -w" -o "$dir/etcd" .) ;;
    kubernetes)
      build_kubernetes "$v" "$dir" "$work" "$logf" ;;
    stripe-mock)
      # The binary embeds Stripe's OpenAPI spec and object fixtures for the API version it pins.
      go_with_progress stripe-mock "$logf" env GOBIN="$dir" go install -v -trimpath -ldflags "-s -w -X main.version=$v" \
        "github.com/stripe/stripe-mock@v$v" ;;
    kube-network-policies)
      build_kube_network_policies "$v" "$dir" "$work" "$logf" ;;
    coredns)
      build_coredns "$v" "$dir" "$work" "$logf" ;;
    toxiproxy)
      go_with_progress toxiproxy "$logf" env GOBIN="$dir" go install -v -trimpath \
        -ldflags "-s -w -X github.com/Shopify/toxiproxy/v2.Version=$v" "github.com/Shopify/toxiproxy/v2/cmd/server@v$v"
      mv "$dir/server" "$dir/toxiproxy-server" ;;
  esac
  log "$tool $v: built from source"
}

# k8s.io/kubernetes points its ~30 staging modules at ./staging; the wrapper module points each one
# at its published v0.<minor>.<patch> instead, and sets the version variables `make` would set.
build_kubernetes() {
  local v=$1 dir=$2 work=$3 logf=$4 minor staging kgo pkg ld
  minor=$(echo "$v" | cut -d. -f2)
  (cd "$work" && [ -f go.mod ] || printf 'module localstack/kubernetes\n\ngo 1.24\n' >go.mod)
  (cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$v" >"$work/download.json" 2>>"$logf") ||
    die "cannot fetch k8s.io/kubernetes@v$v from the Go module proxy; log: $logf"
  kgo=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).GoMod)' <"$work/download.json")
  staging=$(grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$kgo" | awk '{print $1}')
  [ -n "$staging" ] || die "found no staging replace lines in k8s.io/kubernetes@v$v's go.mod"
  {
    printf 'module localstack/kubernetes\n\ngo 1.24\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$v"
    for pkg in $staging; do printf '\t%s => %s v0.%s.%s\n' "$pkg" "$pkg" "$minor" "$(echo "$v" | cut -d. -f3)"; done
    printf ')\n'
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
EOF
  rm -f "$work/go.sum"
  (cd "$work" && go mod tidy >>"$logf" 2>&1) || { tail -20 "$logf" >&2; die "resolving kubernetes $v failed; log: $logf"; }
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    ld+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$work" && go_with_progress kubernetes "$logf" go build -v -trimpath -ldflags "$ld" -o "$dir/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
}

# Copies a module's source from the module cache into $3/src (writable), for a patched or wrapped build.
module_source() {
  local mod=$1 v=$2 work=$3 logf=$4 dir
  dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$mod@v$v" 2>>"$logf" |
    node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).Dir || "")') || dir=
  [ -n "$dir" ] || die "cannot fetch $mod@v$v from the Go module proxy; log: $logf"
  rm -rf "$work/src" && cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
}

# The enforcer's patch (tools/patches): a --kubeconfig flag (upstream reads only the in-cluster
# configuration of a DaemonSet pod), and --queue-with-xt-target for kernels built without
# CONFIG_NFT_QUEUE, which refuse the nft queue expression of the upstream rules.
build_kube_network_policies() {
  local v=$1 dir=$2 work=$3 logf=$4 patchf="$ROOT/tools/patches/kube-network-policies-$1.patch"
  module_source sigs.k8s.io/kube-network-policies "$v" "$work" "$logf"
  if [ -f "$patchf" ]; then
    (cd "$work/src" && patch -p1 --forward <"$patchf" >>"$logf" 2>&1) || die "applying $patchf failed; log: $logf"
  fi
  (cd "$work/src" && go_with_progress kube-network-policies "$logf" go build -v -trimpath -ldflags "-s -w" \
    -o "$dir/kube-network-policies" ./cmd)
}

# CoreDNS registers every plugin it has in core/plugin (about 60, with cloud SDKs); this main
# imports only what a cluster DNS uses, in the directive order of upstream's plugin.cfg.
build_coredns() {
  local v=$1 dir=$2 work=$3 logf=$4
  module_source github.com/coredns/coredns "$v" "$work" "$logf"
  mkdir -p "$work/src/cmd/coredns-cluster"
  cat >"$work/src/cmd/coredns-cluster/main.go" <<'EOF'
// Command coredns-cluster is CoreDNS with only the plugins a cluster DNS needs.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// The execution order of plugin.cfg, restricted to the plugins above.
func init() {
	dnsserver.Directives = []string{"reload", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes", "loop", "forward"}
}

func main() { coremain.Run() }
EOF
  (cd "$work/src" && go_with_progress coredns "$logf" go build -v -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v$v" -o "$dir/coredns" ./cmd/coredns-cluster)
}

install_tool() {
  local tool=$1 v
  v=$(version_of "$tool")
  if installed "$tool"; then link_tool "$tool"; return; fi
  rm -rf "${CACHE:?}/$tool-$v"
  from_path "$tool" || from_download "$tool" || from_source "$tool"
  installed_by_now "$tool"
  date -u +%FT%TZ >"$(stamp_of "$tool")"
  link_tool "$tool"
}

installed_by_now() {
  local b
  for b in $(binaries_of "$1"); do
    [ -x "$CACHE/$1-$(version_of "$1")/bin/$b" ] || die "$1: $b is missing after install"
  done
}

cmd=${1:-install}
shift || true
case $cmd in
  install)
    tools=("$@")
    [ ${#tools[@]} -gt 0 ] || tools=("${ALL_TOOLS[@]}")
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock -w 7200 9 || die "another install holds $CACHE/.lock for over two hours"
    for t in "${tools[@]}"; do install_tool "$t"; done
    log "all requested tools ready in $BIN" ;;
  bindir) echo "$BIN" ;;
  status)
    for t in "${ALL_TOOLS[@]}"; do
      if installed "$t"; then echo "$t $(version_of "$t"): installed $(cat "$(stamp_of "$t")")"
      else echo "$t $(version_of "$t"): missing"; fi
    done ;;
  *) die "usage: scripts/tools.sh install [tool ...] | bindir | status" ;;
esac
