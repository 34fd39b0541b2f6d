import type { Command } from "commander";
import { DEFAULT_MODELS_DIR, ModelRepository } from "@inferline/contracts";
import { registerModelSubcommands } from "./models.ts";

interface RemoteOptions {
  remote?: string;
  apiKey?: string;
}

async function getJson(url: string, apiKey: string | undefined): Promise<unknown> {
  const res = await fetch(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
  const body = await res.text();
  if (!res.ok) throw new Error(`${res.status} from ${url}: ${body}`);
  return JSON.parse(body);
}

export function registerRemote(program: Command): void {
  const models = program
    .command("models")
    .description("list the models (of the local repository, or of a cluster with --remote); `models add`, `models check`")
    .option("--remote <url>", "API base URL", process.env.INFERLINE_URL)
    .option("--api-key <key>", "API key", process.env.INFERLINE_API_KEY)
    .action(async (opts: RemoteOptions) => {
      if (opts.remote) return void console.log(JSON.stringify(await getJson(`${opts.remote}/v1/models`, opts.apiKey), null, 2));
      const repo = ModelRepository.load(process.env.MODELS_DIR ?? DEFAULT_MODELS_DIR);
      for (const name of repo.names()) {
        const m = repo.manifest(name);
        console.log(`${name}\tversions ${m.versions.map((v) => v.version).join(",")}\tinputs ${m.inputs.map((i) => `${i.name}:${i.datatype}[${i.shape.join(",")}]`).join(" ")}`);
      }
    });
  registerModelSubcommands(models);
  const jobs = program.command("jobs").description("read jobs from a cluster");
  jobs
    .command("get <id>")
    .option("--remote <url>", "API base URL", process.env.INFERLINE_URL ?? "http://127.0.0.1:3000")
    .option("--api-key <key>", "API key", process.env.INFERLINE_API_KEY)
    .option("--wait <seconds>", "long-poll until the job is done", "0")
    .action(async (id: string, opts: RemoteOptions & { wait: string }) => {
      console.log(JSON.stringify(await getJson(`${opts.remote}/v1/jobs/${encodeURIComponent(id)}?wait=${Number(opts.wait)}`, opts.apiKey), null, 2));
    });
}
