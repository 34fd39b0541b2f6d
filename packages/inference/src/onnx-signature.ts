import * as ort from "onnxruntime-node";
import type { Datatype } from "@inferline/contracts";
import { datatypeOf } from "./tensors.ts";

/** One input or output of an ONNX graph as onnxruntime reads it. */
export interface GraphTensor {
  name: string;
  /** The API datatype, or undefined for a type the API has none for (uint16, uint64, a sequence…). */
  datatype: Datatype | undefined;
  /** onnxruntime's own name of the type ("float32", "string"…), or "non-tensor". */
  onnxType: string;
  /** Dimensions; a symbolic or unknown one ("batch", "p2o.DynamicDimension.0") is -1. */
  shape: number[];
}

export interface GraphSignature {
  inputs: GraphTensor[];
  outputs: GraphTensor[];
}

/**
 * The inputs and outputs an ONNX file declares (onnxruntime-node's inputMetadata/outputMetadata),
 * read by creating a session and releasing it at once: what `inferline models add` writes a
 * manifest from and `models check` compares one with.
 */
export async function readOnnxSignature(file: string): Promise<GraphSignature> {
  const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4, graphOptimizationLevel: "disabled" });
  try {
    return { inputs: session.inputMetadata.map(graphTensor), outputs: session.outputMetadata.map(graphTensor) };
  } finally {
    await session.release();
  }
}

function graphTensor(meta: ort.InferenceSession.ValueMetadata): GraphTensor {
  if (!meta.isTensor) return { name: meta.name, datatype: undefined, onnxType: "non-tensor", shape: [] };
  return {
    name: meta.name,
    datatype: datatypeOf(meta.type),
    onnxType: meta.type,
    shape: meta.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)),
  };
}
