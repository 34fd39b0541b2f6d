# One image for the API, the worker and the CLI; the command picks the process.
FROM node:20-bookworm-slim
WORKDIR /app
RUN npm install -g pnpm@10
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/cli/package.json apps/cli/
COPY packages/contracts/package.json packages/contracts/
COPY packages/db/package.json packages/db/
COPY packages/queue/package.json packages/queue/
COPY packages/inference/package.json packages/inference/
COPY packages/webhooks/package.json packages/webhooks/
COPY packages/outcomes/package.json packages/outcomes/
COPY packages/cache/package.json packages/cache/
COPY packages/testing/package.json packages/testing/
COPY prisma prisma
COPY packages/db/prisma.config.ts packages/db/
# postinstall runs `prisma generate`, which needs the schema (copied above) and a DATABASE_URL.
RUN DATABASE_URL=postgresql://build@localhost/build pnpm install --frozen-lockfile
COPY . .
ENV NODE_ENV=production
EXPOSE 3000 9464
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
