import type { FinishedListener } from "@inferline/queue";

/**
 * Reads a job or batch, and when it is not done yet waits (up to `waitSeconds`) for the workers'
 * "finished" message about `id`, then reads again. Listens before the first read, so something
 * that finishes between the read and the wait still wakes it.
 */
export async function longPoll<T>(listener: FinishedListener, id: string, waitSeconds: number, signal: AbortSignal, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  if (waitSeconds <= 0) return read();
  const waiter = listener.wait(id, waitSeconds * 1000, signal);
  let now: T;
  try {
    now = await read();
  } catch (err) {
    waiter.cancel();
    throw err;
  }
  if (done(now)) {
    waiter.cancel();
    return now;
  }
  await waiter.promise;
  return read();
}
