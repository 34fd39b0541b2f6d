import type { Transport } from "./transport.ts";
import type { ModelView } from "./types.ts";

/** `client.models`: the model repository's contracts. */
export class Models {
  constructor(private readonly transport: Transport) {}

  async list(): Promise<ModelView[]> {
    return (await this.transport.json<{ models: ModelView[] }>({ method: "GET", path: "/v1/models" })).models;
  }

  /** The model, or a 404 `InferlineError` when the cluster does not serve it. */
  get(name: string): Promise<ModelView> {
    return this.transport.json<ModelView>({ method: "GET", path: `/v1/models/${encodeURIComponent(name)}` });
  }
}
