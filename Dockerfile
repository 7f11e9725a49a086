# One image for both roles: `node dist/api/server.js` (api) and `node dist/worker.js` (worker),
# as charts/provisioner runs it. The worker shells out to helm and installs charts/tenant.
ARG NODE_VERSION=22
ARG GO_VERSION=1.25
ARG HELM_VERSION=3.22.0

FROM golang:${GO_VERSION}-bookworm AS helm
ARG HELM_VERSION
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}" \
      helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
RUN PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npx prisma generate \
 && npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production HOME=/tmp
WORKDIR /app
COPY --from=helm /out/helm /usr/local/bin/helm
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY prisma ./prisma
COPY charts/tenant ./charts/tenant
USER 65532:65532
EXPOSE 8080
CMD ["node", "dist/api/server.js"]
