// The entry of a long-running process (the API, the worker). ESM loads a module's whole import
// graph before any of it runs: a SIGTERM while the process's modules load (a second or more under
// tsx) would kill it by the signal's default instead of a clean exit. So this file imports nothing
// statically, and an entry imports it alone and hands it the rest to load.

/**
 * Set by the handlers here, and by early-signals.mjs, which a process started through tsx preloads
 * so that a signal during tsx's own start (before any of this runs) is noted too.
 */
const STOP_REQUESTED = Symbol.for("inferline.stopRequested");

/** A process's own start: it installs its signal handlers before its first await. */
export interface ProcessMain {
  main: () => Promise<void>;
}

/**
 * Loads a process's modules with `load` and runs its main(). A SIGTERM or SIGINT that comes while
 * they load is noted, and the process exits 0 once loaded. The handlers stay: removing them would
 * stop Node watching the signal, and one caught while the import blocked the event loop, not yet
 * handed to any handler, would be lost (the process would run on). A failed start exits 1 with
 * one line for a known failure (an InferlineError) and the stack for anything else.
 */
export async function runProcess(name: string, load: () => Promise<ProcessMain>): Promise<void> {
  const early = () => ((globalThis as Record<symbol, unknown>)[STOP_REQUESTED] = true);
  process.on("SIGTERM", early);
  process.on("SIGINT", early);
  try {
    const { main } = await load();
    if ((globalThis as Record<symbol, unknown>)[STOP_REQUESTED] === true) process.exit(0);
    await main();
  } catch (err) {
    const { InferlineError } = await import("@inferline/contracts");
    if (err instanceof InferlineError) console.error(`inferline ${name}: ${err.message}`);
    else console.error(err);
    process.exit(1);
  }
}
