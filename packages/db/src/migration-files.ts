import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ConfigError } from "@inferline/contracts";

/** One committed migration: `<dir>/<name>/migration.sql`, in Prisma Migrate's layout. */
export interface Migration {
  name: string;
  sql: string;
  /** What `_prisma_migrations.checksum` records for it: the SHA-256 of the file, as Prisma computes it. */
  checksum: string;
  /** `-- inferline: no-transaction`: run statement by statement outside a transaction (CREATE INDEX CONCURRENTLY). */
  noTransaction: boolean;
  /** `-- inferline: replaces-checksum <sha256>`: earlier texts of this file, changed on purpose, that count as it. */
  replacesChecksums: string[];
}

const DIRECTIVE = /^--\s*inferline:\s*(.*)$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Every migration of `dir`, in name order (their names start with a timestamp). */
export function readMigrations(dir: string): Migration[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort()
    .map((name) => parseMigration(name, fs.readFileSync(path.join(dir, name, "migration.sql"), "utf8")));
}

export function parseMigration(name: string, sql: string): Migration {
  const migration: Migration = { name, sql, checksum: sha256(sql), noTransaction: false, replacesChecksums: [] };
  for (const line of leadingComments(sql)) {
    const directive = DIRECTIVE.exec(line)?.[1]?.trim();
    if (directive === undefined) continue;
    const [word, ...args] = directive.split(/\s+/);
    if (word === "no-transaction" && args.length === 0) migration.noTransaction = true;
    else if (word === "replaces-checksum" && args.length === 1 && SHA256_HEX.test(args[0]!)) {
      migration.replacesChecksums.push(args[0]!);
    } else {
      const known = `"-- inferline: no-transaction" and "-- inferline: replaces-checksum <sha256 in hex>"`;
      throw new ConfigError(`migration ${name}: unknown directive "${line.trim()}" (known: ${known})`);
    }
  }
  return migration;
}

/**
 * Whether `recorded` (a checksum in `_prisma_migrations`) is this migration's: its text as it is,
 * with other line endings (a checkout that converted them changed nothing that runs), or an
 * earlier text it names as replaced.
 */
export function checksumMatches(migration: Migration, recorded: string): boolean {
  const lf = migration.sql.replaceAll("\r\n", "\n");
  const texts = [migration.sql, lf, lf.replaceAll("\n", "\r\n")];
  return texts.some((t) => sha256(t) === recorded) || migration.replacesChecksums.includes(recorded);
}

/**
 * The statements of a migration, each as its own text, split by PostgreSQL's own parser
 * (libpg-query): comments, quoted strings and dollar-quoted bodies may hold semicolons. Loaded
 * only for no-transaction migrations, which are rare.
 */
export async function splitStatements(migration: Migration): Promise<Statement[]> {
  const { loadModule, parseSync } = await import("libpg-query");
  await loadModule();
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(migration.sql);
  } catch (err) {
    throw new ConfigError(`migration ${migration.name} does not parse: ${(err as Error).message}`, err);
  }
  // Locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(migration.sql, "utf8");
  return (parsed.stmts ?? []).map((s) => {
    const start = s.stmt_location ?? 0;
    const sql = bytes.subarray(start, s.stmt_len ? start + s.stmt_len : undefined).toString("utf8");
    const index = (s.stmt as { IndexStmt?: IndexStmt } | undefined)?.IndexStmt;
    if (!index?.idxname) return { sql };
    return { sql, createsIndex: { schema: index.relation?.schemaname, name: index.idxname } };
  });
}

/** One statement of a migration, and the index it creates if it is a CREATE INDEX. */
export interface Statement {
  sql: string;
  createsIndex?: QualifiedName;
}

/** What the parse tree of a CREATE INDEX holds that the runner reads. */
type IndexStmt = { idxname?: string; relation?: { schemaname?: string } };

/** An index name as a statement wrote it: schema-qualified or left to the search path. */
export interface QualifiedName {
  schema: string | undefined;
  name: string;
}

/** The file's opening comment lines, where directives live (blank lines between them allowed). */
function leadingComments(sql: string): string[] {
  const lines: string[] = [];
  for (const raw of sql.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "") continue;
    if (!line.startsWith("--")) break;
    lines.push(line);
  }
  return lines;
}

function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}
