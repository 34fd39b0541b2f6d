import { InvalidArgumentError, type Command } from "commander";
import type { DispatchStore, Tenant, TenantSettings, TenantStore } from "@inferline/db";
import { databaseUrlOption, jsonOption } from "../cli-options.ts";
import { printRecords, type Column } from "../output.ts";
import { UsageError } from "../score/types.ts";

/** How long an API process may go on with a tenant's old settings (its auth cache TTL). */
const AUTH_CACHE_TTL_S = 30;
/** Highest weight `tenants set` takes: enough for any share, small enough to stay meaningful. */
const MAX_WEIGHT = 1000;

/** A tenant as `tenants show` and `tenants set` print it: its settings and the work it has queued now. */
interface TenantRecord {
  name: string;
  id: string;
  weight: number;
  /** Null: no quota of its own (the API's DEFAULT_TENANT_MAX_QUEUED applies). */
  maxQueued: number | null;
  queued: number;
}

const TENANT_COLUMNS: ReadonlyArray<Column<TenantRecord>> = [
  { header: "name", value: (t) => t.name },
  { header: "id", value: (t) => t.id },
  { header: "weight", value: (t) => t.weight },
  { header: "max queued", value: (t) => t.maxQueued ?? "default" },
  { header: "queued", value: (t) => t.queued },
];

/** `--max-queued`: a count of jobs, 0 (or `none`) meaning no quota of the tenant's own (DEFAULT_TENANT_MAX_QUEUED applies). */
export function parseMaxQueued(value: string): number {
  if (value === "none") return 0;
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1) throw new InvalidArgumentError("expected a whole number of jobs (0 or `none` clears the quota)");
  return Number(value);
}

/** `--weight`: a whole number from 1 to MAX_WEIGHT. */
export function parseWeight(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_WEIGHT) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_WEIGHT}`);
  return n;
}

export function registerTenants(program: Command): void {
  const tenants = program.command("tenants").description("a tenant's fair-share weight and queue quota (talks to PostgreSQL directly)");
  tenants
    .command("set")
    .description(
      `set a tenant's weight (its share of a model's workers while several tenants have work queued) and quota (most jobs and batch items queued at once); API processes apply it within ${AUTH_CACHE_TTL_S} s`,
    )
    .argument("<name>", "tenant name")
    .option("--max-queued <n>", "most jobs and batch items queued (not started) at once; 0 or `none` clears it (the API's DEFAULT_TENANT_MAX_QUEUED applies)", parseMaxQueued)
    .option("--weight <w>", `share of the workers while several tenants wait, 1-${MAX_WEIGHT} (default 1)`, parseWeight)
    .addOption(databaseUrlOption())
    .addOption(jsonOption())
    .action(async (name: string, opts: { maxQueued?: number; weight?: number; databaseUrl: string; json?: boolean }) => {
      const settings: TenantSettings = {};
      if (opts.maxQueued !== undefined) settings.maxQueued = opts.maxQueued === 0 ? null : opts.maxQueued;
      if (opts.weight !== undefined) settings.weight = opts.weight;
      if (Object.keys(settings).length === 0) throw new UsageError("nothing to set: give --max-queued and/or --weight");
      await withStores(opts.databaseUrl, async ({ tenants, dispatches }) => {
        const tenant = await tenants.updateSettings(name, settings);
        if (!tenant) throw new UsageError(`no tenant named ${JSON.stringify(name)} (keys create --tenant ${name} creates it)`);
        printRecords(tenantRecord(tenant, await dispatches.queuedByTenant(tenant.id)), TENANT_COLUMNS, opts.json);
      });
    });

  tenants
    .command("show")
    .description("a tenant's id, weight, quota (max queued; default: the API's DEFAULT_TENANT_MAX_QUEUED) and the work it has queued now")
    .argument("<name>", "tenant name")
    .addOption(databaseUrlOption())
    .addOption(jsonOption())
    .action(async (name: string, opts: { databaseUrl: string; json?: boolean }) => {
      await withStores(opts.databaseUrl, async ({ tenants, dispatches }) => {
        const tenant = await tenants.find(name);
        if (!tenant) throw new UsageError(`no tenant named ${JSON.stringify(name)}`);
        printRecords(tenantRecord(tenant, await dispatches.queuedByTenant(tenant.id)), TENANT_COLUMNS, opts.json);
      });
    });
}

function tenantRecord(tenant: Tenant, queued: number): TenantRecord {
  return { name: tenant.name, id: tenant.id, weight: tenant.weight, maxQueued: tenant.maxQueued, queued };
}

interface Stores {
  tenants: Pick<TenantStore, "find" | "updateSettings">;
  dispatches: Pick<DispatchStore, "queuedByTenant">;
}

async function withStores(databaseUrl: string, fn: (stores: Stores) => Promise<void>): Promise<void> {
  // Loaded here, not at the top: Prisma takes a while to load and only these commands need it.
  const db = await import("@inferline/db");
  await db.assertPostgresReachable(databaseUrl);
  const database = new db.Database(databaseUrl, { poolSize: 1 });
  try {
    await fn({ tenants: new db.TenantStore(database.pool, database.prisma), dispatches: new db.DispatchStore(database.pool) });
  } finally {
    await database.close();
  }
}
