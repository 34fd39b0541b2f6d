import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";

/** How long long-polls in flight at shutdown may take to get their current answer. */
const SHUTDOWN_GRACE_MS = 5000;

/** Listens on `port` (0 picks a free one); resolves with the server and its loopback URL. */
export async function listenHttp(app: Express, port: number, host: string): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(app);
  // Long-polls hold requests for up to 60 s; keep sockets open past that.
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${bound}` };
}

/** Stops accepting connections and closes idle ones; long-polls in flight get their current answer rather than hold shutdown for a minute. */
export function closeHttp(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  });
}
