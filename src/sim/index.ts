/**
 * The offline simulator stage (DESIGN.md section 2: fit, check and load the simulator). So far
 * its foundation: the learned outcome model and the design matrix it reads.
 */
export * from './features.js';
export * from './outcome.js';
