import { z } from "zod";
import { Datatype, type TensorElement } from "./datatypes.ts";
import { StorableText } from "./text.ts";

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
  data: z.array(z.unknown()).meta({
    description:
      "Elements, flat row-major or nested to the shape. BOOL: true/false; integers: JSON integers or decimal strings " +
      "(INT64 values past ±9007199254740991 must be strings); FP16/FP32/FP64: numbers; BYTES: base64 strings",
  }),
  parameters: z.record(StorableText.max(128), ParameterValue).optional(),
});
export type Tensor = z.infer<typeof Tensor>;

/** A tensor whose data is flat: what is stored and what workers read. */
export interface FlatTensor {
  name: string;
  shape: number[];
  datatype: Datatype;
  data: TensorElement[];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Flattens nested data; returns undefined when the nesting is ragged or deeper than `shape`. */
export function flattenData(data: readonly unknown[], shape: readonly number[]): TensorElement[] | undefined {
  if (!data.some(Array.isArray)) return data as TensorElement[];
  const out: TensorElement[] = [];
  const walk = (node: unknown, depth: number): boolean => {
    if (!Array.isArray(node)) {
      if (depth !== shape.length) return false;
      out.push(node as TensorElement);
      return true;
    }
    if (depth >= shape.length || node.length !== shape[depth]) return false;
    return node.every((child) => walk(child, depth + 1));
  };
  return walk(data, 0) ? out : undefined;
}
