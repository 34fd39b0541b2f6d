/** One refused or failed submit attempt: when, and what it was (`503 overloaded`, `network`, `timeout`…). */
export interface Refusal {
  at: number;
  kind: string;
}

/** How a client retries a refused or failed submit. */
export interface ClientBehaviour {
  /** The delay before the next attempt (`attempt` counts from 0). */
  delayMs(attempt: number): number;
  /** How long one attempt may take before the client abandons it and retries. */
  attemptTimeoutMs: number;
  /** After this long since its first attempt the client gives up (Infinity: never). */
  giveUpAfterMs: number;
  /** Submits in flight at once across every client (Infinity: each job is a client of its own). */
  maxInFlight: number;
}

/** Backs off exponentially up to 2 s and never gives up: what a careful client does. */
export const CAREFUL: ClientBehaviour = {
  delayMs: (attempt) => Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()),
  attemptTimeoutMs: 30_000,
  giveUpAfterMs: Infinity,
  maxInFlight: 256,
};

/** Retries every 300 ms with the same Idempotency-Key, ignores Retry-After, gives up after 90 s: what many real clients do. */
export const HARD: ClientBehaviour = {
  delayMs: () => 300,
  attemptTimeoutMs: 10_000,
  giveUpAfterMs: 90_000,
  maxInFlight: Infinity,
};

export class SubmitStats {
  readonly refusals: Refusal[] = [];
  retries = 0;
  givenUp = 0;

  byKind(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.refusals) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
    return counts;
  }
}

export interface SubmitRequest {
  url: string;
  apiKey: string;
  path: string;
  idempotencyKey: string;
  body: string;
  contentType: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * POSTs until the API accepts (200 or 202) with the same Idempotency-Key on every attempt, so a
 * request the API stored before it failed is answered with the first job. Resolves with the
 * accepted id, or undefined when the client gave up. A 4xx other than 408, 409 and 429 is a bug
 * of the soak and throws.
 */
export async function submitUntilAccepted(
  request: SubmitRequest,
  behaviour: ClientBehaviour,
  stats: SubmitStats,
): Promise<string | undefined> {
  const first = Date.now();
  for (let attempt = 0; ; attempt++) {
    const kind = await attemptOnce(request, behaviour);
    if (kind.id) return kind.id;
    stats.refusals.push({ at: Date.now(), kind: kind.refusal! });
    if (Date.now() - first + behaviour.delayMs(attempt) > behaviour.giveUpAfterMs) {
      stats.givenUp++;
      return undefined;
    }
    stats.retries++;
    await sleep(behaviour.delayMs(attempt));
  }
}

async function attemptOnce(
  request: SubmitRequest,
  behaviour: ClientBehaviour,
): Promise<{ id?: string; refusal?: string }> {
  try {
    const res = await fetch(`${request.url}${request.path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${request.apiKey}`,
        "content-type": request.contentType,
        "idempotency-key": request.idempotencyKey,
      },
      body: request.body,
      signal: AbortSignal.timeout(behaviour.attemptTimeoutMs),
    });
    const text = await res.text();
    if (res.status === 200 || res.status === 202) return { id: (JSON.parse(text) as { id: string }).id };
    const code = problemCode(text);
    if (res.status < 500 && ![408, 409, 429].includes(res.status))
      throw new Error(`${request.path} answered ${res.status} ${code}: ${text.slice(0, 300)}`);
    return { refusal: `${res.status} ${code}` };
  } catch (err) {
    if ((err as Error).message.includes(" answered ")) throw err;
    return { refusal: (err as Error).name === "TimeoutError" ? "client timeout" : "network error" };
  }
}

function problemCode(text: string): string {
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return typeof code === "string" ? code : "?";
  } catch {
    return "not json";
  }
}
