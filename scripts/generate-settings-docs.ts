// Writes the settings tables of docs/configuration.md (between its `<!-- settings:NAME -->` markers)
// and .env.example from the env schemas: each setting's default is its schema's `.default()`, its
// description the `setting()` attached to it (packages/contracts/src/env.ts, apps/api/src/env.ts,
// apps/worker/src/env.ts). scripts/generate-settings-docs.test.ts fails when the committed files
// are not what this writes.
//
// Usage: pnpm generate:settings-docs
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { ApiEnv } from "@inferline/api";
import { MigrationEnv, settingDefault, settingDoc, SharedEnv } from "@inferline/contracts";
import { WorkerEnv } from "@inferline/worker";

export const CONFIGURATION_FILE = fileURLToPath(new URL("../docs/configuration.md", import.meta.url));
export const ENV_EXAMPLE_FILE = fileURLToPath(new URL("../.env.example", import.meta.url));

type Shape = Record<string, Parameters<typeof settingDoc>[0]>;

/** One documented setting: its description, and its default as each process reads it. */
interface Row {
  name: string;
  description: string;
  /** Markdown of the default column. */
  defaultMarkdown: string;
  /** The value of .env.example's line, and whether the line is commented out (no fixed default, or one that differs between processes). */
  envValue: string;
  commented: boolean;
}

const show = (value: unknown) => (Array.isArray(value) ? value.join(",") : String(value));

/** `each` lists the processes reading the setting, with the schema each parses it with. */
function row(name: string, each: [process: string, schema: Shape[string]][]): Row {
  const doc = settingDoc(each[0]![1]);
  if (!doc) throw new Error(`${name} has no description: wrap its schema in setting(schema, { description })`);
  const defaults = each.map(([process, schema]) => [process, settingDefault(schema)] as const);
  const distinct = new Set(defaults.map(([, value]) => show(value)));
  if (doc.defaultText !== undefined)
    return {
      name,
      description: doc.description,
      defaultMarkdown: doc.defaultText,
      envValue: doc.example ?? "",
      commented: true,
    };
  if (defaults.some(([, value]) => value === undefined))
    return {
      name,
      description: doc.description,
      defaultMarkdown: "unset",
      envValue: doc.example ?? "",
      commented: true,
    };
  if (distinct.size > 1) {
    const text = defaults.map(([process, value]) => `${process} \`${show(value)}\``).join(", ");
    return {
      name,
      description: doc.description,
      defaultMarkdown: text,
      envValue: show(defaults[0]![1]),
      commented: true,
    };
  }
  const value = show(defaults[0]![1]);
  return { name, description: doc.description, defaultMarkdown: `\`${value}\``, envValue: value, commented: false };
}

/** The settings of each section: shared (and those both apps read with defaults of their own), the API's, the worker's. */
export function settingSections(): Record<"shared" | "api" | "worker", Row[]> {
  const api = ApiEnv.shape as Shape;
  const worker = WorkerEnv.shape as Shape;
  const sharedNames = new Set(Object.keys(SharedEnv.shape));
  const both = Object.keys(api).filter((name) => !sharedNames.has(name) && name in worker);
  const own = (shape: Shape) => Object.keys(shape).filter((name) => !sharedNames.has(name) && !both.includes(name));
  return {
    shared: [
      ...[...sharedNames].map((name) => row(name, [["API", api[name]!]])),
      ...Object.entries(MigrationEnv.shape as Shape).map(([name, schema]) => row(name, [["migrations", schema]])),
      ...both.map((name) =>
        row(name, [
          ["API", api[name]!],
          ["worker", worker[name]!],
        ]),
      ),
    ],
    api: own(api).map((name) => row(name, [["API", api[name]!]])),
    worker: own(worker).map((name) => row(name, [["worker", worker[name]!]])),
  };
}

const table = (rows: Row[]) =>
  [
    "| variable | default | meaning |",
    "|---|---|---|",
    ...rows.map((r) => `| \`${r.name}\` | ${r.defaultMarkdown} | ${r.description} |`),
  ].join("\n");

/** docs/configuration.md with each `<!-- settings:NAME -->` … `<!-- /settings:NAME -->` block replaced by its generated table. */
export function configurationDocs(current: string): string {
  const sections = settingSections();
  let text = current;
  for (const [name, rows] of Object.entries(sections)) {
    const block = new RegExp(`(<!-- settings:${name} -->\\n)[\\s\\S]*?(\\n<!-- /settings:${name} -->)`);
    if (!block.test(text)) throw new Error(`docs/configuration.md has no <!-- settings:${name} --> block`);
    text = text.replace(block, (_m, open: string, close: string) => `${open}${table(rows)}${close}`);
  }
  return text;
}

/** Markdown to a plain comment: links keep their text, code loses its backticks. */
const plain = (markdown: string) => markdown.replace(/\[([^\]]+)\]\([^)]+\)/g, "$1").replace(/`/g, "");

/** Words of `text` as `# ` lines of at most 100 characters. */
function comment(text: string): string[] {
  const lines: string[] = [];
  let line = "#";
  for (const word of text.split(/\s+/)) {
    if (line.length + 1 + word.length > 100 && line !== "#") {
      lines.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

function envLines(r: Row): string[] {
  const sentence = r.description.charAt(0).toUpperCase() + r.description.slice(1);
  const text = r.commented ? `${sentence}. Default: ${plain(r.defaultMarkdown)}.` : `${sentence}.`;
  return [...comment(plain(text)), r.commented ? `# ${r.name}=${r.envValue}` : `${r.name}=${r.envValue}`];
}

const ENV_HEADER = `# Every variable Inferline reads, with its default. Copy to .env for your shell, or set them in
# your process manager; each app parses its environment once at start-up and names a bad value.
# The API, the worker and \`pnpm start\` also read a .env file in their working directory (the
# project's root; /app in the images) when there is one; the environment wins over the file.
# Generated by scripts/generate-settings-docs.ts from the env schemas (pnpm generate:settings-docs).`;

// Variables the apps' env schemas do not parse: the CLI's options, OpenTelemetry's own, compose's, the tests'.
const ENV_TAIL = `# --- CLI (apps/cli) and SDK (@inferline/client) ----------------------------------------------------
# \`inferline score\` (local mode) also reads INFERENCE_TIMEOUT_MS and INFERENCE_ADAPTER_MODULES, as the worker does.
# The cluster and key of the CLI's --remote and --api-key (score, models, jobs, batches), and of an
# InferlineClient given no baseUrl or apiKey. MODELS_DIR, DATABASE_URL, REDIS_URL, REDIS_CLUSTER_NODES
# and QUEUE_PREFIX are the defaults of the CLI's options of the same meaning.
# INFERLINE_URL=http://127.0.0.1:3000
# INFERLINE_API_KEY=

# --- tracing (OpenTelemetry over OTLP/HTTP; off unless an endpoint is set) --------------------------
# The exporter reads the other standard OTEL_EXPORTER_OTLP_* variables itself. Service name default:
# inferline-api / inferline-worker.
# OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318
# OTEL_SERVICE_NAME=inferline-api
# OTEL_BSP_SCHEDULE_DELAY=5000
# OTEL_SDK_DISABLED=false

# --- docker compose (docker-compose.yml; read by compose, not by the apps) --------------------------
# Required, no default: letters and digits only (they go into the URLs), e.g. \`openssl rand -hex 16\`.
# POSTGRES_PASSWORD=
# REDIS_PASSWORD=
# Host ports PostgreSQL and Redis are published on, on 127.0.0.1 only.
# POSTGRES_HOST_PORT=5432
# REDIS_HOST_PORT=6379
# Tag of the images compose builds and runs (inferline-api, inferline-worker).
# INFERLINE_TAG=local
# A folder of this host mounted as the model repository instead of the \`models\` volume.
# INFERLINE_MODELS=./models

# --- tests ---------------------------------------------------------------------------------------
# TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
# TEST_REDIS_URL=redis://127.0.0.1:6379
`;

const banner = (title: string) => `# --- ${title} ${"-".repeat(Math.max(3, 96 - title.length))}`;

/** .env.example: every setting of the schemas with its default (commented out when it has no fixed one), then the variables other tools read. */
export function envExample(): string {
  const sections = settingSections();
  const block = (title: string, rows: Row[]) => [banner(title), ...rows.flatMap(envLines)].join("\n");
  return [
    ENV_HEADER,
    block("shared by the API, the worker and the CLI", sections.shared),
    block("API (apps/api)", sections.api),
    block("worker (apps/worker)", sections.worker),
    ENV_TAIL,
  ].join("\n\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(CONFIGURATION_FILE, configurationDocs(fs.readFileSync(CONFIGURATION_FILE, "utf8")));
  fs.writeFileSync(ENV_EXAMPLE_FILE, envExample());
  console.log(`wrote ${CONFIGURATION_FILE} and ${ENV_EXAMPLE_FILE}`);
}
