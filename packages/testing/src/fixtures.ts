/** One sample of each Iris species, from the data set (features in cm). */
export const IRIS_SAMPLES = {
  setosa: [5.1, 3.5, 1.4, 0.2],
  versicolor: [7.0, 3.2, 4.7, 1.4],
  virginica: [6.3, 3.3, 6.0, 2.5],
} as const;

export function irisInput(rows: ReadonlyArray<readonly number[]>) {
  return { name: "features", datatype: "FP32", shape: [rows.length, 4], data: rows.flat() };
}

export function irisJob(
  rows: ReadonlyArray<readonly number[]> = [IRIS_SAMPLES.setosa],
  extra: Record<string, unknown> = {},
) {
  return { model: "iris", inputs: [irisInput(rows)], ...extra };
}
