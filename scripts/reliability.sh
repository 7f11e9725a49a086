#!/usr/bin/env bash
# Runs the fault tests on the local stack and renders their matrix into docs/reliability.md.
#   npm run reliability            (the stack must be up: npm run stack:up)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -f .stack/env ] && source .stack/env
OUT="$ROOT/docs/reliability.json"
rm -f "$OUT"
RELIABILITY_OUT="$OUT" npx jest --selectProjects integration --testPathPatterns 'faults-' --runInBand
node scripts/reliability-doc.mjs "$OUT" docs/reliability.md
echo "wrote docs/reliability.md"
