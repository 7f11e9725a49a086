#!/usr/bin/env bash
# `npm run send-test-event -- --customer cus_demo --plan starter`: a signed Stripe event for the
# service that `npm start` runs, with the local settings it generated (.stack/dev.env).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for f in .stack/env .stack/dev.env; do
  # shellcheck disable=SC1090
  [ -f "$f" ] && source "$f"
done
[ -n "${STRIPE_WEBHOOK_SECRET:-}" ] || { echo "STRIPE_WEBHOOK_SECRET is not set: start the service with 'npm start' first, or export the API's signing secret" >&2; exit 2; }
npx --no-install tsc -p tsconfig.build.json
exec node dist/cli/send-test-event.js "$@"
