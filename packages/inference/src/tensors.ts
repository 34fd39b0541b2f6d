import * as ort from "onnxruntime-node";
import { elementCount, type Datatype, type FlatTensor } from "@inferline/contracts";

type OrtType = ort.Tensor.Type;

/** Every datatype but BYTES, which needs a pre-processor: those that a typed array holds. */
export type NumericDatatype = Exclude<Datatype, "BYTES">;

/** A typed array holding one numeric datatype's elements (FP16 as raw bits, BOOL as 0/1 bytes). */
export type DenseArray = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

type DenseArrayConstructor = { new (length: number): DenseArray };

/** The one map of API datatypes to onnxruntime's tensor types and the typed arrays that hold them. */
const NUMERIC: Record<NumericDatatype, { ort: OrtType; array: DenseArrayConstructor }> = {
  BOOL: { ort: "bool", array: Uint8Array },
  UINT8: { ort: "uint8", array: Uint8Array },
  INT8: { ort: "int8", array: Int8Array },
  INT16: { ort: "int16", array: Int16Array },
  INT32: { ort: "int32", array: Int32Array },
  INT64: { ort: "int64", array: BigInt64Array },
  FP16: { ort: "float16", array: Uint16Array },
  FP32: { ort: "float32", array: Float32Array },
  FP64: { ort: "float64", array: Float64Array },
};

const DATATYPE: Partial<Record<OrtType, NumericDatatype>> = Object.fromEntries(Object.entries(NUMERIC).map(([k, v]) => [v.ort, k as NumericDatatype]));

function numeric(datatype: Datatype): { ort: OrtType; array: DenseArrayConstructor } {
  if (datatype === "BYTES") throw new Error("BYTES inputs need a pre-processor");
  return NUMERIC[datatype];
}

/** onnxruntime's tensor type for an API datatype. */
export function ortType(datatype: Datatype): OrtType {
  return numeric(datatype).ort;
}

/** The API datatype of an onnxruntime tensor type (FP32 for a type the API has no name for). */
export function datatypeOf(type: OrtType): NumericDatatype {
  return DATATYPE[type] ?? "FP32";
}

/** A zeroed typed array of `length` elements of `datatype`. */
export function denseArray(datatype: Datatype, length: number): DenseArray {
  return new (numeric(datatype).array)(length);
}

/** An onnxruntime tensor over `data` as it is (no copy): `data` must be `datatype`'s typed array. */
export function denseTensor(datatype: Datatype, data: DenseArray, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(ortType(datatype), data as ort.Tensor.DataType, dims);
}

/** Concatenates the rows of several same-named tensors along dimension 0 into one ORT tensor. */
export function stackRows(parts: FlatTensor[]): ort.Tensor {
  const first = parts[0]!;
  const rows = parts.reduce((n, p) => n + (p.shape[0] ?? 1), 0);
  const dims = [rows, ...first.shape.slice(1)];
  const out = denseArray(first.datatype, elementCount(dims));
  let o = 0;
  if (out instanceof BigInt64Array) {
    for (const p of parts) for (const v of p.data) out[o++] = BigInt(v);
  } else if (first.datatype === "BOOL") {
    for (const p of parts) for (const v of p.data) out[o++] = v ? 1 : 0;
  } else {
    for (const p of parts) {
      out.set(p.data as number[], o);
      o += p.data.length;
    }
  }
  return denseTensor(first.datatype, out, dims);
}

/** Cuts rows [start, start+count) of an ORT output back into a v2 tensor. */
export function sliceRows(name: string, tensor: ort.Tensor, start: number, count: number): FlatTensor {
  const rowSize = elementCount(tensor.dims.slice(1));
  const raw = tensor.data as ArrayLike<number | bigint | boolean>;
  const data = new Array<number | boolean>(count * rowSize);
  const from = start * rowSize;
  for (let i = 0; i < data.length; i++) {
    const v = raw[from + i]!;
    data[i] = typeof v === "bigint" ? Number(v) : tensor.type === "bool" ? Boolean(v) : v;
  }
  return { name, datatype: datatypeOf(tensor.type), shape: [count, ...tensor.dims.slice(1)], data };
}
