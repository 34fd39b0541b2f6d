import http from "node:http";

export interface Receipt {
  id: string;
  type: string;
  subject: string;
  at: number;
}

/** A webhook receiver on loopback that answers 500 to `failRatio` of deliveries and records the rest. */
export class Receiver {
  readonly receipts: Receipt[] = [];
  answered500 = 0;
  private constructor(private readonly server: http.Server) {}

  static async start(failRatio: number): Promise<Receiver> {
    const server = http.createServer();
    const receiver = new Receiver(server);
    server.on("request", (req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        if (Math.random() < failRatio) {
          receiver.answered500++;
          return void res.writeHead(500).end("try again");
        }
        try {
          const parsed = JSON.parse(body) as { type: string; data: { id: string } };
          receiver.receipts.push({
            id: String(req.headers["webhook-id"]),
            type: parsed.type,
            subject: parsed.data.id,
            at: Date.now(),
          });
        } catch {
          /* a body we cannot read is still a delivery */
        }
        res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}
