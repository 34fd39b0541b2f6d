import { hops } from "@inferline/runtime";
import type { FinishedListener } from "@inferline/queue";

/** What a long-poll reads and waits on. */
export interface LongPoll<T> {
  /** The finished messages' channel to wait on: a job's id, or a batch's (which its items share). */
  channel: string;
  waitSeconds: number;
  signal: AbortSignal;
  read: () => Promise<T>;
  done: (value: T) => boolean;
  /** A message's view of the job as the answer, or undefined to read it instead. */
  fromView?: (view: unknown) => T | undefined;
  /** The channel the value read says to wait on, when the id alone could not tell (a batch item's id looks like a job's). */
  channelOf?: (value: T) => string;
}

/**
 * Reads a job or batch, and while it is not done waits (up to `waitSeconds` in all) for the
 * workers' "finished" messages about `channel`, reading again after each. A batch's channel
 * carries one message per finished chunk, so one message need not mean done. Listens before each
 * read, so something that finishes between the read and the wait still wakes it. A message that
 * carries the job's view answers without that read, when `fromView` accepts it as done. When the
 * first read shows another channel (`channelOf`), it listens there and reads once more.
 *
 * Pub/sub is at-most-once (a message sent while the subscriber reconnects is gone), so it also
 * reads again every `listener.recheckMs` (with some jitter, so that waiters started together do
 * not read together): a lost message costs seconds, not the whole wait.
 */
export async function longPoll<T>(listener: FinishedListener, poll: LongPoll<T>): Promise<T> {
  const { waitSeconds, signal, read, done, fromView, channelOf } = poll;
  let channel = poll.channel;
  if (waitSeconds <= 0) return read();
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || signal.aborted) return read();
    const waiter = listener.wait(channel, Math.min(left, jittered(listener.recheckMs)), signal);
    let now: T;
    try {
      now = await read();
    } catch (err) {
      waiter.cancel();
      throw err;
    }
    if (done(now)) {
      waiter.cancel();
      hops.mark(channel, "api.read");
      return now;
    }
    const shown = channelOf?.(now);
    if (shown !== undefined && shown !== channel) {
      waiter.cancel();
      channel = shown;
      continue;
    }
    const end = await waiter.promise;
    if (!end.announced) continue; // rechecking, at the deadline or aborted: the loop decides
    hops.mark(channel, "api.woken");
    const announced = end.view === undefined ? undefined : fromView?.(end.view);
    if (announced !== undefined && done(announced)) {
      hops.mark(channel, "api.read");
      return announced;
    }
  }
}

/** 80-120% of `ms`. */
const jittered = (ms: number) => Math.round(ms * (0.8 + 0.4 * Math.random()));

/** What the limit reports; ApiMetrics' gauge and counter fit. */
export interface WaiterMetrics {
  waiters: { inc(): void; dec(): void };
  rejected: { inc(): void };
}

/**
 * Long-poll waiters per tenant in this API process. Each waiter holds a socket, timers and a
 * re-read every few seconds for up to a minute, so one tenant opening thousands of them could
 * exhaust the process for everyone; past its cap a tenant is refused (429) and others are not.
 */
export class WaiterLimit {
  private readonly held = new Map<string, number>();

  constructor(
    readonly maxPerTenant: number,
    private readonly metrics?: WaiterMetrics,
  ) {}

  /** A slot's release (safe to call more than once), or undefined when the tenant is at its cap. */
  tryAcquire(tenantId: string): (() => void) | undefined {
    const count = this.held.get(tenantId) ?? 0;
    if (count >= this.maxPerTenant) {
      this.metrics?.rejected.inc();
      return undefined;
    }
    this.held.set(tenantId, count + 1);
    this.metrics?.waiters.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.metrics?.waiters.dec();
      // Tenants without waiters leave the map, so it holds only tenants waiting now.
      const left = (this.held.get(tenantId) ?? 1) - 1;
      if (left > 0) this.held.set(tenantId, left);
      else this.held.delete(tenantId);
    };
  }
}
