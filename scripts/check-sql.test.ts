import { describe, expect, it } from "vitest";
import { findSql, looksLikeSql } from "./check-sql.ts";

const lines = (source: string) => findSql("x.ts", source).map((f) => `${f.line} ${f.kind}`);

describe("findSql", () => {
  it("reports calls that run SQL once, with the SQL they carry", () => {
    const source = [
      `await db.pool.query("select 1");`,
      'await client.query<{ n: number }>(`select count(*)::int as n from jobs where "tenantId" = $1`, [id]);',
      "await prisma.$queryRaw`select id from jobs`;",
      "await prisma.$executeRawUnsafe(statement);",
      "const fragment = Prisma.sql`id = ${id}`;",
    ].join("\n");
    expect(lines(source)).toEqual(["1 call", "2 call", "3 call", "4 call", "5 call"]);
  });

  it("reports SQL text handed to a helper, a constant or a template with substitutions", () => {
    const source = [
      'await this.deleteAll(`delete from batches where id in (select id from batches where "createdAt" < $1 limit $2)`, cutoff);',
      "const FIND = \"SELECT id FROM jobs WHERE status = 'queued'\";",
      "const byIds = `select ${COLUMNS} from jobs where id = any($1::uuid[])`;",
      'const scope = ` and "tenantId" = $2`;',
      "const tx = 'set transaction isolation level repeatable read read only';",
    ].join("\n");
    expect(lines(source)).toEqual(["1 literal", "2 literal", "3 literal", "4 literal", "5 literal"]);
  });

  it("ignores SQL in comments, imports and prose", () => {
    const source = [
      "// one `update jobs set status = $1 where id = $2` per job",
      'import { select } from "./select from where.ts";',
      'throw new UsageError("Select a model from the list, then delete from the queue what you do not need");',
      'log.info("returning the job to its queue; order by priority");',
      "const url = `${base}/v1/jobs?status=queued&limit=${limit}`;",
      'req.query("limit");',
    ].join("\n");
    expect(lines(source)).toEqual(["6 call"]);
  });
});

describe("looksLikeSql", () => {
  it.each([
    "select 1",
    "begin",
    "commit",
    "vacuum analyze jobs",
    "drop trigger flaky on jobs",
    "create sequence fault_seq",
    "select pg_backend_pid() as pid",
    "insert into t (a) values ($1)",
  ])("%s is SQL", (text) => expect(looksLikeSql(text)).toBe(true));

  it.each([
    "select a file",
    "Update the manifest first",
    "delete from the queue",
    "inserting into the queue",
    "where the job is",
  ])("%s is prose", (text) => expect(looksLikeSql(text)).toBe(false));
});
