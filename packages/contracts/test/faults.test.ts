import { describe, expect, it } from "vitest";
import { z } from "zod";
import { zodFaults } from "../src/faults.ts";

const Body = z.strictObject({
  model: z.string(),
  inputs: z.array(z.strictObject({ name: z.string() })).optional(),
  metadata: z.record(z.string().max(8), z.string()).optional(),
});

function faultsOf(value: unknown, base?: string) {
  const result = Body.safeParse(value);
  if (result.success) throw new Error("expected the value to be refused");
  return zodFaults(result.error, base);
}

describe("zodFaults", () => {
  it("gives each issue a JSON Pointer to its field, array indexes included", () => {
    expect(faultsOf({ model: 7, inputs: [{ name: "a" }, { name: 1 }] }).map((f) => f.path)).toEqual([
      "/model",
      "/inputs/1/name",
    ]);
  });

  it("escapes ~ as ~0 and / as ~1 in path segments (RFC 6901)", () => {
    expect(faultsOf({ model: "m", metadata: { "a/b~c": 1 } })).toEqual([
      { path: "/metadata/a~1b~0c", message: expect.any(String) },
    ]);
    expect(faultsOf({ model: "m", metadata: { "~/~/~/~/": 1 } })[0]!.path).toBe("/metadata/~0~1~0~1~0~1~0~1");
  });

  it("names each unknown key by its own path, escaped", () => {
    expect(faultsOf({ model: "m", extra: 1, "x/y": 2, inputs: [{ name: "a", "~k": 3 }] })).toEqual(
      expect.arrayContaining([
        { path: "/extra", message: 'unknown field "extra"' },
        { path: "/x~1y", message: 'unknown field "x/y"' },
        { path: "/inputs/0/~0k", message: 'unknown field "~k"' },
      ]),
    );
  });

  it("reports an invalid record key at the key, with the key's own issue", () => {
    const [fault] = faultsOf({ model: "m", metadata: { "much-too-long": "x" } });
    expect(fault!.path).toBe("/metadata/much-too-long");
    expect(fault!.message).toMatch(/^invalid key: /);
  });

  it("puts paths under a base, and a fault of the whole value at the base or at /", () => {
    expect(faultsOf({ model: 1 }, "/items/3").map((f) => f.path)).toEqual(["/items/3/model"]);
    expect(faultsOf(5, "/query").map((f) => f.path)).toEqual(["/query"]);
    expect(faultsOf(5).map((f) => f.path)).toEqual(["/"]);
  });
});
