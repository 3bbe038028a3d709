/**
 * The public API of saco, in pipeline order: data (synthetic environment, log ingestion,
 * trajectories), model (CODT training, ONNX), native engine, solve/decide.
 */
export { SacoError, DataError, SchemaError, ArgumentError, type DataLocation } from './errors.js';
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
  type SyConfig,
  type SyOptions,
  type SyLog,
  type SyWeights,
  type SyUser,
  type ActionDimConfig,
  type LoggingPolicy,
} from './data/synth.js';
export { syLogToInteractionLog, type InteractionLog, type ActionEncoding, type CategoricalEncoding } from './data/log.js';
export { buildTrajectories, splitByUser, selectUsers, type Trajectories, type BuildOptions, type SplitOptions } from './data/trajectories.js';
export { sampleLambdas, withLambdaCopies, type LambdaOptions } from './data/lambda.js';
export { DEFAULT_SCHEMA, parseSchema, loadSchemaFile, type DataSchema, type ActionColumn, type CostPerAction } from './data/schema.js';
export { readLog, readTrajectories, type IngestOptions, type IngestReport } from './data/ingest.js';
export { writeLog } from './data/write.js';
export { inspectLog, formatInspectReport, type InspectReport } from './data/inspect.js';
export { generateSy, nativeInfo, loadNativeModel, nativeForward, nativeRollout, type NativeModel } from './native/index.js';
export { CODT_DEFAULTS, CODT_VARIANTS, type CodtConfig, type CodtVariant } from './model/config.js';
export { readOnnx, writeOnnx, encodeOnnx, decodeOnnx, ModelFileError } from './model/onnx.js';
export { checkDataMatchesModel, dataFingerprint, type CodtModel, type ModelMeta } from './model/artifact.js';
export { trainCodt, TrainingDivergedError, TRAINER_CHOICES, type TrainOptions, type TrainResult, type TrainerChoice, type TrainerInfo, type EngineSpec } from './model/train.js';
export type { TrainEngine, AdamWSettings, OptimizerState } from './model/engine-tfjs.js';
export { selectBackend, type BackendChoice, type BackendInfo } from './model/backend.js';
export { solve, decide, syEnvForModel, type SolveOptions, type SolveResult, type DecideOptions, type Decision, type Budget } from './solve/index.js';
