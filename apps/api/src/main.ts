// ESM loads a module's whole import graph before any of it runs: a SIGTERM while the API's
// modules load (a second or more) would kill it by the signal's default instead of a clean exit.
// So this entry imports nothing statically and notes a signal that comes meanwhile; the process
// exits 0 once loaded. main() installs its own handlers before its first await. These stay:
// removing them would stop Node watching the signal, and one caught while the import blocked the
// event loop, not yet handed to any handler, would be lost (the process would run on).
let stopRequested = false;
const early = () => (stopRequested = true);
process.on("SIGTERM", early);
process.on("SIGINT", early);

try {
  const { main } = await import("./api-main.ts");
  if (stopRequested) process.exit(0);
  await main();
} catch (err) {
  // Known start-up failures get one line that says what to do; anything else is a bug worth a stack.
  const { InferlineError } = await import("@inferline/contracts");
  if (err instanceof InferlineError) console.error(`inferline api: ${err.message}`);
  else console.error(err);
  process.exit(1);
}
