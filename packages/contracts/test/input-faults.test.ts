import { describe, expect, it } from "vitest";
import { isInputFault } from "@inferline/contracts";

describe("isInputFault", () => {
  it("blames the input for what the model did with it, and nothing else", () => {
    for (const code of [
      "inference_error",
      "invalid_input",
      "result_too_large",
      "inference_timeout",
      "inference_crashed",
    ])
      expect(isInputFault(code), code).toBe(true);
    for (const code of [
      "retries_exhausted",
      "inference_unavailable",
      "model_not_served",
      "deadline_exceeded",
      "some_new_code",
      "",
    ])
      expect(isInputFault(code), code).toBe(false);
  });
});
