import type { Command } from "commander";
import { InferlineClient } from "@inferline/client";
import { DEFAULT_MODELS_DIR, ModelRepository } from "@inferline/contracts";
import { registerModelSubcommands } from "./models.ts";

interface RemoteOptions {
  remote?: string;
  apiKey?: string;
}

/** A client of the cluster at --remote; errors print as one line (`401 unauthorized: …`). */
function clientOf(opts: RemoteOptions): InferlineClient {
  if (!opts.apiKey) throw new Error("--remote needs --api-key (or INFERLINE_API_KEY)");
  return new InferlineClient({ baseUrl: opts.remote!, apiKey: opts.apiKey });
}

export function registerRemote(program: Command): void {
  const models = program
    .command("models")
    .description("list the models (of the local repository, or of a cluster with --remote); `models add`, `models check`")
    .option("--remote <url>", "API base URL", process.env.INFERLINE_URL)
    .option("--api-key <key>", "API key", process.env.INFERLINE_API_KEY)
    .action(async (opts: RemoteOptions) => {
      if (opts.remote) return void console.log(JSON.stringify({ models: await clientOf(opts).models.list() }, null, 2));
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
    .option("--wait <seconds>", "long-poll until the job is done, for at most this long (then print it as it is)", "0")
    .action(async (id: string, opts: RemoteOptions & { wait: string }) => {
      const seconds = Number(opts.wait);
      if (!(seconds >= 0)) throw new Error(`--wait must be a number of seconds, not ${JSON.stringify(opts.wait)}`);
      const jobs = clientOf(opts).jobs;
      console.log(JSON.stringify(seconds > 0 ? await jobs.wait(id, { timeoutSeconds: seconds }) : await jobs.get(id), null, 2));
    });
}
