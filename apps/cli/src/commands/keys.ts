import type { Command } from "commander";
import { DEFAULT_DATABASE_URL } from "@inferline/contracts";

export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("manage API keys (talks to PostgreSQL directly)");
  keys
    .command("create")
    .description("create an API key for a tenant (creating the tenant if needed); the key is the last line of stdout")
    .requiredOption("--tenant <name>", "tenant name")
    .option("--name <label>", "a label for the key")
    .option("--database-url <url>", "PostgreSQL URL", process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL)
    .action(async (opts: { tenant: string; name?: string; databaseUrl: string }) => {
      // Loaded here, not at the top: Prisma takes a while to load and only this command needs it.
      const { assertPostgresReachable, Database, migrate, TenantStore } = await import("@inferline/db");
      await assertPostgresReachable(opts.databaseUrl);
      await migrate(opts.databaseUrl);
      const db = new Database(opts.databaseUrl, { poolSize: 1 });
      try {
        const created = await new TenantStore(db.prisma).createKey(opts.tenant, opts.name);
        console.error(`created key ${created.keyId} for tenant ${created.tenant.name} (${created.tenant.id}); it is shown only once:`);
        console.log(created.key);
      } finally {
        await db.close();
      }
    });
}
