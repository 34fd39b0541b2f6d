// Preloaded into the API by bench/batch-upload-memory.ts (node --expose-gc --import <this>): samples
// the process's memory every 5 ms and answers the bench over IPC. Plain JS so that it loads in
// any checkout of the API, old or new.
let baseline = process.memoryUsage();
let peak = { heapUsed: 0, rss: 0, arrayBuffers: 0 };
const sample = () => {
  const m = process.memoryUsage();
  peak = {
    heapUsed: Math.max(peak.heapUsed, m.heapUsed),
    rss: Math.max(peak.rss, m.rss),
    arrayBuffers: Math.max(peak.arrayBuffers, m.arrayBuffers),
  };
};
setInterval(sample, 5).unref();
// With PROBE_GC_MS, also a full GC that often, and the heap left after it: what is really retained
// (heapUsed alone includes garbage not yet collected). It slows the process down.
let live = 0;
const gcEvery = Number(process.env.PROBE_GC_MS ?? 0);
if (gcEvery > 0 && globalThis.gc) {
  setInterval(() => {
    globalThis.gc();
    live = Math.max(live, process.memoryUsage().heapUsed);
  }, gcEvery).unref();
}
process.on("message", (msg) => {
  if (msg === "reset") {
    globalThis.gc?.();
    globalThis.gc?.();
    baseline = process.memoryUsage();
    peak = { heapUsed: baseline.heapUsed, rss: baseline.rss, arrayBuffers: baseline.arrayBuffers };
    live = baseline.heapUsed;
    process.send?.({ baseline });
  } else if (msg === "report") {
    sample();
    process.send?.({ baseline, peak: { ...peak, live } });
  }
});
process.channel?.unref();
