import type { BulkJobOptions } from "bullmq";

/** One queue entry, as Queue.addBulk takes it. */
export interface QueueEntrySpec<D> {
  name: string;
  data: D;
  opts?: BulkJobOptions;
}

/** The part of a BullMQ Queue that adds entries. */
export interface EntryAdder<D> {
  add(name: string, data: D, opts?: BulkJobOptions): Promise<unknown>;
  addBulk(entries: Array<QueueEntrySpec<D>>): Promise<unknown>;
}

/**
 * Adds queue entries: one through Queue.add, several through Queue.addBulk. addBulk builds an
 * ioredis pipeline, whose constructor copies every script BullMQ defines onto it (more CPU than
 * the rest of a lone submit's enqueue); one command needs no pipeline. Either way, an entry whose job id exists already is left as it is.
 */
export async function addEntries<D>(queue: EntryAdder<D>, entries: ReadonlyArray<QueueEntrySpec<D>>): Promise<void> {
  if (entries.length === 1) {
    const { name, data, opts } = entries[0]!;
    await queue.add(name, data, opts);
  } else if (entries.length > 1) await queue.addBulk([...entries]);
}
