/** The training engine: programs, host state, row-sparse embeddings, the step driver. */
export * from "./model.js";
export * from "./program.js";
export * from "./state.js";
export * from "./sparse.js";
export * from "./trainer.js";
