import { describe, expect, it } from "vitest";
import { elementCount, flattenData } from "../src/tensor.ts";

describe("elementCount", () => {
  it("is the product of the dimensions", () => {
    expect(elementCount([2, 3, 4])).toBe(24);
    expect(elementCount([7])).toBe(7);
    expect(elementCount([3, 0, 5])).toBe(0);
    expect(elementCount([])).toBe(1); // a scalar
  });
});

describe("flattenData", () => {
  it("returns flat data as it is, whatever its length (the element count is checked elsewhere)", () => {
    const data = [1, 2, 3];
    expect(flattenData(data, [2, 2])).toBe(data);
  });

  it("flattens nested data that matches the shape, row-major", () => {
    expect(
      flattenData(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        [2, 3],
      ),
    ).toEqual([1, 2, 3, 4, 5, 6]);
    expect(flattenData([[[true], [false]]], [1, 2, 1])).toEqual([true, false]);
    expect(flattenData([["aGk="]], [1, 1])).toEqual(["aGk="]);
    expect(flattenData([[], []], [2, 0])).toEqual([]);
  });

  it.each([
    ["ragged rows", [[1, 2], [3]], [2, 2]],
    ["too many rows", [[1], [2], [3]], [2, 1]],
    [
      "rows of the wrong length",
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      [2, 2],
    ],
    ["nested deeper than the shape", [[[1]], [[2]]], [2, 1]],
    ["a scalar where a row belongs", [[1, 2], 3], [2, 2]],
    ["nesting beside a scalar at the top", [1, [2]], [2]],
  ])("is undefined for %s", (_label, data, shape) => {
    expect(flattenData(data, shape)).toBeUndefined();
  });
});
