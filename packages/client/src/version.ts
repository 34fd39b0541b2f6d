// The version of every published Inferline package; scripts/release.ts bumps it with them.
export const VERSION = "0.1.0";
