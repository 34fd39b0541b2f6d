import crypto from "node:crypto";
import { Redis } from "ioredis";
import { DEFAULT_REDIS_URL } from "@inferline/contracts";

export const testRedisUrl = (): string => process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? DEFAULT_REDIS_URL;

/** A queue prefix of one test file's own, so that files never see each other's jobs. */
export function uniquePrefix(): string {
  return `ilt-${crypto.randomBytes(5).toString("hex")}`;
}

/** Deletes every key under a prefix. */
export async function deletePrefix(prefix: string, url = testRedisUrl()): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}
