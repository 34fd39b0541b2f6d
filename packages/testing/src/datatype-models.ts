import fs from "node:fs";
import path from "node:path";
import onnxProto from "onnx-proto";
import { Datatype, type TensorElement } from "@inferline/contracts";

const { onnx } = onnxProto;
const ONNX = onnx.TensorProto.DataType;

/** ONNX's element type of each API datatype. */
const ONNX_TYPES: Record<Datatype, number> = {
  BOOL: ONNX.BOOL,
  UINT8: ONNX.UINT8,
  INT8: ONNX.INT8,
  INT16: ONNX.INT16,
  INT32: ONNX.INT32,
  INT64: ONNX.INT64,
  FP16: ONNX.FLOAT16,
  FP32: ONNX.FLOAT,
  FP64: ONNX.DOUBLE,
  BYTES: ONNX.STRING,
};

/** Elements per row of every echo model. */
export const ECHO_WIDTH = 4;

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");

/**
 * One row of each datatype: what a request sends (`input`, in the canonical JSON form validation
 * gives), what the echo model's `y` must answer, and the text onnxruntime's Cast to string makes of
 * what the model saw (`seen`: so a value that reached the model wrong shows even if it came back
 * "right"). The edges of each type: FP16 0.5, -2.25, 65504; INT64 2^53+1, -2^63, 2^63-1; UINT8 255.
 */
export const DATATYPE_SAMPLES: Record<Datatype, { input: TensorElement[]; y: TensorElement[]; seen: string[] }> = {
  BOOL: { input: [true, false, true, false], y: [true, false, true, false], seen: ["1", "0", "1", "0"] },
  UINT8: { input: [0, 1, 128, 255], y: [0, 1, 128, 255], seen: ["0", "1", "128", "255"] },
  INT8: { input: [-128, -1, 0, 127], y: [-128, -1, 0, 127], seen: ["-128", "-1", "0", "127"] },
  INT16: { input: [-32768, -2, 3, 32767], y: [-32768, -2, 3, 32767], seen: ["-32768", "-2", "3", "32767"] },
  INT32: {
    input: [-2147483648, -5, 7, 2147483647],
    y: [-2147483648, -5, 7, 2147483647],
    seen: ["-2147483648", "-5", "7", "2147483647"],
  },
  INT64: {
    input: ["9007199254740993", "-9223372036854775808", "9223372036854775807", -3],
    y: ["9007199254740993", "-9223372036854775808", "9223372036854775807", -3],
    seen: ["9007199254740993", "-9223372036854775808", "9223372036854775807", "-3"],
  },
  // 0.1 has no half float: the nearest is 0.0999755859375.
  FP16: {
    input: [0.5, -2.25, 65504, 0.1],
    y: [0.5, -2.25, 65504, 0.0999755859375],
    seen: ["0.5", "-2.25", "65504", "0.099975586"],
  },
  FP32: {
    input: [0.5, -2.25, 3.4028234663852886e38, 0.1],
    y: [0.5, -2.25, 3.4028234663852886e38, Math.fround(0.1)],
    seen: ["0.5", "-2.25", "3.4028235e+38", "0.1"],
  },
  FP64: {
    input: [0.1, -2.5e-300, Number.MAX_VALUE, 1 / 3],
    y: [0.1, -2.5e-300, Number.MAX_VALUE, 1 / 3],
    seen: ["0.1", "-2.5e-300", "1.7976931e+308", "0.33333333"],
  },
  BYTES: {
    input: ["héllo", "", "日本", "two\nlines"].map(base64),
    y: ["héllo", "", "日本", "two\nlines"].map(base64),
    seen: ["héllo", "", "日本", "two\nlines"],
  },
};

/** The echo model of a datatype: `echo-fp16`. */
export function echoModelName(datatype: Datatype): string {
  return `echo-${datatype.toLowerCase()}`;
}

/**
 * An ONNX model with input `x` [batch, ECHO_WIDTH] of `datatype` and two outputs: `y`, the input
 * as it is (Identity), and `seen`, the input cast to strings (BYTES): what the model was given.
 */
function echoModel(datatype: Datatype): Uint8Array {
  const shape = { dim: [{ dimParam: "batch" }, { dimValue: ECHO_WIDTH }] };
  const tensor = (name: string, elemType: number) => ({ name, type: { tensorType: { elemType, shape } } });
  const cast = { name: "to", type: onnx.AttributeProto.AttributeType.INT, i: ONNX.STRING };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: echoModelName(datatype),
      input: [tensor("x", ONNX_TYPES[datatype])],
      output: [tensor("y", ONNX_TYPES[datatype]), tensor("seen", ONNX.STRING)],
      node: [
        { name: "echo", opType: "Identity", input: ["x"], output: ["y"] },
        { name: "seen", opType: "Cast", input: ["x"], output: ["seen"], attribute: [cast] },
      ],
    },
  });
  return Uint8Array.from(onnx.ModelProto.encode(model).finish());
}

/** Writes the echo model of every datatype (echoModelName) into a model repository. */
export function writeEchoModels(dir: string): void {
  for (const datatype of Datatype.options) {
    const name = echoModelName(datatype);
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, "echo.onnx"), echoModel(datatype));
    const manifest = {
      name,
      description: `test model: ${datatype} in, the same out, and the text of what the model saw`,
      versions: [{ version: "1", file: "echo.onnx" }],
      inputs: [{ name: "x", datatype, shape: [-1, ECHO_WIDTH] }],
      outputs: [
        { name: "y", datatype, shape: [-1, ECHO_WIDTH] },
        { name: "seen", datatype: "BYTES", shape: [-1, ECHO_WIDTH] },
      ],
    };
    fs.writeFileSync(path.join(dir, name, "model.json"), JSON.stringify(manifest));
  }
}
