/**
 * `saco/native`: the typed wrappers of the native core below what `solve`, `decide` and
 * `trainCodt` use, for benchmarks and custom pipelines: raw forward passes, rollouts and λ
 * searches, the trainer and its TrainEngine, and what the build can use.
 */
export {
  nativeInfo,
  nativeBinaryPath,
  loadNativeModel,
  nativeModelCount,
  nativeBf16Hardware,
  nativeForward,
  nativeForwardOn,
  nativeForwardSync,
  nativeDecisionCache,
  nativePolicies,
  nativeRollout,
  nativeSearchLambda,
  NativeTrainer,
  type NativeModel,
  type NativeModelOptions,
  type NativePrecision,
  type DecisionCacheStats,
  type NativeForwardInputs,
  type NativeForwardMode,
  type NativeForwardResult,
  type NativeProbe,
  type NativeRolloutSpec,
  type NativeRolloutResult,
  type NativeSearchSpec,
  type NativeSearchResult,
  type NativeTrainerOptions,
} from './native/index.js';
export { NativeEngine, createNativeEngine } from './native/train-engine.js';
export { trainCodtWith, type NativeEngineFactory, type TrainEngines } from './model/train.js';
