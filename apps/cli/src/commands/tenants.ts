import { InvalidArgumentError, type Command } from "commander";
import type { DispatchStore, Tenant, TenantCap, TenantCapStore, TenantSettings, TenantStore } from "@inferline/db";
import { databaseUrlOption, jsonOption } from "../cli-options.ts";
import { printRecords, type Column } from "../output.ts";
import { UsageError } from "../score/types.ts";

/** How long an API process may go on with a tenant's old settings (its auth cache TTL). */
const AUTH_CACHE_TTL_S = 30;
/** Highest weight `tenants set` takes: enough for any share, small enough to stay meaningful. */
const MAX_WEIGHT = 1000;
/** How old the caps workers enforce may be (their TENANT_CAP_CACHE_MS default). */
const CAP_CACHE_S = 5;
/** How `tenant_caps` names a cap over every model (see ALL_MODELS in @inferline/db). */
const ALL_MODELS = "*";

/** A tenant as `tenants show` and `tenants set` print it: its settings and the work it has queued now. */
interface TenantRecord {
  name: string;
  id: string;
  weight: number;
  /** Null: no quota of its own (the API's DEFAULT_TENANT_MAX_QUEUED applies). */
  maxQueued: number | null;
  /** Concurrency caps: most jobs and batch items running at once, by model; `*`: over every model. Empty: none. */
  maxRunning: Record<string, number>;
  queued: number;
}

const TENANT_COLUMNS: ReadonlyArray<Column<TenantRecord>> = [
  { header: "name", value: (t) => t.name },
  { header: "id", value: (t) => t.id },
  { header: "weight", value: (t) => t.weight },
  { header: "max queued", value: (t) => t.maxQueued ?? "default" },
  { header: "max running", value: (t) => formatCaps(t.maxRunning) },
  { header: "queued", value: (t) => t.queued },
];

/** `--max-queued`: a count of jobs, 0 (or `none`) meaning no quota of the tenant's own (DEFAULT_TENANT_MAX_QUEUED applies). */
export function parseMaxQueued(value: string): number {
  if (value === "none") return 0;
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1)
    throw new InvalidArgumentError("expected a whole number of jobs (0 or `none` clears the quota)");
  return Number(value);
}

/** `--max-running`: a count of jobs and batch items, 0 (or `none`) clearing the cap. */
export function parseMaxRunning(value: string): number {
  if (value === "none") return 0;
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1)
    throw new InvalidArgumentError("expected a whole number of jobs (0 or `none` clears the cap)");
  return Number(value);
}

/** `--model`: a model's name (a cap on that model alone). */
export function parseCapModel(value: string): string {
  if (value === "" || value === ALL_MODELS || /\s/.test(value))
    throw new InvalidArgumentError("expected a model's name");
  return value;
}

/** Caps as a table cell: `4 all models, iris 1`, or `none`. */
function formatCaps(caps: Record<string, number>): string {
  const parts = Object.entries(caps).map(([model, n]) => (model === ALL_MODELS ? `${n} all models` : `${model} ${n}`));
  return parts.length > 0 ? parts.join(", ") : "none";
}

/** `--weight`: a whole number from 1 to MAX_WEIGHT. */
export function parseWeight(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_WEIGHT)
    throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_WEIGHT}`);
  return n;
}

export function registerTenants(program: Command): void {
  const tenants = program
    .command("tenants")
    .description("a tenant's fair-share weight, queue quota and concurrency caps (talks to PostgreSQL directly)");
  tenants
    .command("set")
    .description(
      `set a tenant's weight (its share of a model's workers while several tenants have work queued), quota (most jobs and batch items queued at once; API processes apply both within ${AUTH_CACHE_TTL_S} s) and concurrency caps (most running at once; workers apply them within ${CAP_CACHE_S} s)`,
    )
    .argument("<name>", "tenant name")
    .option(
      "--max-queued <n>",
      "most jobs and batch items queued (not started) at once; 0 or `none` clears it (the API's DEFAULT_TENANT_MAX_QUEUED applies)",
      parseMaxQueued,
    )
    .option("--weight <w>", `share of the workers while several tenants wait, 1-${MAX_WEIGHT} (default 1)`, parseWeight)
    .option(
      "--max-running <n>",
      `most jobs and batch items running at once over every model, or on --model's; 0 or \`none\` clears it; workers apply it within ${CAP_CACHE_S} s`,
      parseMaxRunning,
    )
    .option(
      "--model <name>",
      "with --max-running: cap this model alone (the cap over every model still applies too)",
      parseCapModel,
    )
    .addOption(databaseUrlOption())
    .addOption(jsonOption())
    .action(
      async (
        name: string,
        opts: {
          maxQueued?: number;
          weight?: number;
          maxRunning?: number;
          model?: string;
          databaseUrl: string;
          json?: boolean;
        },
      ) => {
        const settings: TenantSettings = {};
        if (opts.maxQueued !== undefined) settings.maxQueued = opts.maxQueued === 0 ? null : opts.maxQueued;
        if (opts.weight !== undefined) settings.weight = opts.weight;
        if (opts.model !== undefined && opts.maxRunning === undefined)
          throw new UsageError("--model goes with --max-running");
        if (Object.keys(settings).length === 0 && opts.maxRunning === undefined)
          throw new UsageError("nothing to set: give --max-queued, --weight and/or --max-running");
        await withStores(opts.databaseUrl, async ({ tenants, caps, dispatches }) => {
          const found =
            Object.keys(settings).length > 0 ? await tenants.updateSettings(name, settings) : await tenants.find(name);
          if (!found)
            throw new UsageError(`no tenant named ${JSON.stringify(name)} (keys create --tenant ${name} creates it)`);
          if (opts.maxRunning !== undefined)
            await caps.set(name, opts.model ?? ALL_MODELS, opts.maxRunning === 0 ? null : opts.maxRunning);
          printRecords(
            tenantRecord(found, await caps.ofTenant(found.id), await dispatches.queuedByTenant(found.id)),
            TENANT_COLUMNS,
            opts.json,
          );
        });
      },
    );

  tenants
    .command("show")
    .description(
      "a tenant's id, weight, quota (max queued; default: the API's DEFAULT_TENANT_MAX_QUEUED), concurrency caps (max running) and the work it has queued now",
    )
    .argument("<name>", "tenant name")
    .addOption(databaseUrlOption())
    .addOption(jsonOption())
    .action(async (name: string, opts: { databaseUrl: string; json?: boolean }) => {
      await withStores(opts.databaseUrl, async ({ tenants, caps, dispatches }) => {
        const tenant = await tenants.find(name);
        if (!tenant) throw new UsageError(`no tenant named ${JSON.stringify(name)}`);
        printRecords(
          tenantRecord(tenant, await caps.ofTenant(tenant.id), await dispatches.queuedByTenant(tenant.id)),
          TENANT_COLUMNS,
          opts.json,
        );
      });
    });
}

function tenantRecord(tenant: Tenant, caps: TenantCap[], queued: number): TenantRecord {
  return {
    name: tenant.name,
    id: tenant.id,
    weight: tenant.weight,
    maxQueued: tenant.maxQueued,
    maxRunning: Object.fromEntries(caps.map((c) => [c.model, c.maxRunning])),
    queued,
  };
}

interface Stores {
  tenants: Pick<TenantStore, "find" | "updateSettings">;
  caps: Pick<TenantCapStore, "set" | "ofTenant">;
  dispatches: Pick<DispatchStore, "queuedByTenant">;
}

async function withStores(databaseUrl: string, fn: (stores: Stores) => Promise<void>): Promise<void> {
  // Loaded here, not at the top: Prisma takes a while to load and only these commands need it.
  const db = await import("@inferline/db");
  await db.assertPostgresReachable(databaseUrl);
  const database = new db.Database(databaseUrl, { poolSize: 1 });
  try {
    await fn({
      tenants: new db.TenantStore(database.pool, database.prisma),
      caps: new db.TenantCapStore(database.pool),
      dispatches: new db.DispatchStore(database.pool),
    });
  } finally {
    await database.close();
  }
}
