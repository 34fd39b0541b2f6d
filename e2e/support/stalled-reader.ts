import fs from "node:fs";
import net from "node:net";

/** Most a loopback connection can buffer: the sender's largest send buffer plus the receiver's default. */
export function kernelBufferBytes(): number {
  const max = (file: string, field: number) => {
    try {
      return Number(fs.readFileSync(file, "utf8").trim().split(/\s+/)[field]);
    } catch {
      return 0;
    }
  };
  return max("/proc/sys/net/ipv4/tcp_wmem", 2) + max("/proc/sys/net/ipv4/tcp_rmem", 1);
}

/** A GET whose client reads the first bytes of the answer, then nothing more. */
export interface StalledGet {
  /** The first bytes of the answer (its status line and headers, as latin1). */
  head: string;
  socket: net.Socket;
  /** Reads on to the end of the connection; resolves with every byte received, the first ones included. */
  readToEnd(): Promise<number>;
}

/**
 * Sends `GET path` over a raw socket and stops reading after the first chunk of the answer, so the
 * server's socket fills up and its writes stop draining (fetch and http.get read ahead).
 */
export function stalledGet(baseUrl: string, path: string, apiKey: string): Promise<StalledGet> {
  const { port } = new URL(baseUrl);
  const socket = net.connect(Number(port), "127.0.0.1");
  socket.on("error", () => {});
  return new Promise((resolve) => {
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      const readToEnd = () =>
        new Promise<number>((done) => {
          let bytes = chunk.length;
          socket.on("data", (more: Buffer) => (bytes += more.length));
          socket.once("close", () => done(bytes));
          socket.resume();
        });
      resolve({ head: chunk.toString("latin1"), socket, readToEnd });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${apiKey}\r\n\r\n`);
  });
}
