// A receiver of Inferline's webhooks. Every delivery is signed by the Standard Webhooks scheme
// with the tenant's whsec_ secret; nothing of a request is trusted before the signature over its
// raw body verifies (with the specification's reference implementation, `standardwebhooks`).
import http from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.env.INFERLINE_WEBHOOK_SECRET;
if (!secret?.startsWith("whsec_")) {
  console.error("Set INFERLINE_WEBHOOK_SECRET to your tenant's whsec_ secret (GET /v1/webhooks/secret).");
  process.exit(1);
}
const webhook = new Webhook(secret);
const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";
const MAX_BODY_BYTES = 1024 * 1024;

// A retried delivery carries the webhook-id of the first: remember the latest ids to act once.
const seen = new Set();
const SEEN_LIMIT = 10_000;

/** What this receiver does with an event; replace it with your own. */
function handle(event, webhookId) {
  const job = event.data;
  console.log(JSON.stringify({ webhookId, type: event.type, id: job.id, status: job.status }));
}

/** The body exactly as sent (the signature covers these bytes), or null past MAX_BODY_BYTES. */
async function rawBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const server = http.createServer(async (req, res) => {
  const answer = (status, text = "") => res.writeHead(status, { "content-type": "text/plain" }).end(text);
  if (req.method !== "POST") return answer(405, "POST only\n");
  const body = await rawBody(req);
  if (body === null) return answer(413, "body too large\n");
  let event;
  try {
    event = webhook.verify(body, req.headers); // checks the signature and a timestamp within 5 minutes
  } catch (err) {
    console.error(`refused a delivery: ${err.message}`);
    return answer(400, "invalid signature\n");
  }
  const webhookId = req.headers["webhook-id"];
  if (!seen.has(webhookId)) {
    seen.add(webhookId);
    if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value);
    handle(event, webhookId);
  }
  answer(204); // any 2xx settles the delivery; anything else is retried
});

server.listen(port, host, () => console.log(`listening on http://${host}:${server.address().port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
