export { createRedis, assertRedisReachable, REDIS_HINT } from "./redis.ts";
export { inferQueueName, finishedChannel, WEBHOOK_QUEUE, PRIORITY_RANK, type DispatchPayload } from "./names.ts";
export { Dispatcher, type DispatcherOptions, type DispatchGroup } from "./dispatcher.ts";
export { FinishedNotifier, FinishedListener } from "./finished-events.ts";
