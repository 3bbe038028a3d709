/**
 * `saco/sy`: the synthetic SY environment (DESIGN.md section 3), for generating data, testing
 * against a known ground truth and planning in it. Its TypeScript reference equations are the
 * ones the native environment is held to bit for bit.
 */
export {
  SY_DEFAULTS,
  SY_BUNDLE_DIMS,
  resolveSyConfig,
  generateSyReference,
  syWeights,
  syUserConstants,
  syCouponValue,
  syPurchaseProbability,
  syStateNames,
  syInitialUser,
  syObserve,
  syPurchaseDraw,
  syStep,
  type SyConfig,
  type SyOptions,
  type SyLog,
  type SyWeights,
  type SyUser,
  type SyUserState,
  type SyStepResult,
  type ActionDimConfig,
  type LoggingPolicy,
} from './data/synth.js';
export { syLogToInteractionLog } from './data/log.js';
export { generateSy } from './native/index.js';
export { syEnvForModel } from './solve/index.js';
