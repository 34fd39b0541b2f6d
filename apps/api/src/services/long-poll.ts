import type { FinishedListener } from "@inferline/queue";

/**
 * Reads a job or batch, and while it is not done waits (up to `waitSeconds` in all) for the
 * workers' "finished" messages about `channel`, reading again after each. A batch's channel
 * carries one message per finished chunk, so one message need not mean done. Listens before each
 * read, so something that finishes between the read and the wait still wakes it.
 */
export async function longPoll<T>(listener: FinishedListener, channel: string, waitSeconds: number, signal: AbortSignal, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  if (waitSeconds <= 0) return read();
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || signal.aborted) return read();
    const waiter = listener.wait(channel, left, signal);
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
    if (!(await waiter.promise)) return read();
  }
}
