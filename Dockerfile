# xep207-proxy as a container: built with the dev dependencies (TypeScript), run on a slim Node 20
# with the production dependencies only, as the unprivileged `node` user. Every setting comes from
# XEP207_* environment variables (README, "Running it"); XEP207_UPSTREAM is required. The admin
# listener is on by default here, on every interface of the container: the kubelet's probes and
# Prometheus reach a pod by its address, not by its loopback (docs/deploy.md). test/container.test.ts
# runs this file's command line with this file's environment.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY types types
COPY src src
RUN npx tsc -p tsconfig.build.json

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# NODE_OPTIONS: V8's young generation capped at 8 MiB per semi-space (its default maximum, 16, is
# reached in a burst of logins and kept while the sessions idle: ~14 MiB more RSS; docs/bench.md,
# "Memory"). Add your own options after it (e.g. --max-old-space-size) rather than replacing it.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8 \
    XEP207_LISTEN=5222 \
    XEP207_ADMIN_LISTEN=0.0.0.0:9207 \
    XEP207_DRAIN_TIMEOUT=10
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /src/dist/src dist/src
COPY package.json ./
COPY bin bin
USER node
EXPOSE 5222 9207
# SIGTERM drains (--drain-timeout, 10 s): give the container longer than that to stop
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["node", "/app/bin/xep207-admin", "/healthz"]
ENTRYPOINT ["node", "/app/bin/xep207-proxy"]
