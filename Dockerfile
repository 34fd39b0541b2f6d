# Two images from one build: `--target api` (the HTTP API: no onnxruntime, no sharp) and
# `--target worker` (the worker, the migration and the `inferline` CLI). Both run compiled
# JavaScript with production dependencies only, as the unprivileged `node` user:
#   docker build --target api -t inferline-api .
#   docker build --target worker -t inferline-worker .
# NODE_IMAGE is the base of every stage: a Node.js image with npm and a `node` user (uid 1000), as
# the official ones are; deploy/docker/build-local-base.sh makes one from Debian's packages.
ARG NODE_IMAGE=node:24-trixie-slim

FROM ${NODE_IMAGE} AS build
ARG PNPM_VERSION=10
RUN npm install --global "pnpm@${PNPM_VERSION}"
WORKDIR /src
# The store is filled from the lockfile alone, so this layer is rebuilt only when it changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
# postinstall runs `prisma generate`, which stays offline only with a DATABASE_URL (never used).
RUN DATABASE_URL=postgresql://build@localhost/build pnpm install --offline --frozen-lockfile
RUN pnpm build
# Each app with its production dependencies, as the lockfile pins them, in a plain (hoisted)
# node_modules beside its dist/; and the model repository with the npm packages it names. Then
# only what they load (see the two scripts).
RUN for app in apps/api apps/worker apps/cli models; do \
      pnpm --filter "./$app" deploy --prod --offline --ignore-scripts \
        --config.inject-workspace-packages=true --config.node-linker=hoisted "/out/$app" || exit 1; \
    done \
 && rm /out/models/pnpm-lock.yaml \
 && node deploy/docker/prune-node-modules.mjs /out/apps/* /out/models \
 && node deploy/docker/dedupe-node-modules.mjs /out/apps/worker/node_modules /out/apps/cli/node_modules

# What both images hold: the model repository, the migrations, where to find them, and the user.
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    MODELS_DIR=/app/models \
    MIGRATIONS_DIR=/app/migrations
COPY --from=build /out/models/ /app/models/
COPY --from=build /src/prisma/migrations/ /app/migrations/
COPY deploy/docker/healthcheck.mjs /app/healthcheck.mjs
USER node

FROM runtime AS api
COPY --from=build /out/apps/api/package.json /app/
COPY --from=build /out/apps/api/node_modules/ /app/node_modules/
COPY --from=build /out/apps/api/dist/ /app/dist/
ENV PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs", "PORT"]
CMD ["node", "dist/main.js"]

FROM runtime AS worker
COPY --from=build /out/apps/worker/package.json /app/
COPY --from=build /out/apps/worker/node_modules/ /app/node_modules/
COPY --from=build /out/apps/worker/dist/ /app/dist/
# The CLI beside the worker: its node_modules hold only what the worker's lack (see dedupe-node-modules.mjs).
COPY --from=build /out/apps/cli/package.json /app/cli/
COPY --from=build /out/apps/cli/node_modules/ /app/cli/node_modules/
COPY --from=build /out/apps/cli/dist/ /app/cli/dist/
COPY deploy/docker/inferline /usr/local/bin/inferline
ENV METRICS_PORT=9464
EXPOSE 9464
# On SIGTERM a worker finishes its in-flight jobs, within SHUTDOWN_TIMEOUT_MS (30 s by default):
# give `docker stop` a longer timeout (`-t 45`; compose: stop_grace_period).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node", "/app/healthcheck.mjs", "METRICS_PORT"]
CMD ["node", "dist/main.js"]
