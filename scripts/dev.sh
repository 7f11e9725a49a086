#!/usr/bin/env bash
# `npm start`: the service against the embedded local stack. Installs what is missing (npm
# packages, the pinned tools), brings the stack up, applies the database migrations, then runs the
# worker and the API until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/tools.sh install
bash scripts/stack.sh up
# shellcheck disable=SC1091
source .stack/env

# Local-only settings and secrets, generated once and kept in the ignored state folder; the
# send-test-event command reads the same file.
if [ ! -f .stack/dev.env ]; then
  rand() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'; }
  umask 077
  cat >.stack/dev.env <<ENV
export STRIPE_WEBHOOK_SECRET='whsec_$(rand)'
export STRIPE_API_KEY='sk_test_local'
export JWT_SECRET='$(rand)'
export JWT_ISSUER='tenant-provisioner-dev'
export JWT_AUDIENCE='tenant-api'
export SERVICE_TOKEN='$(rand)'
ENV
fi
# shellcheck disable=SC1091
source .stack/dev.env
export HELM_BIN=${HELM_BIN:-$(command -v helm)} PORT=${PORT:-8080} DEPROVISION_GRACE_SECONDS=${DEPROVISION_GRACE_SECONDS:-60}
# The local stack's Stripe API is stripe-mock.
export STRIPE_API_BASE=${STRIPE_API_BASE:-$STRIPE_MOCK_URL}

npx --no-install tsc -p tsconfig.build.json
node dist/db/migrate.js

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
node dist/worker.js &
pids+=($!)
if [ -f dist/api/server.js ]; then
  node dist/api/server.js &
  pids+=($!)
fi
cat >&2 <<MSG

  Temporal Web UI  $TEMPORAL_UI_URL  (filter: TenantStatus="active")
  API              http://127.0.0.1:$PORT   (webhook, users' tenants, GET /healthz)
  admin API        http://127.0.0.1:${ADMIN_PORT:-9090}   (GET /readyz, /metrics, tenantctl)
  Kubernetes       KUBECONFIG=$KUBECONFIG kubectl get ns -l app.kubernetes.io/managed-by=tenant-provisioner
  Stripe API       $STRIPE_API_BASE (stripe-mock)
  Send a paid event:  npm run send-test-event -- --customer cus_demo --plan starter
  A subscription:     npm run send-test-event -- --type customer.subscription.created --customer cus_demo --subscription sub_demo --plan pro

MSG
wait -n "${pids[@]}"
