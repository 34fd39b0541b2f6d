// Preloaded before anything else of a process started through tsx (`node --import <this file>
// --import tsx …`): it notes a SIGTERM or SIGINT that comes while tsx and the process's modules
// load, for runProcess (process-entry.ts) to end the process with exit 0 once loaded. Plain
// JavaScript with no imports, so it runs before tsx itself. Its handlers stay for the same reason
// as runProcess's: removing them could drop a signal Node caught but had not handed over yet.
const note = () => {
  globalThis[Symbol.for("inferline.stopRequested")] = true;
};
process.on("SIGTERM", note);
process.on("SIGINT", note);
