import { context, propagation, trace } from "@opentelemetry/api";
import type { TracerProvider } from "@opentelemetry/sdk-trace";

/**
 * Whether this process traces. Read on every hot path before anything else is done, so that with
 * tracing off a span costs one property read and a branch.
 */
export const tracing = { enabled: false };

/** What a process holds while it traces: shutting it down flushes the spans still buffered. */
export interface TelemetryHandle {
  readonly enabled: boolean;
  /** Exports what is buffered and, once every starter of this process has shut down, unregisters. */
  shutdown(): Promise<void>;
}

/** The standard variables that turn tracing on (the exporter reads them, and the other OTEL_* ones, itself). */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

const OFF: TelemetryHandle = { enabled: false, shutdown: async () => {} };

let provider: Promise<TracerProvider> | undefined;
let holders = 0;

/**
 * Starts tracing for this process when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set:
 * a tracer provider exporting OTLP/HTTP JSON through a batch span processor, the W3C trace-context
 * propagator, and an AsyncLocalStorage context manager, registered globally. Unset, nothing is
 * registered (the SDK is not even loaded) and the API's no-op tracer stays in place. An API and a
 * worker in one process (tests, `pnpm start`) share the first provider (and its service.name); it
 * ends with the last shutdown.
 */
export async function startTelemetry(
  defaultServiceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TelemetryHandle> {
  if (!tracingWanted(env)) return OFF;
  provider ??= register(env.OTEL_SERVICE_NAME?.trim() || defaultServiceName, env);
  holders++;
  await provider;
  let released = false;
  return {
    enabled: true,
    async shutdown() {
      if (released) return;
      released = true;
      if (--holders > 0) return (await provider)?.forceFlush();
      await unregister();
    },
  };
}

async function register(serviceName: string, env: NodeJS.ProcessEnv): Promise<TracerProvider> {
  const [
    { AsyncLocalStorageContextManager },
    { W3CTraceContextPropagator },
    { OTLPTraceExporter },
    { resourceFromAttributes },
    { BatchSpanProcessor, TracerProvider },
    { ATTR_SERVICE_NAME },
  ] = await Promise.all([
    import("@opentelemetry/context-async-hooks"),
    import("@opentelemetry/core"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/semantic-conventions"),
  ]);
  const created = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter(),
        scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY) ?? 5000,
      }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(created);
  tracing.enabled = true;
  return created;
}

async function unregister(): Promise<void> {
  const current = provider;
  provider = undefined;
  tracing.enabled = false;
  trace.disable();
  context.disable();
  propagation.disable();
  // Flushes the batch processor's buffer through the exporter before it closes.
  await (await current)?.shutdown();
}

function positive(text: string | undefined): number | undefined {
  const n = Number(text);
  return text && Number.isFinite(n) && n > 0 ? n : undefined;
}
