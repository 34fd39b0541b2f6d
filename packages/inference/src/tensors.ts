import { getFloat16, setFloat16 } from "@petamoriken/float16";
import * as ort from "onnxruntime-node";
import {
  elementCount,
  integerElement,
  NonRetriableError,
  type Datatype,
  type FlatTensor,
  type TensorElement,
} from "@inferline/contracts";

type OrtType = ort.Tensor.Type;

/** Every datatype but BYTES (onnxruntime's string tensors): those that a typed array holds. */
export type NumericDatatype = Exclude<Datatype, "BYTES">;

/** A typed array holding one numeric datatype's elements (FP16 as its bits, BOOL as 0/1 bytes). */
export type DenseArray =
  Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

type DenseArrayConstructor = { new (length: number): DenseArray };

/** An element as onnxruntime-node holds it in a tensor's data. */
type OrtElement = number | bigint | string;

/** onnxruntime's side of one datatype of the contracts' table (DATATYPES). */
interface OrtDatatype {
  ort: OrtType;
  /** The typed array that holds its elements; BYTES has none (a string array). */
  array?: DenseArrayConstructor;
  /** An element in its JSON form (validated) as the tensor holds it; absent, the element as it is. */
  toOrt?: (element: TensorElement) => OrtElement;
  /** An element of the tensor in its JSON form; absent, the element as it is. */
  fromOrt?: (element: OrtElement) => TensorElement;
}

const half = new DataView(new ArrayBuffer(2));

/** The bits of the IEEE half float nearest `value` (ties to even). */
function toHalfBits(value: number): number {
  setFloat16(half, 0, value);
  return half.getUint16(0);
}

/** The value of an IEEE half float given by its bits. */
function fromHalfBits(bits: number): number {
  half.setUint16(0, bits);
  return getFloat16(half, 0);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A BYTES element (base64) as the text a string tensor holds. onnxruntime-node passes strings as
 * UTF-8 C strings: bytes that are no UTF-8 text, or a NUL that would cut the string short, are
 * refused rather than changed.
 */
function textOfBase64(element: TensorElement): string {
  let text: string;
  try {
    text = utf8.decode(Buffer.from(element as string, "base64"));
  } catch {
    throw new NonRetriableError(
      "invalid_input",
      "a BYTES element is not UTF-8 text, which the model's string tensors hold",
    );
  }
  if (text.includes("\0"))
    throw new NonRetriableError(
      "invalid_input",
      "a BYTES element holds a NUL byte, which the model's string tensors cannot carry",
    );
  return text;
}

/** The one map of API datatypes to onnxruntime's tensor types, the arrays that hold them and their element conversions. */
const ORT: Record<Datatype, OrtDatatype> = {
  BOOL: { ort: "bool", array: Uint8Array, toOrt: (v) => (v ? 1 : 0), fromOrt: (v) => v !== 0 },
  UINT8: { ort: "uint8", array: Uint8Array },
  INT8: { ort: "int8", array: Int8Array },
  INT16: { ort: "int16", array: Int16Array },
  INT32: { ort: "int32", array: Int32Array },
  INT64: { ort: "int64", array: BigInt64Array, toOrt: (v) => BigInt(v), fromOrt: (v) => integerElement(v as bigint) },
  FP16: {
    ort: "float16",
    array: Uint16Array,
    toOrt: (v) => toHalfBits(v as number),
    fromOrt: (v) => fromHalfBits(v as number),
  },
  FP32: { ort: "float32", array: Float32Array },
  FP64: { ort: "float64", array: Float64Array },
  BYTES: { ort: "string", toOrt: textOfBase64, fromOrt: (v) => Buffer.from(v as string, "utf8").toString("base64") },
};

/** The datatypes a typed array holds: those a dense run takes. */
export const DENSE_DATATYPES: ReadonlySet<Datatype> = new Set(
  Object.entries(ORT).flatMap(([datatype, facts]) => (facts.array ? [datatype as Datatype] : [])),
);

const DATATYPE = new Map<OrtType, Datatype>(
  Object.entries(ORT).map(([datatype, facts]) => [facts.ort, datatype as Datatype]),
);

function arrayOf(datatype: Datatype): DenseArrayConstructor {
  const array = ORT[datatype].array;
  if (!array) throw new Error(`${datatype} has no typed array: onnxruntime holds it as strings`);
  return array;
}

/** onnxruntime's tensor type for an API datatype. */
export function ortType(datatype: Datatype): OrtType {
  return ORT[datatype].ort;
}

/** The API datatype of an onnxruntime tensor type ("float32", "string"…), or undefined for one the API has none for (uint32…). */
export function datatypeOf(type: string): Datatype | undefined {
  return DATATYPE.get(type as OrtType);
}

/** The API datatype of a model output's tensor type: an output of a type the API cannot carry fails its run. */
export function outputDatatype(name: string, type: OrtType): Datatype {
  const datatype = datatypeOf(type);
  if (!datatype) throw new Error(`output ${name} is of onnxruntime type ${type}, which the API has no datatype for`);
  return datatype;
}

/** A zeroed typed array of `length` elements of `datatype`. */
export function denseArray(datatype: NumericDatatype, length: number): DenseArray {
  return new (arrayOf(datatype))(length);
}

/** Sets element `at` of a dense column of `datatype` to a (validated) JSON element: FP16 rounded to its bits, INT64 exact. */
export function setDenseElement(
  datatype: NumericDatatype,
  column: DenseArray,
  at: number,
  element: TensorElement,
): void {
  const toOrt = ORT[datatype].toOrt;
  (column as unknown as OrtElement[])[at] = toOrt ? toOrt(element) : (element as number);
}

/** An onnxruntime tensor over `data` as it is (no copy): `data` must be `datatype`'s typed array. */
export function denseTensor(datatype: NumericDatatype, data: DenseArray, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(ortType(datatype), data as ort.Tensor.DataType, dims);
}

/** Elements [from, from + count) of onnxruntime data of `datatype`, in their JSON form. */
export function jsonElements(
  datatype: Datatype,
  data: ArrayLike<OrtElement>,
  from: number,
  count: number,
): TensorElement[] {
  const fromOrt = ORT[datatype].fromOrt;
  const out = new Array<TensorElement>(count);
  for (let i = 0; i < count; i++) {
    const v = data[from + i]!;
    out[i] = fromOrt ? fromOrt(v) : (v as number);
  }
  return out;
}

/** Concatenates the rows of several same-named tensors along dimension 0 into one ORT tensor. */
export function stackRows(parts: FlatTensor[]): ort.Tensor {
  const first = parts[0]!;
  const rows = parts.reduce((n, p) => n + (p.shape[0] ?? 1), 0);
  const dims = [rows, ...first.shape.slice(1)];
  const { array, toOrt } = ORT[first.datatype];
  const out: DenseArray | string[] = array ? new array(elementCount(dims)) : new Array<string>(elementCount(dims));
  let o = 0;
  if (toOrt) {
    const slots = out as OrtElement[];
    for (const p of parts) for (const v of p.data) slots[o++] = toOrt(v);
  } else {
    for (const p of parts) {
      (out as Exclude<DenseArray, BigInt64Array>).set(p.data as number[], o);
      o += p.data.length;
    }
  }
  return new ort.Tensor(ortType(first.datatype), out, dims);
}

/** Cuts rows [start, start+count) of an ORT output back into a v2 tensor. */
export function sliceRows(name: string, tensor: ort.Tensor, start: number, count: number): FlatTensor {
  const rowSize = elementCount(tensor.dims.slice(1));
  const datatype = outputDatatype(name, tensor.type);
  const data = jsonElements(datatype, tensor.data, start * rowSize, count * rowSize);
  return { name, datatype, shape: [count, ...tensor.dims.slice(1)], data };
}

/**
 * An output's data as the dense path hands it on: typed arrays as onnxruntime gives them, but
 * FP16 as float32 values (each half float is one exactly) and BYTES as base64 strings.
 */
export function denseOutputData(datatype: Datatype, data: ArrayLike<OrtElement>): ArrayLike<number | bigint | string> {
  if (datatype === "FP16") return Float32Array.from(data as Uint16Array, fromHalfBits);
  if (datatype === "BYTES") return jsonElements(datatype, data, 0, data.length) as string[];
  return data;
}
