# One image for both roles: `node dist/api/server.js` (api) and `node dist/worker.js` (worker),
# as charts/provisioner runs it; `node dist/db/migrate.js` is its migration Job and
# `node dist/cli/tenantctl.js` the operator CLI. The worker shells out to helm and installs
# charts/tenant.
ARG NODE_VERSION=22
ARG HELM_VERSION=3.22.0

# Helm from its official, pinned release, checked against the checksum published with it.
FROM debian:bookworm-slim AS helm
ARG HELM_VERSION
ARG TARGETARCH=amd64
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN set -eux; \
    file="helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz"; \
    curl -fsSLo "/tmp/${file}" "https://get.helm.sh/${file}"; \
    curl -fsSLo "/tmp/${file}.sha256sum" "https://get.helm.sh/${file}.sha256sum"; \
    cd /tmp && sha256sum -c "${file}.sha256sum"; \
    tar -xzf "/tmp/${file}" -C /tmp; \
    install -m 0755 "/tmp/linux-${TARGETARCH}/helm" /usr/local/bin/helm; \
    helm version --short

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
# The workflow code is bundled here, once: workers load dist/workflow-bundle.js (WORKFLOW_BUNDLE)
# instead of running webpack at every start.
RUN PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npx prisma generate \
 && npx tsc -p tsconfig.build.json \
 && node dist/workflow-bundle.js dist/workflow-bundle.js \
 && npm prune --omit=dev

FROM node:${NODE_VERSION}-bookworm-slim
# tini as PID 1: signals reach node (SIGTERM starts the drain) and helm's child processes are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# MALLOC_ARENA_MAX: glibc's per-thread malloc arenas (the SDK's native threads, the workflow thread)
# each grow to 64 MB and keep it; two arenas cut the worker's resident memory by about a fifth.
ENV NODE_ENV=production HOME=/tmp WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY prisma ./prisma
COPY charts/tenant ./charts/tenant
USER 65532:65532
# 8080: public API; 9090: admin (metrics, operator endpoints); 8081: worker health; 9464: worker SDK metrics.
EXPOSE 8080 9090 8081 9464
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/api/server.js"]
