// The images' HEALTHCHECK: exits 0 when this container's process answers GET /healthz on the port
// named by the variable given (PORT for the API, METRICS_PORT for the worker), 1 otherwise.
const variable = process.argv[2] ?? "PORT";
const url = `http://127.0.0.1:${process.env[variable]}/healthz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
