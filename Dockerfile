# syntax=docker/dockerfile:1
#
# signal: the real-time edge (WebSocket on /stream, REST under /v1/api/signal, one port).
#
#   docker build -t signal:local .
#   docker run --rm -p 3000:3000 signal:local          # embedded defaults, single instance
#
# The service runs its TypeScript sources directly through tsx (a runtime
# dependency in package.json), so there is no compile step: the build stage
# only proves the sources type-check, and the runtime stage carries the
# sources plus production dependencies.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: every dependency, then a type-check of what ships -----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
# tsconfig also includes test/ and bench/, which are not in the build context
# (.dockerignore); tsc checks whatever of its include list exists.
RUN npx tsc --noEmit -p tsconfig.json && touch /app/.typechecked

# --- prod-deps: production dependencies only (tsx included: it runs the sources) ---
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# --- runtime ------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# NODE_ENV is deliberately left unset: the service does not read it, and the
# test suite runs without it, so the image behaves exactly like what was tested.
ENV HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Code and dependencies belong to root and are read-only for the service user.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY migrations ./migrations
COPY src ./src
# Ties this stage to the type-check, so an image is never built from sources that fail it.
COPY --from=build /app/.typechecked /app/.typechecked
# Embedded mode (no APP_ENV_DB_URL / APP_ENV_JWKS_URL) keeps its dev key and
# database in /app/.data; with real dependencies nothing is written there.
# tsx caches compiled sources in the OS temp dir (/tmp).
RUN mkdir -p /app/.data && chown node:node /app/.data

# The official image's unprivileged user (uid 1000).
USER node
EXPOSE 3000

# Liveness only (no dependency checks): node's built-in fetch, since slim images have no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + (process.env.APP_ENV_BASE_PATH || '/v1/api/signal') + '/health', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# main.ts closes every client with 1001 on SIGTERM and exits 0 within about 10 s.
STOPSIGNAL SIGTERM
# node is PID 1 itself (not npm, not a shell), so SIGTERM reaches the service.
CMD ["node", "--import", "tsx", "src/bootstrap/main.ts"]
