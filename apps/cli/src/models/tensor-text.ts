import type { GraphTensor } from "@inferline/inference";

/** A graph tensor as messages name it: `'x' FP32 [-1,3,48,192]` (onnxruntime's type where the API has no datatype for it). */
export function describeTensor(tensor: GraphTensor): string {
  return `'${tensor.name}' ${tensor.datatype ?? tensor.onnxType} [${tensor.shape.join(",")}]`;
}
