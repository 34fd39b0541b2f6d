import { z } from "zod";
import { StorableText } from "./text.ts";

export const Datatype = z.enum(["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]);
export type Datatype = z.infer<typeof Datatype>;

/** An OIP v2 parameter value: the protocol allows only scalars, which also bounds nesting. */
export const ParameterValue = z.union([StorableText.max(1024), z.number(), z.boolean()]);
export type ParameterValue = z.infer<typeof ParameterValue>;

/**
 * A tensor in the Open Inference Protocol v2 JSON form. `data` is flat row-major, or nested.
 * Unknown fields are refused (a typo should not pass silently).
 */
export const Tensor = z.strictObject({
  name: z.string().min(1).max(128),
  shape: z.array(z.number().int().min(0)).max(8),
  datatype: Datatype,
  // Elements are checked against the model's datatype by validateInputs, which also flattens
  // nested data; a per-element zod union here cost more than the rest of a submit.
  data: z.array(z.unknown()),
  parameters: z.record(StorableText.max(128), ParameterValue).optional(),
});
export type Tensor = z.infer<typeof Tensor>;

/** A tensor whose data is flat: what is stored and what workers read. */
export interface FlatTensor {
  name: string;
  shape: number[];
  datatype: Datatype;
  data: Array<number | boolean | string>;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Flattens nested data; returns undefined when the nesting is ragged or deeper than `shape`. */
export function flattenData(data: readonly unknown[], shape: readonly number[]): Array<number | boolean | string> | undefined {
  if (!data.some(Array.isArray)) return data as Array<number | boolean | string>;
  const out: Array<number | boolean | string> = [];
  const walk = (node: unknown, depth: number): boolean => {
    if (!Array.isArray(node)) {
      if (depth !== shape.length) return false;
      out.push(node as number | boolean | string);
      return true;
    }
    if (depth >= shape.length || node.length !== shape[depth]) return false;
    return node.every((child) => walk(child, depth + 1));
  };
  return walk(data, 0) ? out : undefined;
}
