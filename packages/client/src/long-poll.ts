import type { Transport } from "./transport.ts";
import type { WaitOptions } from "./types.ts";

/** The API holds a long-poll at most this long (WaitQuery's bound). */
const MAX_WAIT_SECONDS = 60;

/**
 * GETs `path?wait=N` again and again until `done` holds for the answer or the deadline passes
 * (then the last answer is returned, unfinished). Each request waits at most 60 s, or what is
 * left of the deadline.
 */
export async function longPoll<T>(
  transport: Transport,
  path: string,
  done: (view: T) => boolean,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutSeconds, ...request } = options;
  const deadline = timeoutSeconds === undefined ? Infinity : Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    const wait = Math.min(MAX_WAIT_SECONDS, left);
    const view = await transport.json<T>({ method: "GET", path, query: { wait }, holdSeconds: wait, options: request });
    if (done(view) || Date.now() >= deadline) return view;
  }
}
