/**
 * Polls `condition` until it returns a truthy value, which it then returns; fails with `message`
 * after `timeoutMs`. Tests wait on conditions, never on fixed sleeps.
 */
export async function sleepUntil<T>(
  condition: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${options.timeoutMs ?? 10_000} ms: ${options.message ?? "condition never held"}${last ? ` (last error: ${(last as Error).message})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
  }
}
