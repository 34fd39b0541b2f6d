// Fails (exit 1) when code outside packages/db speaks SQL: only @inferline/db may hold statements
// (the other packages get narrow typed views from it). It parses every source file with the
// TypeScript compiler and reports two things, wherever they appear:
//   - calls that run SQL: `x.query(…)`, `$queryRaw`/`$executeRaw` (and their Unsafe forms), `Prisma.sql`;
//   - string and template literals that read as SQL: they open with a phrase only SQL opens with
//     (`with x as (`, `create table`, `set transaction`, `begin`), or with one prose may open with
//     too (`select`, `delete from`) plus a SQL signal, or hold two distinct signals (`where … = $1`,
//     a `::uuid` cast, `on conflict`, `returning id`).
// Comments are not code, so SQL quoted in a comment is not reported.
// Tests and test support (`test/` folders, packages/testing, the end-to-end suite in e2e/) and benchmarks (bench/, whose naive
// baseline is hand-written SQL on purpose) may use SQL to set up and inspect state; they are skipped.
//
// Usage: tsx scripts/check-sql.ts [root]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export interface SqlFinding {
  file: string;
  line: number;
  kind: "call" | "literal";
  text: string;
}

/** Folders scanned, relative to the root; everything under them is checked unless skipped below (e2e/ is all tests). */
const SCANNED = ["apps", "packages", "scripts", "models"];
/**
 * Skipped: dependencies, built bundles (which hold the db package), the db package, tests and
 * their support, and this checker (its patterns read as SQL).
 */
const SKIPPED = [
  /(^|\/)node_modules\//,
  /(^|\/)dist\//,
  /^packages\/db\//,
  /^packages\/testing\//,
  /(^|\/)test\//,
  /\.test\.[cm]?[jt]s$/,
  /(^|\/)generated\//,
  /^scripts\/check-sql\.ts$/,
];
const SOURCE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;

/** Member names whose calls (or tagged templates) run SQL. */
const SQL_MEMBERS = new Set(["query", "$queryRaw", "$executeRaw", "$queryRawUnsafe", "$executeRawUnsafe"]);

const IDENT = String.raw`[\w".]+`;
const re = (source: string) => new RegExp(source, "i");

/** Phrases that open a statement and read as nothing but SQL: one at a literal's start is enough. */
const SURE_STARTS = [
  String.raw`with\s+(recursive\s+)?${IDENT}\s+as\s*\(`,
  String.raw`(create|alter|drop)\s+(or\s+replace\s+)?(unique\s+)?(table|index|database|schema|extension|function|trigger|view|sequence|type)\s`,
  String.raw`truncate\s+(table\s+)?${IDENT}`,
  String.raw`set\s+(transaction|local|session)\s`,
  String.raw`lock\s+table\s`,
  String.raw`vacuum\b`,
  String.raw`(begin|commit|rollback)\s*(;|$)`,
  String.raw`select\s+(\d+|\w+\(\)(\s+as\s+\w+)?)\s*;?\s*$`,
];
/** Statement openers that prose could start with too ("Select a model…"): SQL with one signal more. */
const LIKELY_STARTS = [
  String.raw`select\s`,
  String.raw`insert\s+into\s`,
  String.raw`update\s+${IDENT}\s`,
  String.raw`delete\s+from\s`,
];
const START = (alternatives: string[]) => re(String.raw`^\s*\(?\s*(${alternatives.join("|")})`);
const SURE_START = START(SURE_STARTS);
const LIKELY_START = START(LIKELY_STARTS);

/** Signals of SQL anywhere in a literal; two different ones make it SQL. */
const SQL_SIGNALS: RegExp[] = [
  re(
    String.raw`\bfrom\s+${IDENT}(\s+\w+)?\s+(where|join|inner|left|order|group|limit|on)\b|\bfrom\s+${IDENT}\s*(;|\)|$)`,
  ),
  re(String.raw`\binsert\s+into\s+${IDENT}\s*(\(|select\b|values\b)`),
  re(String.raw`\bupdate\s+${IDENT}(\s+\w+)?\s+set\s+${IDENT}\s*=`),
  re(String.raw`\bdelete\s+from\s+${IDENT}\s*(;|$)|\bdelete\s+from\s+${IDENT}(\s+\w+)?\s+(where|using|returning)\b`),
  re(String.raw`\bwhere\s+${IDENT}\s*(=|<>|!=|<=|>=|<|>|~|\s(in|is|like|not)\b)`),
  re(String.raw`\b(and|or)\s+${IDENT}\s*(=|<>|<=|>=|<|>)\s*(\$\d|'|\d|now\(\))`),
  /\$\d+\b/,
  re(String.raw`::(uuid|text|int|integer|bigint|jsonb?|timestamptz|timestamp|double precision|boolean|numeric)\b`),
  re(String.raw`\bon\s+conflict\b`),
  re(String.raw`\breturning\s+(\*|${IDENT}\s*(,|;|$))`),
  re(String.raw`\b(skip\s+locked|for\s+update)\b`),
  re(String.raw`\b(unnest|coalesce|greatest|make_interval|pg_\w+)\s*\(|\bcount\(\*\)|\bnow\(\)`),
  re(String.raw`\b(order|group)\s+by\s+${IDENT}`),
  re(String.raw`\bjoin\s+${IDENT}(\s+\w+)?\s+on\b`),
];

/** True when a literal's text reads as a SQL statement or fragment. */
export function looksLikeSql(text: string): boolean {
  if (SURE_START.test(text)) return true;
  const signals = SQL_SIGNALS.filter((signal) => signal.test(text)).length;
  return signals >= 2 || (signals >= 1 && LIKELY_START.test(text));
}

/** The name of the member a call or tagged template goes through (`db.query` → "query"). */
function memberName(callee: ts.Expression): string | undefined {
  if (ts.isPropertyAccessExpression(callee)) return callee.name.text;
  if (ts.isElementAccessExpression(callee) && ts.isStringLiteral(callee.argumentExpression))
    return callee.argumentExpression.text;
  return undefined;
}

function isSqlCall(node: ts.Node): boolean {
  if (ts.isCallExpression(node) || ts.isTaggedTemplateExpression(node)) {
    const callee = ts.isCallExpression(node) ? node.expression : node.tag;
    const name = memberName(callee);
    if (name !== undefined && SQL_MEMBERS.has(name)) return true;
    return ts.isTaggedTemplateExpression(node) && callee.getText() === "Prisma.sql";
  }
  return false;
}

/** A template's text with each `${…}` replaced by a neutral word, so its static parts read on. */
function literalText(node: ts.Node): string | undefined {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node))
    return node.head.text + node.templateSpans.map((span) => ` x ${span.literal.text}`).join("");
  return undefined;
}

/** Every SQL call and SQL-looking literal in one source text. */
export function findSql(file: string, source: string): SqlFinding[] {
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const findings: SqlFinding[] = [];
  const report = (node: ts.Node, kind: SqlFinding["kind"], text: string) => {
    const line = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1;
    findings.push({ file, line, kind, text: text.replace(/\s+/g, " ").trim().slice(0, 100) });
  };
  // Inside a reported call, its SQL text is the same finding: not reported again.
  const visit = (node: ts.Node, inSqlCall: boolean): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) return;
    const sqlCall = !inSqlCall && isSqlCall(node);
    if (sqlCall) report(node, "call", node.getText(sourceFile));
    const text = literalText(node);
    if (!inSqlCall && text !== undefined && looksLikeSql(text)) report(node, "literal", text);
    ts.forEachChild(node, (child) => visit(child, inSqlCall || sqlCall));
  };
  visit(sourceFile, false);
  return findings;
}

/** Source files under the scanned folders, as paths relative to root with forward slashes. */
function sourceFiles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = dir ? `${dir}/${entry.name}` : entry.name;
      if (SKIPPED.some((pattern) => pattern.test(relative + (entry.isDirectory() ? "/" : "")))) continue;
      if (entry.isDirectory()) walk(relative);
      else if (SOURCE_FILE.test(entry.name)) files.push(relative);
    }
  };
  for (const dir of SCANNED) if (fs.existsSync(path.join(root, dir))) walk(dir);
  return files.sort();
}

function main(root: string): number {
  const findings = sourceFiles(root).flatMap((file) => findSql(file, fs.readFileSync(path.join(root, file), "utf8")));
  for (const f of findings)
    console.log(`${f.file}:${f.line}  ${f.kind === "call" ? "SQL call" : "SQL text"}  ${f.text}`);
  if (findings.length === 0) {
    console.log("check-sql: no SQL outside packages/db");
    return 0;
  }
  console.log(
    `\ncheck-sql: ${findings.length} place(s) speak SQL outside packages/db; move the statements into a store of @inferline/db.`,
  );
  return 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(
    path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..")),
  );
}
