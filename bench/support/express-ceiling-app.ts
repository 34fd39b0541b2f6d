/**
 * The Express ceiling: a minimal Express 5 app (Express's defaults, express.json(), one POST route
 * answering 202 with a body shaped and sized like Inferline's accepted job, and its Location), the
 * far side of bench/scenarios/express-ceiling.ts. What Inferline's submit route costs beyond this
 * is what Inferline adds. PORT from the environment; prints "ready" once listening.
 * BENCH_EXPRESS_LEAN=1 sets what Inferline's app sets (no ETag, no X-Powered-By).
 */
import crypto from "node:crypto";
import express from "express";

const app = express();
if (process.env.BENCH_EXPRESS_LEAN === "1") {
  app.disable("x-powered-by");
  app.set("etag", false);
}
app.use(express.json());
app.post("/v1/jobs", (req, res) => {
  const body = req.body as { model?: string };
  const id = crypto.randomUUID();
  res
    .status(202)
    .location(`/v1/jobs/${id}`)
    .json({
      id,
      status: "queued",
      model: body.model ?? "iris",
      version: "1",
      priority: "normal",
      createdAt: new Date().toISOString(),
      attempts: 0,
      metadata: {},
    });
});
const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => process.stdout.write("ready\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
