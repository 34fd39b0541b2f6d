import pg from "pg";
import { describe, expect, it } from "vitest";
import { migrate } from "@inferline/db";
import { sleepUntil } from "@inferline/testing";
import { indexState, useScratchMigrations } from "./support/scratch-migrations.ts";

// Migrators run at once (an init container in every new pod) and take turns under one advisory
// lock. CREATE INDEX CONCURRENTLY waits for every older snapshot of the database, so a second
// migrator must not wait for the lock inside a statement (which holds a snapshot): the two would
// wait on each other until PostgreSQL's deadlock check killed one of them.
describe("migrate: two migrators at once", () => {
  const scratch = useScratchMigrations();

  it("the second waits while the first builds an index concurrently; both finish, the migration applied once", async () => {
    scratch.write("20270101000000_bolts", "create table bolts (id int primary key, size int);\n");
    expect(await migrate(scratch.url, scratch.dir)).toEqual(["20270101000000_bolts"]);
    const index = `CREATE INDEX CONCURRENTLY IF NOT EXISTS "bolts_size_idx" ON bolts (size);`;
    scratch.write("20270102000000_bolts_size", `-- inferline: no-transaction\n${index}\n`);

    // A writer's open transaction holds the concurrent build in its first wait, while the lock is taken.
    const writer = new pg.Client({ connectionString: scratch.url });
    await writer.connect();
    try {
      await writer.query("begin");
      await writer.query("insert into bolts values (1, 8)");
      const pool = scratch.pool();
      const sessions = async (pattern: string) => {
        const found = await pool.query<{ pid: number }>(
          `select pid from pg_stat_activity
            where datname = current_database() and query ilike $1`,
          [pattern],
        );
        return found.rows;
      };

      const first = migrate(scratch.url, scratch.dir);
      const [builder] = await sleepUntil(async () => {
        const found = await sessions("CREATE INDEX CONCURRENTLY%");
        return found.length > 0 ? found : undefined;
      });
      const second = migrate(scratch.url, scratch.dir);
      const triedLock = async () => (await sessions("%advisory_lock(%")).some((s) => s.pid !== builder!.pid);
      await sleepUntil(triedLock, { message: "the second migrator never tried the lock" });

      await writer.query("commit");
      expect(await first).toEqual(["20270102000000_bolts_size"]);
      expect(await second).toEqual([]);
      expect(await indexState(pool, "bolts_size_idx")).toBe("valid");
    } finally {
      await writer.end();
    }
  });
});
