#!/usr/bin/env bash
# The test command: lint, type-check, then every Jest test (unit and integration) against the real
# local stack, which it starts if it is not running. Extra arguments go to Jest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
echo "[test] eslint" >&2
npx --no-install eslint --max-warnings 0 .
echo "[test] tsc --noEmit" >&2
npx --no-install tsc --noEmit -p .
echo "[test] go test (images/)" >&2
(cd images && go test ./...)
bash scripts/tools.sh install
bash scripts/stack.sh up >/dev/null
# shellcheck disable=SC1091
source .stack/env
echo "[test] jest" >&2
exec npx --no-install jest --ci "$@"
