import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const EARLY_SIGNALS = fileURLToPath(import.meta.resolve("@inferline/runtime/early-signals"));

/** How a supervised process ended without the soak asking: what the report's "exits" lists. */
export interface UnexpectedExit {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  tail: string;
}

/**
 * A process the soak keeps alive: started again whenever it dies, unless told to stay down.
 * Every exit the soak did not cause (a kill or SIGTERM of its own) is an unexpected exit, and so
 * is a SIGTERM answered with anything but code 0.
 */
export class Supervised {
  child: ChildProcess | undefined;
  deaths = 0;
  readonly unexpected: UnexpectedExit[] = [];
  private down = false;
  private log = "";
  private expected: NodeJS.Signals | undefined;

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly env: Record<string, string>,
    private readonly cwd: string,
    /** How long after an exit it starts again, in ms: fixed, or drawn per restart. */
    private readonly restartDelayMs: () => number = () => 300,
  ) {}

  start(): void {
    this.down = false;
    this.expected = undefined;
    // early-signals first: a SIGTERM during tsx's own start is noted too (see @inferline/runtime).
    const child = spawn(process.execPath, ["--import", EARLY_SIGNALS, "--import", "tsx", this.file], {
      cwd: this.cwd,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const keep = (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("exit", (code, signal) => this.exited(child, code, signal));
  }

  /** Sends `signal`; the exit it causes is expected (SIGTERM's only when the process exits 0). */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.child) return;
    if (signal === "SIGKILL" || signal === "SIGTERM") this.expected = signal;
    this.child.kill(signal);
  }

  /** Stops it and starts it again only when told (start). */
  hold(): void {
    this.down = true;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Ends it for good and waits for the exit. */
  async stop(): Promise<void> {
    this.down = true;
    const child = this.child;
    if (!child) return;
    this.expected = "SIGTERM";
    child.kill("SIGCONT");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await new Promise((resolve) => child.once("exit", resolve));
    clearTimeout(timer);
  }

  tail(): string {
    return this.log.slice(-2000);
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    const asked = this.expected;
    this.expected = undefined;
    const fine = (asked === "SIGKILL" && signal === "SIGKILL") || (asked === "SIGTERM" && code === 0);
    if (!fine) this.unexpected.push({ name: this.name, code, signal, at: Date.now(), tail: this.tail() });
    if (this.down) return;
    this.deaths++;
    setTimeout(() => {
      if (!this.down && !this.child) this.start();
    }, this.restartDelayMs());
  }
}
