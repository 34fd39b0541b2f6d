import { oneShotConnections, type RedisConnection, type RedisTarget } from "./redis.ts";

/** Redis pub/sub channel on which `inferline keys revoke` announces revoked keys to every API process. */
export function keyRevokedChannel(prefix: string): string {
  return `${prefix}:events:key-revoked`;
}

const KEY_HASH = /^[0-9a-f]{64}$/;

/**
 * Announces revoked keys by their SHA-256, which is what API processes cache them by: the key
 * itself never travels, and the hash alone authenticates nothing.
 */
export class KeyRevocationNotifier {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  /** Resolves to the number of subscribers (API processes) that received the message. */
  async publish(keyHashes: string[]): Promise<number> {
    if (keyHashes.length === 0) return 0;
    return await this.redis.publish(keyRevokedChannel(this.prefix), keyHashes.join(","));
  }
}

/**
 * Publishes a revocation over a connection of its own that gives up after `timeoutMs` instead of
 * retrying: the CLI must not hang when Redis is down (the revocation itself is already stored).
 * On a cluster one node suffices (a PUBLISH reaches the subscribers of every node), so the seed
 * nodes are tried in order; the count is then that node's subscribers only.
 */
export async function publishKeyRevocation(
  target: RedisTarget,
  prefix: string,
  keyHashes: string[],
  timeoutMs = 3000,
): Promise<number> {
  let failure: unknown;
  for (const redis of oneShotConnections(target, timeoutMs)) {
    // The 'error' event carries the cause (ECONNREFUSED...); the rejection only says "Connection is closed".
    let cause: Error | undefined;
    redis.on("error", (err: Error) => (cause = err));
    try {
      await redis.connect();
      return await new KeyRevocationNotifier(redis, prefix).publish(keyHashes);
    } catch (err) {
      failure = cause ?? err;
    } finally {
      redis.disconnect();
    }
  }
  throw failure;
}

export interface KeyRevocationHandlers {
  /** Keys (by SHA-256) revoked since the last message. */
  revoked(keyHashes: string[]): void;
  /**
   * The subscription is back after the connection to Redis dropped: revocations published in
   * between were lost, so every cached answer must be checked again.
   */
  resubscribed(): void;
}

/** Listens for revocations on a subscriber connection it shares (with the FinishedListener). */
export class KeyRevocationListener {
  private constructor(
    private readonly subscriber: RedisConnection,
    private readonly onMessage: (channel: string, message: string) => void,
    private readonly onReady: () => void,
  ) {}

  static async start(
    subscriber: RedisConnection,
    prefix: string,
    handlers: KeyRevocationHandlers,
  ): Promise<KeyRevocationListener> {
    const channel = keyRevokedChannel(prefix);
    const onMessage = (from: string, message: string) => {
      if (from !== channel) return;
      const hashes = message.split(",").filter((h) => KEY_HASH.test(h));
      if (hashes.length > 0) handlers.revoked(hashes);
    };
    // ioredis emits 'ready' on every reconnection and resubscribes right after it; subscribing
    // again and waiting for the reply means the channel is live before the caches are dropped,
    // so no revocation can slip between the two.
    const onReady = () => {
      void subscriber.subscribe(channel).then(
        () => handlers.resubscribed(),
        () => {
          // The connection dropped again; its next 'ready' retries.
        },
      );
    };
    subscriber.on("message", onMessage);
    await subscriber.subscribe(channel);
    subscriber.on("ready", onReady);
    return new KeyRevocationListener(subscriber, onMessage, onReady);
  }

  /**
   * Stops listening. The shared connection is closed by its owner; no UNSUBSCRIBE here, since on
   * a dead connection it would wait for Redis to come back.
   */
  close(): void {
    this.subscriber.off("message", this.onMessage);
    this.subscriber.off("ready", this.onReady);
  }
}
