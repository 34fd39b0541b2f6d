// Registers the pre/post-processing adapters that ship with Inferline. Imported for its effect by
// every entry point that loads models (the engine and pool threads).
export {};
