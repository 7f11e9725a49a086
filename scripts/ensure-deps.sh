#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than package-lock.json, and generates
# the Prisma client. Prisma's engine download is not needed: the client runs its query compiler in
# WebAssembly over @prisma/adapter-pg, and `prisma generate` only wants a schema-engine path set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[deps] npm ci" >&2
  npm ci --no-audit --no-fund
fi
if [ ! -f src/generated/prisma/client.ts ] || [ prisma/schema.prisma -nt src/generated/prisma/client.ts ]; then
  PRISMA_SCHEMA_ENGINE_BINARY=${PRISMA_SCHEMA_ENGINE_BINARY:-/bin/false} npx --no-install prisma generate >/dev/null
  echo "[deps] generated the Prisma client" >&2
fi
