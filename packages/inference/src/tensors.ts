import * as ort from "onnxruntime-node";
import { elementCount, type Datatype, type FlatTensor } from "@inferline/contracts";

type OrtType = ort.Tensor.Type;

const ORT_TYPE: Record<Exclude<Datatype, "BYTES">, OrtType> = {
  BOOL: "bool",
  UINT8: "uint8",
  INT8: "int8",
  INT16: "int16",
  INT32: "int32",
  INT64: "int64",
  FP16: "float16",
  FP32: "float32",
  FP64: "float64",
};

const DATATYPE: Partial<Record<OrtType, Datatype>> = Object.fromEntries(Object.entries(ORT_TYPE).map(([k, v]) => [v, k as Datatype]));

/** Concatenates the rows of several same-named tensors along dimension 0 into one ORT tensor. */
export function stackRows(parts: FlatTensor[]): ort.Tensor {
  const first = parts[0]!;
  if (first.datatype === "BYTES") throw new Error("BYTES inputs need a pre-processor");
  const type = ORT_TYPE[first.datatype];
  const rows = parts.reduce((n, p) => n + (p.shape[0] ?? 1), 0);
  const dims = [rows, ...first.shape.slice(1)];
  const total = elementCount(dims);
  let data: ort.Tensor.DataType;
  if (type === "int64") {
    const out = new BigInt64Array(total);
    let o = 0;
    for (const p of parts) for (const v of p.data) out[o++] = BigInt(v as number);
    data = out;
  } else if (type === "bool") {
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) for (const v of p.data) out[o++] = v ? 1 : 0;
    data = out;
  } else {
    const out = newTypedArray(type, total);
    let o = 0;
    for (const p of parts) {
      out.set(p.data as number[], o);
      o += p.data.length;
    }
    data = out;
  }
  return new ort.Tensor(type, data, dims);
}

function newTypedArray(type: OrtType, n: number): Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array {
  switch (type) {
    case "float32":
      return new Float32Array(n);
    case "float64":
      return new Float64Array(n);
    case "int32":
      return new Int32Array(n);
    case "int16":
      return new Int16Array(n);
    case "int8":
      return new Int8Array(n);
    case "uint8":
      return new Uint8Array(n);
    case "float16":
      return new Uint16Array(n);
    default:
      throw new Error(`unsupported tensor type ${type}`);
  }
}

/** Cuts rows [start, start+count) of an ORT output back into a v2 tensor. */
export function sliceRows(name: string, tensor: ort.Tensor, start: number, count: number): FlatTensor {
  const rowSize = elementCount(tensor.dims.slice(1));
  const raw = tensor.data as ArrayLike<number | bigint | boolean>;
  const data: Array<number | boolean> = new Array(count * rowSize);
  const from = start * rowSize;
  for (let i = 0; i < data.length; i++) {
    const v = raw[from + i]!;
    data[i] = typeof v === "bigint" ? Number(v) : tensor.type === "bool" ? Boolean(v) : v;
  }
  return { name, datatype: DATATYPE[tensor.type] ?? "FP32", shape: [count, ...tensor.dims.slice(1)], data };
}
