import http from "node:http";
import type { AddressInfo } from "node:net";

/** How long long-polls in flight at shutdown may take to get their current answer. */
const SHUTDOWN_GRACE_MS = 5000;

/**
 * Listens on `port` (0 picks a free one); resolves with the server and its loopback URL. Given a
 * server already listening (see startingServer), hands its requests to `listener` instead.
 */
export async function listenHttp(
  listener: http.RequestListener,
  port: number,
  host: string,
  listening?: http.Server,
): Promise<{ server: http.Server; url: string }> {
  if (listening) {
    listening.removeAllListeners("request");
    listening.on("request", listener);
    return { server: listening, url: loopbackUrl(listening) };
  }
  const server = http.createServer(listener);
  // Long-polls hold requests for up to 60 s; keep sockets open past that.
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return { server, url: loopbackUrl(server) };
}

function loopbackUrl(server: http.Server): string {
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

const STARTING_BODY = JSON.stringify({
  type: "https://inferline.dev/problems/starting",
  title: "Service Unavailable",
  status: 503,
  detail: "this API process is starting: it waits for PostgreSQL and Redis; retry after 5 s",
  code: "starting",
});

/**
 * The port, taken at once while the process waits for its dependencies: /healthz answers 200
 * (the process is alive, so an orchestrator does not restart it), everything else 503 `starting`
 * with Retry-After. listenHttp later hands the same server to the app.
 */
export function startingServer(port: number, host: string): Promise<http.Server> {
  return listenHttp(
    (req, res) => {
      if (req.url === "/healthz")
        return void res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      res.writeHead(503, { "content-type": "application/problem+json", "retry-after": "5" }).end(STARTING_BODY);
    },
    port,
    host,
  ).then(({ server }) => server);
}

/** Stops accepting connections and closes idle ones; long-polls in flight get their current answer rather than hold shutdown for a minute. */
export function closeHttp(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  });
}
