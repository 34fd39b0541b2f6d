import { Option, type Command } from "commander";
import { SharedEnv, type HostPort } from "@inferline/contracts";
import type { ApiKeyInfo, TenantStore } from "@inferline/db";
import { databaseUrlOption, jsonOption, redisUrlOption } from "../cli-options.ts";
import { printRecords, type Column } from "../output.ts";
import { UsageError } from "../score/types.ts";
import { SHIPPED_MIGRATIONS_DIR } from "../shipped-files.ts";

/** How long an API process may keep accepting a revoked key it did not hear about (its auth cache TTL). */
const AUTH_CACHE_TTL_S = 30;

const CLUSTER_NODES_HELP = "the API processes' Redis Cluster nodes (--redis-url then gives only the credentials)";

/** A key as `keys list` shows it (never the key itself, nor its hash). */
const KEY_COLUMNS: ReadonlyArray<Column<ApiKeyInfo>> = [
  { header: "id", value: (k) => k.id },
  { header: "prefix", value: (k) => k.prefix },
  { header: "name", value: (k) => k.name },
  { header: "created", value: (k) => k.createdAt.toISOString() },
  { header: "last used", value: (k) => k.lastUsedAt?.toISOString() },
  { header: "revoked", value: (k) => k.revokedAt?.toISOString() ?? "active" },
];

export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("manage API keys (talks to PostgreSQL directly)");
  keys
    .command("create")
    .description("create an API key for a tenant (creating the tenant if needed); the key is the last line of stdout")
    .requiredOption("--tenant <name>", "tenant name")
    .option("--name <label>", "a label for the key")
    .addOption(databaseUrlOption())
    .action(async (opts: { tenant: string; name?: string; databaseUrl: string }) => {
      // Loaded here, not at the top: Prisma takes a while to load and only these commands need it.
      const { assertPostgresReachable, Database, migrate, TenantStore } = await import("@inferline/db");
      await assertPostgresReachable(opts.databaseUrl);
      await migrate(opts.databaseUrl, SHIPPED_MIGRATIONS_DIR);
      const db = new Database(opts.databaseUrl, { poolSize: 1 });
      try {
        const created = await new TenantStore(db.pool, db.prisma).createKey(opts.tenant, opts.name);
        console.error(
          `created key ${created.keyId} for tenant ${created.tenant.name} (${created.tenant.id}); it is shown only once:`,
        );
        console.log(created.key);
      } finally {
        await db.close();
      }
    });

  keys
    .command("list")
    .description("list a tenant's keys: id, prefix, name, created, last used, and when revoked (or active)")
    .requiredOption("--tenant <name>", "tenant name")
    .addOption(databaseUrlOption())
    .addOption(jsonOption())
    .action(async (opts: { tenant: string; databaseUrl: string; json?: boolean }) => {
      await withTenantStore(opts.databaseUrl, async (tenants) => {
        const found = await tenants.listKeys(opts.tenant);
        if (!found) throw new UsageError(`no tenant named ${JSON.stringify(opts.tenant)}`);
        printRecords(found.keys, KEY_COLUMNS, opts.json);
        const revoked = found.keys.filter((k) => k.revokedAt).length;
        console.error(
          `tenant ${found.tenant.name} (${found.tenant.id}): ${found.keys.length} key(s), ${revoked} revoked`,
        );
      });
    });

  keys
    .command("revoke")
    .description("revoke a key (idempotent) and tell every API process over Redis to stop accepting it")
    .argument("<keyId>", "the key's id, as `keys create` and `keys list` print it")
    .addOption(databaseUrlOption())
    .addOption(redisUrlOption())
    .addOption(new Option("--redis-cluster-nodes <host:port,...>", CLUSTER_NODES_HELP).env("REDIS_CLUSTER_NODES"))
    .addOption(
      new Option("--queue-prefix <prefix>", "the API processes' queue prefix").env("QUEUE_PREFIX").default("inferline"),
    )
    .action(
      async (
        keyId: string,
        opts: { databaseUrl: string; redisUrl: string; redisClusterNodes?: string; queuePrefix: string },
      ) => {
        const nodes = SharedEnv.shape.REDIS_CLUSTER_NODES.safeParse(opts.redisClusterNodes);
        if (!nodes.success)
          throw new UsageError(`--redis-cluster-nodes: ${nodes.error.issues[0]?.message ?? "invalid"}`);
        await withTenantStore(opts.databaseUrl, async (tenants) => {
          const revoked = await tenants.revokeKey(keyId);
          if (!revoked) throw new UsageError(`no API key with id ${JSON.stringify(keyId)}`);
          const when = revoked.revokedAt.toISOString();
          console.log(
            revoked.alreadyRevoked
              ? `key ${keyId} of tenant ${revoked.tenant.name} was already revoked at ${when}`
              : `revoked key ${keyId} of tenant ${revoked.tenant.name} at ${when}`,
          );
          // Announced again on a repeated revoke too: that is how to retry after Redis was down.
          await announce(
            { REDIS_URL: opts.redisUrl, REDIS_CLUSTER_NODES: nodes.data },
            opts.queuePrefix,
            revoked.keyHash,
          );
        });
      },
    );
}

async function withTenantStore(databaseUrl: string, fn: (tenants: TenantStore) => Promise<void>): Promise<void> {
  const db = await import("@inferline/db");
  await db.assertPostgresReachable(databaseUrl);
  const database = new db.Database(databaseUrl, { poolSize: 1 });
  try {
    await fn(new db.TenantStore(database.pool, database.prisma));
  } finally {
    await database.close();
  }
}

async function announce(
  env: { REDIS_URL: string; REDIS_CLUSTER_NODES?: HostPort[] | undefined },
  prefix: string,
  keyHash: string,
): Promise<void> {
  const { describeRedisTarget, publishKeyRevocation, redisTarget } = await import("@inferline/queue");
  const target = redisTarget(env);
  try {
    await publishKeyRevocation(target, prefix, [keyHash]);
  } catch (err) {
    const reason = (err as { code?: string }).code ?? (err as Error).message;
    console.error(
      `inferline: warning: the key is revoked, but Redis at ${describeRedisTarget(target)} could not be told (${reason}); API processes may keep accepting it for up to ${AUTH_CACHE_TTL_S} s (their cache TTL). Run the command again once Redis is up to announce it at once.`,
    );
  }
}
