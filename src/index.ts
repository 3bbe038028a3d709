/**
 * The public API of saco: what a service needs to read logs, train a model, store it, plan a
 * campaign and decide per user, with every public type and error class. Internals live in
 * subpaths: `saco/sy` (the synthetic environment) and `saco/native` (the binding's wrappers).
 *
 * Importing this file must stay cheap (README: import time, measured by `npm run bench --
 * --only=import`): DuckDB, onnxruntime, Piscina and tfjs load on first use. The functions
 * whose modules pull DuckDB in are thin wrappers that import their module on the first call;
 * everything else is re-exported.
 */
import type { DataSchema } from './data/schema.js';
import { loadSchemaFile as loadSchemaFileImpl, parseSchema as parseSchemaImpl } from './data/schema.js';
import type { IngestOptions, IngestReport, TrajectoryReadOptions } from './data/ingest.js';
import type { InspectOptions, InspectReport } from './data/inspect.js';
import type { InteractionLog } from './data/log.js';
import type { BuildOptions, SplitOptions, Trajectories } from './data/trajectories.js';
import { buildTrajectories as buildTrajectoriesImpl, splitByUser as splitByUserImpl } from './data/trajectories.js';
import type { CodtModel } from './model/artifact.js';
import { loadNativeModel as loadNativeModelImpl, type NativeModel, type NativeModelOptions } from './native/index.js';

// errors
export { SacoError, DataError, SchemaError, ArgumentError, NativeError, InferenceError, type DataLocation } from './errors.js';
export { ModelFileError } from './model/onnx.js';
export { TrainingDivergedError } from './model/train.js';
export { CheckpointError } from './model/checkpoint.js';

// data
export type { InteractionLog, ActionEncoding, CategoricalEncoding } from './data/log.js';
export type { Trajectories, BuildOptions, SplitOptions } from './data/trajectories.js';
export { DEFAULT_SCHEMA, type DataSchema, type ActionColumn, type CostPerAction } from './data/schema.js';
export type { IngestOptions, IngestReport, TrajectoryReadOptions } from './data/ingest.js';
export type { InspectReport, ColumnStats, NumberSummary } from './data/inspect.js';
export type { SyConfig, SyOptions, ActionDimConfig, LoggingPolicy } from './data/synth.js';

// model
export { CODT_DEFAULTS, CODT_VARIANTS, type CodtConfig, type CodtVariant } from './model/config.js';
export { readOnnx, writeOnnx, encodeOnnx, decodeOnnx } from './model/onnx.js';
export { checkDataMatchesModel, type CodtModel, type ModelMeta, type TrainingInfo } from './model/artifact.js';
export type { Normalization, RoundMoments, TargetTable } from './model/stats.js';
export type { Params } from './model/params.js';
export type { EpochRecord } from './model/checkpoint.js';
export { TRAINER_CHOICES, TRAIN_DEFAULTS, type TrainOptions, type TrainResult, type TrainProgress, type TrainerChoice, type TrainerInfo } from './model/train.js';
export type { TrainEngine, EngineSpec, AdamWSettings, OptimizerState, CodtBatch, ForwardInputs } from './model/types.js';
export type { BackendChoice } from './model/backend.js';
export { trainCodt, type SacoTrainOptions, type SacoTrainResult } from './policy/train.js';

// native, onnxruntime, solve
export type { NativeModel, NativeModelOptions, NativePrecision } from './native/index.js';
export { OrtSession, OrtPool, type OrtPoolOptions } from './infer/ort.js';
export { solve, decide, decideSync, decisionCache } from './solve/index.js';
export type { DecisionCacheStats } from './native/index.js';
export type { SolveUsers, SolveOptions, SolveResult, SolveProgress, EnvChoice, DecideOptions, Decision, DecisionHistory, Budget, PolicyName, SearchMethodName } from './solve/index.js';
export { writePlan, type PlanLabels, type PlanDetails } from './solve/index.js';
export { POLICIES, POLICY_NAMES, type PolicyDefinition } from './policy/registry.js';

/** Imports a module on the first call; later calls skip the loader's per-import work (decide() is ~50 µs). */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let module: Promise<T> | undefined;
  return () => (module ??= load());
}
const ingestModule = once(() => import('./data/ingest.js'));
const writeModule = once(() => import('./data/write.js'));
const inspectModule = once(() => import('./data/inspect.js'));



/**
 * Reads an interaction log (.csv, .csv.gz, .tsv or .parquet, read with DuckDB) into memory,
 * validating every row against the schema.
 *
 * @throws {ArgumentError} code `ARGUMENT_FORMAT` for an unknown file extension.
 * @throws {DataError} naming the file, row and column of a bad value, a missing file or an empty one (unless `skipBadRows`).
 * @throws {SchemaError} when the schema names columns the file does not have.
 * @example
 * const { log, report } = await readLog('events.parquet', { schema: loadSchemaFile('schema.json') });
 * console.log(`${report.users} users, ${report.rowsUsed} rows`);
 */
export async function readLog(file: string | readonly string[], options: IngestOptions = {}): Promise<{ log: InteractionLog; report: IngestReport }> {
  return (await ingestModule()).readLog(file, options);
}

/**
 * Reads an interaction log and builds its trajectories (states, actions, RTG, CTG, mask per
 * user and round): `readLog` then `buildTrajectories`.
 *
 * @throws {ArgumentError} for an unknown file extension or a bad `gamma`.
 * @throws {DataError} naming the file, row and column of a bad value (see `readLog`).
 * @throws {SchemaError} when the schema names columns the file does not have.
 * @example
 * const { trajectories } = await readTrajectories('events.csv');
 * const { train, test } = splitByUser(trajectories, { testFraction: 0.2, seed: 1 });
 */
export async function readTrajectories(file: string | readonly string[], options: IngestOptions & BuildOptions & TrajectoryReadOptions = {}): Promise<{ trajectories: Trajectories; report: IngestReport }> {
  return (await ingestModule()).readTrajectories(file, options);
}

/**
 * Writes a log to `file` (format from the extension: .csv, .csv.gz, .tsv or .parquet), through a
 * temporary file; returns the number of rows written.
 *
 * @throws {ArgumentError} code `ARGUMENT_FORMAT` for an unknown file extension.
 * @throws {Error} DuckDB's error when the file cannot be written.
 * @example
 * const { log } = await readLog('events.csv');
 * await writeLog(log, 'events.parquet');
 */
export async function writeLog(log: InteractionLog, file: string): Promise<number> {
  return (await writeModule()).writeLog(log, file);
}

/**
 * Summarises a log file before ingesting it: columns, types, per-column statistics and what
 * the schema would read.
 *
 * @throws {ArgumentError} for an unknown file extension.
 * @throws {DataError} for a missing or empty file.
 * @example
 * const report = await inspectLog('events.parquet');
 * console.log(report.rows, report.users, report.columns.map((c) => `${c.column}: ${c.role}`));
 */
export async function inspectLog(file: string | readonly string[], schema?: DataSchema, options?: InspectOptions): Promise<InspectReport> {
  return (await inspectModule()).inspectLog(file, schema, options);
}

/**
 * Checks the shape of a parsed JSON schema (which columns are the user, the time, the states,
 * the actions, reward and cost) and normalises its shorthands.
 *
 * @throws {SchemaError} naming the field that is unknown, missing or of the wrong shape.
 * @example
 * const schema = parseSchema({ user: 'customer', time: 'week', reward: 'spend', cost: 'coupon_cost' });
 */
export function parseSchema(raw: unknown, origin?: string): DataSchema {
  return parseSchemaImpl(raw, origin);
}

/**
 * Reads and parses a schema JSON file (see `parseSchema`).
 *
 * @throws {SchemaError} code `SCHEMA_UNREADABLE` or `SCHEMA_NOT_JSON`, or naming a bad field.
 * @example
 * const { trajectories } = await readTrajectories('events.csv', { schema: loadSchemaFile('schema.json') });
 */
export function loadSchemaFile(file: string): DataSchema {
  return loadSchemaFileImpl(file);
}

/**
 * Builds padded trajectories (states, actions, RTG, CTG, mask) from a log whose
 * (user, round) pairs are unique.
 *
 * @throws {ArgumentError} for a `gamma` outside (0, 1].
 * @example
 * const { log } = await readLog('events.csv');
 * const trajectories = buildTrajectories(log, { gamma: 1 });
 */
export function buildTrajectories(log: InteractionLog, options?: BuildOptions): Trajectories {
  return buildTrajectoriesImpl(log, options);
}

/**
 * Seeded split by user: same seed, same split; `testFraction` of the users go to `test`.
 *
 * @throws {ArgumentError} for a `testFraction` outside [0, 1].
 * @example
 * const { train, test } = splitByUser(trajectories, { testFraction: 0.2, seed: 1 });
 */
export function splitByUser(trajectories: Trajectories, options?: SplitOptions): { train: Trajectories; test: Trajectories } {
  return splitByUserImpl(trajectories, options);
}

/**
 * Loads a model's weights once into the process-wide native pool, shared by every thread and
 * worker_thread; pass the handle to `solve` and `decide`, and `unload()` it when done (GC
 * also frees it). `options.precision` 'bf16' computes the transformer layers' products in
 * bfloat16 (AMX's tiles where the CPU has them: a solve ~1.4x faster, 99.9% of decisions the
 * same on SY); the default 'fp32' is what the tests hold against ONNX Runtime.
 *
 * @throws {SacoError} code `NATIVE_MISSING` when the native core is not built.
 * @throws {ArgumentError} when the model's config or weights are inconsistent.
 * @example
 * const model = loadNativeModel(readOnnx('codt.onnx'));
 * try { await decide({ model, lambda: 0.4, state }); } finally { model.unload(); }
 */
export function loadNativeModel(model: CodtModel, options: NativeModelOptions = {}): NativeModel {
  return loadNativeModelImpl(model, options);
}


// the paper's comparison (saco eval): loaded on the first call (it reads logs and renders charts)
export type { EvaluateOptions, EvaluateResult, EvalProgress } from './eval/run.js';
export type { EvalReport, ReportFiles } from './eval/report.js';
const evalModule = once(() => import('./eval/run.js'));

/**
 * Runs the paper's comparison: every method (SACO, its ablations, Forest, Bandit, CMDP25/50/75,
 * DFCL, Random, Best arm, No coupon, and the Oracle on SY) trained or fitted on the training
 * users and run at every budget and seed on the test users, in SY's truth or in the learned
 * simulator of a log; writes report.json, report.md and the charts to `out`, resuming from what
 * is there (see `saco eval`).
 *
 * @throws {ArgumentError} before any work for an unknown method (naming the known ones), a budget ≤ 0, an unwritable `out`.
 * @throws {SchemaError} / {DataError} when `schema` does not read the log.
 * @example
 * const { report, files } = await evaluate({ data: 'sy', out: 'eval-sy', methods: ['saco', 'dfcl', 'oracle'], budgets: ['0.2x', '0.5x'] });
 * console.log(files.markdown, report.perBudget.length);
 */
export async function evaluate(options: import('./eval/run.js').EvaluateOptions): Promise<import('./eval/run.js').EvaluateResult> {
  return (await evalModule()).evaluate(options);
}

// off-policy evaluation of plans on logs whose propensities are known (randomised, or logged: schema `propensity`)
export { loggingPropensities, type PropensitySource } from './sim/features.js';
export { offPolicyEstimates, uniformPropensities, deterministicTargetProbabilities, factoredProbabilities, type OpeLog, type OpeOptions, type OpeResult, type OpeEstimate, type OpeEstimates } from './eval/ope.js';
export { doublyRobustEstimates, predictionsFromActions, outcomeTable, predictionsFor, type DrLog, type DrResult, type DrEstimates, type OutcomePredictions, type OutcomeTable, type TargetSpec } from './eval/dr.js';

// batch decisions for every user of a log (DuckDB loads on the first call)
export type { DecideBatchOptions, BatchDecisions, CurrentStates } from './solve/decide-batch.js';
const decideBatchModule = once(() => import('./solve/decide-batch.js'));

/**
 * Every user's next-round coupon from their logged history, in batched native calls: the
 * batch job a platform runs before each round (`saco decide`).
 *
 * @throws {ArgumentError} for a λ outside the model's range or a history beyond its context.
 * @throws {DataError} / {SchemaError} when the log does not fit the model (missing state columns, unseen action values).
 * @example
 * const { trajectories } = await readHistoryForModel('logs.parquet', model.meta);
 * const next = await decideBatch({ model, lambda: plan.lambda, history: trajectories });
 * await writeDecisions(next, 'next.csv');
 */
export async function decideBatch(options: import('./solve/decide-batch.js').DecideBatchOptions): Promise<import('./solve/decide-batch.js').BatchDecisions> {
  return (await decideBatchModule()).decideBatch(options);
}

/**
 * Reads a log for a model's decisions: the model's state columns and action values (an action
 * value the model never saw is a DataError naming its row), categories recoded to its levels.
 *
 * @throws {DataError} / {SchemaError} when the log does not fit the model.
 */
export async function readHistoryForModel(
  file: string | readonly string[],
  meta: import('./model/artifact.js').ModelMeta,
  options?: Parameters<typeof import('./solve/decide-batch.js').readHistoryForModel>[2],
): ReturnType<typeof import('./solve/decide-batch.js').readHistoryForModel> {
  return (await decideBatchModule()).readHistoryForModel(file, meta, options);
}

/**
 * Every user's state for the round to decide, from a file of current states (the user column
 * and the model's state columns, one row per user), read as the log is read; history users
 * without a row keep their last logged state, users of the file without a history are added
 * at their round 0. Pass `.history` and `.states` to decideBatch.
 *
 * @throws {ArgumentError} when the schema has no user column (rows could not be matched to users).
 * @throws {DataError} / {SchemaError} when the file does not fit the model.
 * @example
 * const now = await readCurrentStates('this-week.csv', model.meta, trajectories, { schema });
 * const next = await decideBatch({ model, lambda, history: now.history, states: now.states });
 */
export async function readCurrentStates(
  file: string | readonly string[],
  meta: import('./model/artifact.js').ModelMeta,
  history: import('./data/trajectories.js').Trajectories,
  options?: Parameters<typeof import('./solve/decide-batch.js').readCurrentStates>[3],
): ReturnType<typeof import('./solve/decide-batch.js').readCurrentStates> {
  return (await decideBatchModule()).readCurrentStates(file, meta, history, options);
}

/**
 * Writes batch decisions as CSV or Parquet (by extension), through a temporary file.
 *
 * @throws {ArgumentError} for an unknown extension or an unwritable path.
 * @example
 * await writeDecisions(await decideBatch({ model, lambda, history: trajectories }), 'next.parquet');
 */
export async function writeDecisions(decisions: import('./solve/decide-batch.js').BatchDecisions, file: string): Promise<void> {
  return (await decideBatchModule()).writeDecisions(decisions, file);
}

// beyond one machine: the λ search over shards of users, in process or on BullMQ workers
export { solveSharded, startClusterWorker, ClusterError } from './cluster/index.js';

// the learned offline simulator: plan on your own users (solve({ env: { kind: 'sim', simulator } }))
export { fitSimulator, readSimulator, writeSimulator, loadSimulator, simUsers, Simulator } from './sim/simulator.js';
export { fitOutcomeModel, predictOutcomes, crossFitOutcomes, loadOutcomeModel, OutcomeModel } from './sim/outcome.js';
