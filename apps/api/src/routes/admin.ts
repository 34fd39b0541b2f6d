import crypto from "node:crypto";
import { Router, type RequestHandler } from "express";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";
import { sendProblem } from "../problem.ts";

export const ADMIN_BASE_PATH = "/admin/queues";

/**
 * Operators' queue dashboard (bull-board) behind the admin key: HTTP Basic with any user name
 * and the key as password (so a browser can open it), or `Authorization: Bearer <key>`.
 * Without ADMIN_API_KEY the route does not exist.
 */
export function adminRouter(adminKey: string | undefined, queues: Queue[]): Router {
  const router = Router();
  if (!adminKey) return router;
  const board = new ExpressAdapter();
  board.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false })), serverAdapter: board });
  router.use(ADMIN_BASE_PATH, requireAdmin(adminKey), board.getRouter() as RequestHandler);
  return router;
}

function requireAdmin(adminKey: string): RequestHandler {
  const expected = crypto.createHash("sha256").update(adminKey).digest();
  const matches = (candidate: string) =>
    crypto.timingSafeEqual(crypto.createHash("sha256").update(candidate).digest(), expected);
  return (req, res, next) => {
    const header = req.headers.authorization ?? "";
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const basic = /^Basic\s+(\S+)$/i.exec(header)?.[1];
    const password = basic ? Buffer.from(basic, "base64").toString("utf8").split(":").slice(1).join(":") : undefined;
    if ((bearer && matches(bearer)) || (password && matches(password))) return next();
    res.setHeader("WWW-Authenticate", 'Basic realm="inferline admin"');
    sendProblem(
      res,
      401,
      "admin_key_required",
      "the queue dashboard needs the admin key (HTTP Basic password or Bearer)",
    );
  };
}
