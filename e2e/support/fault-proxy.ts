import http from "node:http";
import type { AddressInfo } from "node:net";

/** A request as the proxy saw it, and how many requests of that method and path it has had (1 for the first). */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  n: number;
}

/**
 * What the proxy does with a request: pass it on; pass it on and, once the API has answered it in
 * full, drop the client's connection without a byte of the answer (the work is done, the client
 * does not know); hold it unanswered until the client gives up (or the proxy closes); or answer
 * it itself without the API seeing it.
 */
export type ProxyAction =
  "forward" | "drop-after-forward" | "hold" | { status: number; headers?: Record<string, string>; body?: string };

/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of a real API: each request goes through
 * `rule`, which picks its ProxyAction. Every request is recorded in `seen`.
 */
export class FaultProxy {
  readonly seen: ProxiedRequest[] = [];
  url = "";
  private rule: (req: ProxiedRequest) => ProxyAction = () => "forward";
  private readonly server = http.createServer((req, res) => this.handle(req, res));

  constructor(private readonly target: string) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Sets the rule for the requests from now on, and forgets those seen so far. */
  when(rule: (req: ProxiedRequest) => ProxyAction): void {
    this.rule = rule;
    this.seen.length = 0;
  }

  requests(method: string, path: string): ProxiedRequest[] {
    return this.seen.filter((r) => r.method === method && r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0]!;
    const seen: ProxiedRequest = {
      method: req.method ?? "GET",
      path,
      headers: req.headers,
      n: this.requests(req.method ?? "GET", path).length + 1,
    };
    this.seen.push(seen);
    const action = this.rule(seen);
    if (action === "hold") return void req.resume();
    if (typeof action === "object") {
      req.resume();
      res.writeHead(action.status, action.headers).end(action.body ?? "");
      return;
    }
    const upstream = http.request(
      new URL(req.url ?? "/", this.target),
      { method: req.method, headers: req.headers },
      (answer) => {
        if (action === "drop-after-forward") {
          answer.resume();
          answer.on("end", () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  }
}
