import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/services/idempotency.ts";

describe("canonicalJson", () => {
  it("sorts keys, so bodies that differ only in key order are the same text", () => {
    expect(canonicalJson({ b: 1, a: 2, c: 3 })).toBe('{"a":2,"b":1,"c":3}');
    expect(canonicalJson({ model: "iris", inputs: [] })).toBe(canonicalJson({ inputs: [], model: "iris" }));
  });

  it("sorts keys at every depth, inside arrays too", () => {
    const a = { outer: { z: { y: 1, x: 2 }, a: [{ d: 1, c: 2 }] } };
    const b = { outer: { a: [{ c: 2, d: 1 }], z: { x: 2, y: 1 } } };
    expect(canonicalJson(a)).toBe('{"outer":{"a":[{"c":2,"d":1}],"z":{"x":2,"y":1}}}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  it("sorts by code unit, integer-like keys as strings", () => {
    expect(canonicalJson({ "9": 0, "10": 0, a: 0, B: 0, "": 0 })).toBe('{"":0,"10":0,"9":0,"B":0,"a":0}');
  });

  it("keeps array order: a reordered array is another body", () => {
    expect(canonicalJson([3, 1, 2])).toBe("[3,1,2]");
    expect(canonicalJson({ data: [1, 2] })).not.toBe(canonicalJson({ data: [2, 1] }));
    expect(canonicalJson([[], {}, [[]]])).toBe("[[],{},[[]]]");
  });

  it("writes numbers as JSON does, so 1 and 1.0 are one body and 1 and 1.5 are two", () => {
    expect(canonicalJson({ n: 1.0 })).toBe(canonicalJson({ n: 1 }));
    expect(canonicalJson({ n: 1 })).not.toBe(canonicalJson({ n: 1.5 }));
    expect(canonicalJson([0.1, -0, 1e21, 1e-7, -2.5])).toBe("[0.1,0,1e+21,1e-7,-2.5]");
  });

  it("writes strings, booleans and null as JSON does, escaping keys too", () => {
    expect(canonicalJson({ 'k"\n': 'a"b\\\u0001é', t: true, f: false, z: null })).toBe(
      `{"f":false,${JSON.stringify('k"\n')}:${JSON.stringify('a"b\\\u0001é')},"t":true,"z":null}`,
    );
    expect(canonicalJson("x")).toBe('"x"');
    expect(canonicalJson(null)).toBe("null");
    expect(canonicalJson(7)).toBe("7");
  });

  it("is JSON that reads back as the same value", () => {
    const body = {
      model: "iris",
      inputs: [{ name: "features", shape: [1, 4], datatype: "FP32", data: [5.1, 3.5, 1.4, 0.2] }],
      metadata: { "a/b": "~" },
      priority: "high",
    };
    expect(JSON.parse(canonicalJson(body))).toEqual(body);
  });
});
