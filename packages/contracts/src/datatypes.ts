import { z } from "zod";

/** How the elements of one datatype are written in JSON. */
export type DatatypeFacts =
  | { kind: "bool" }
  /** `min` and `max`: the datatype's range. */
  | { kind: "int"; min: bigint; max: bigint }
  /** `largest`: the largest finite value; `overflow`: the magnitude from which a number rounds to infinity. */
  | { kind: "float"; largest: number; overflow: number }
  | { kind: "bytes" };

/**
 * Every tensor datatype of the API and how its elements travel in JSON (the Open Inference
 * Protocol v2 form): the one table of per-datatype facts. The Datatype enum, input checks and the
 * inference package's onnxruntime table all key from it, so a new datatype starts with a row here.
 *
 * - bool: `true` / `false`.
 * - int: JSON integers, or decimal strings. JSON parsers read numbers as doubles, so a number past
 *   ±(2^53−1) is rounded before anyone sees it (9007199254740993 arrives as ...992): such values
 *   travel as decimal strings ("9007199254740993"), which requests may use for any integer. Once
 *   validated, and in results, an integer is a number when it is within ±(2^53−1), else a string.
 * - float: JSON numbers, rounded to the datatype's precision (nearest, ties to even) on their way
 *   into the model; a number that would round to infinity is refused.
 * - bytes: base64 strings (a model's string tensors hold the UTF-8 text they encode).
 */
export const DATATYPES = {
  BOOL: { kind: "bool" },
  UINT8: { kind: "int", min: 0n, max: 255n },
  INT8: { kind: "int", min: -128n, max: 127n },
  INT16: { kind: "int", min: -32768n, max: 32767n },
  INT32: { kind: "int", min: -2147483648n, max: 2147483647n },
  INT64: { kind: "int", min: -(2n ** 63n), max: 2n ** 63n - 1n },
  // Half of the last step past the largest finite value rounds up to infinity (IEEE 754).
  FP16: { kind: "float", largest: 65504, overflow: 65520 },
  FP32: { kind: "float", largest: 3.4028234663852886e38, overflow: 2 ** 128 - 2 ** 103 },
  FP64: { kind: "float", largest: Number.MAX_VALUE, overflow: Number.POSITIVE_INFINITY },
  BYTES: { kind: "bytes" },
} as const satisfies Record<string, DatatypeFacts>;

/** A tensor datatype: a key of DATATYPES, in the table's order. */
export const Datatype = z.enum(Object.keys(DATATYPES) as [keyof typeof DATATYPES, ...Array<keyof typeof DATATYPES>]);
export type Datatype = z.infer<typeof Datatype>;

/** One element of a tensor's flat data, as JSON carries it. */
export type TensorElement = number | boolean | string;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** At most 20 digits: every 64-bit integer fits, and no hostile string makes a huge BigInt. */
const DECIMAL = /^-?[0-9]{1,20}$/;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** An integer as the API writes it: a JSON number within ±(2^53−1), else a decimal string. */
export function integerElement(value: bigint): number | string {
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
}

type ElementCheck = (value: unknown) => TensorElement | undefined;

function intCheck(min: bigint, max: bigint): ElementCheck {
  const low = Math.max(Number(min), Number.MIN_SAFE_INTEGER);
  const high = Math.min(Number(max), Number.MAX_SAFE_INTEGER);
  return (v) => {
    if (typeof v === "number") return Number.isInteger(v) && v >= low && v <= high ? v : undefined;
    if (typeof v !== "string" || !DECIMAL.test(v)) return undefined;
    const n = BigInt(v);
    return n >= min && n <= max ? integerElement(n) : undefined;
  };
}

function checkOf(facts: DatatypeFacts): ElementCheck {
  switch (facts.kind) {
    case "bool":
      return (v) => (typeof v === "boolean" ? v : undefined);
    case "bytes":
      return (v) => (typeof v === "string" && BASE64.test(v) ? v : undefined);
    case "float":
      // NaN fails the comparison too.
      return (v) => (typeof v === "number" && Math.abs(v) < facts.overflow ? v : undefined);
    case "int":
      return intCheck(facts.min, facts.max);
  }
}

function expectationOf(name: Datatype, facts: DatatypeFacts): string {
  switch (facts.kind) {
    case "bool":
      return "must be a boolean";
    case "bytes":
      return "must be a base64 string";
    case "float":
      return Number.isFinite(facts.overflow)
        ? `must be a finite number within ${name} range (±${facts.largest})`
        : "must be a finite number";
    case "int": {
      const range = `must be an integer in ${name} range (${facts.min} to ${facts.max})`;
      if (facts.max <= MAX_SAFE) return range;
      return `${range}: a JSON number within ±${Number.MAX_SAFE_INTEGER}, else a decimal string (JSON numbers past that are rounded when parsed)`;
    }
  }
}

const CHECKS = Object.fromEntries(Datatype.options.map((name) => [name, checkOf(DATATYPES[name])])) as Record<
  Datatype,
  ElementCheck
>;
const EXPECTATIONS = Object.fromEntries(
  Datatype.options.map((name) => [name, expectationOf(name, DATATYPES[name])]),
) as Record<Datatype, string>;

/**
 * `value` in its canonical form as an element of `datatype` (an integer given as a decimal string
 * within ±(2^53−1) becomes a number), or undefined when it is none.
 */
export function canonicalElement(datatype: Datatype, value: unknown): TensorElement | undefined {
  return CHECKS[datatype](value);
}

/** What an element of `datatype` must be, for the message of one that is not ("must be a boolean"). */
export function elementExpectation(datatype: Datatype): string {
  return EXPECTATIONS[datatype];
}

/** The zero of `datatype` in JSON form (false, 0, or the empty string's base64): what warm-up runs are made of. */
export function zeroElement(datatype: Datatype): TensorElement {
  const kind = DATATYPES[datatype].kind;
  return kind === "bool" ? false : kind === "bytes" ? "" : 0;
}
