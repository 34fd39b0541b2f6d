// A module that reads the environment when imported: the probe's own check (import-purity.test.ts).
export const probe = process.env.INFERLINE_PROBE ?? "unset";
