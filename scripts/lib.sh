# Shell helpers shared by scripts/stack.sh and scripts/real-node.sh (sourced; each defines its own
# `log` with its prefix).

# wait_for WHAT SECONDS COMMAND...: runs COMMAND once a second until it succeeds, at most SECONDS.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
  log "$what is ready"
}
