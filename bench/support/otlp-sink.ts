import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local OTLP/HTTP receiver for `pnpm bench --otel`: the scenarios' API and worker processes
 * export their spans here (OTEL_EXPORTER_OTLP_ENDPOINT), so a run measures what tracing on costs
 * them. It only counts (exports, bytes, spans) and answers 200: no collector's work is in the figures.
 */
export class OtlpSink {
  exports = 0;
  bytes = 0;
  spans = 0;
  url = "";
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      this.exports++;
      this.bytes += body.length;
      this.spans += body.match(/"spanId"/g)?.length ?? 0;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });

  static async start(): Promise<OtlpSink> {
    const sink = new OtlpSink();
    await new Promise<void>((resolve) => sink.server.listen(0, "127.0.0.1", resolve));
    sink.url = `http://127.0.0.1:${(sink.server.address() as AddressInfo).port}`;
    return sink;
  }

  summary(): string {
    return `${this.spans} spans in ${this.exports} OTLP exports (${Math.round(this.bytes / 1024)} KiB)`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
