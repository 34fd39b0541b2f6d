import type { Transport } from "./transport.ts";
import type { ModelView, QueueStatus, RequestOptions } from "./types.ts";

const modelPath = (name: string) => `/v1/models/${encodeURIComponent(name)}`;

/** `client.models`: the model repository's contracts, and a model's queue. */
export class Models {
  constructor(private readonly transport: Transport) {}

  async list(options: RequestOptions = {}): Promise<ModelView[]> {
    return (await this.transport.json<{ models: ModelView[] }>({ method: "GET", path: "/v1/models", options })).models;
  }

  /** The model, or NotFoundError when the cluster does not serve it. */
  get(name: string, options: RequestOptions = {}): Promise<ModelView> {
    return this.transport.json<ModelView>({ method: "GET", path: modelPath(name), options });
  }

  /** Your queued and running work on the model, its queue's depth and the age of its oldest queued entry. */
  queue(name: string, options: RequestOptions = {}): Promise<QueueStatus> {
    return this.transport.json<QueueStatus>({ method: "GET", path: `${modelPath(name)}/queue`, options });
  }
}
