import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** What importing a module read of the environment and the file system (see support/trap-io.mjs). */
function touchedOnImport(module: string): string[] {
  const out = execFileSync(
    process.execPath,
    ["--import", "tsx", "--import", here("./support/trap-io.mjs"), here("./support/import-probe.mjs"), module],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as string[];
}

describe("importing @inferline/contracts", () => {
  it("reads neither the environment nor a file: it holds schemas and errors only", () => {
    expect(touchedOnImport(here("../src/index.ts"))).toEqual([]);
  });

  it("is what the probe would catch: a module that reads the environment at import is reported", () => {
    expect(touchedOnImport(here("./support/reads-env.ts"))).toEqual([expect.stringContaining("env INFERLINE_PROBE")]);
  });
});
