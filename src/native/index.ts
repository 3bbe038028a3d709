/**
 * The one place that loads the native binary (build/Release/saco.node) and the typed
 * wrappers around it. Callers validate arguments first (solve(), decide(), the trainer);
 * the binding checks them again, and whatever it still refuses arrives here as a
 * `NativeError` with a code (`NATIVE_ARGUMENT`, `NATIVE_STATE`, `NATIVE_FAILURE`).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeError, SacoError } from '../errors.js';
import { resolveSyConfig, syStateNames, type SyConfig, type SyLog, type SyOptions, type SyWeights } from '../data/synth.js';
import type { CodtModel, ModelMeta } from '../model/artifact.js';
import { validateModel } from '../model/validate.js';
import type { CodtBatch, ForwardInputs } from '../model/types.js';
import type { CodtConfig } from '../model/config.js';
import type { Normalization } from '../model/stats.js';

/** Inputs of a forward pass, as in the ONNX graph. */
export type NativeForwardInputs = ForwardInputs;

/** What native rollouts return. */
export interface NativeRolloutResult {
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  revenueByRound: Float64Array;
  costByRound: Float64Array;
  /** [users, rounds, action dims] issued action indices, when recorded. */
  plan?: Int32Array;
  /** What the plan says of each (user, round) besides the action, when recorded (`recordDetails`). */
  details?: NativePlanDetails;
}

/** Per (user, round) of a recorded plan, each [users, rounds] (native/rollout.h `PlanDetails`). */
export interface NativePlanDetails {
  /** The policy's probability of the issued action (native/policy.h `Policy::probability`); NaN: the policy defines none. */
  probability: Float64Array;
  /** The environment's expected reward and cost of the issued action at that round's state; NaN: the environment does not know them. */
  expectedRevenue: Float64Array;
  expectedCost: Float64Array;
  /** 1: the budget withheld the policy's coupon and issued the control action. */
  withheld: Uint8Array;
}

/** The learned simulator as a rollout's environment (native/env_sim.h; src/sim/simulator.ts builds it). */
export interface NativeSimEnv {
  kind: 'sim';
  /** A simulator id (`simCreate`). */
  simulator: number;
  /** Keys every draw, with the user id and round. Default 1. */
  seed?: number;
  /** The round users start at (their history so far in `features`). Default 0. */
  startRound?: number;
  /** Validation on SY only: the Oracle reads SY's true expectations of the simulated states. */
  expectedFrom?: SyConfig;
}

/** A simulator's native part: the outcome model and what was measured when fitting it. */
export interface NativeSimSpec {
  /** Outcome model ids; armModel[k] is the one that answers joint action k. */
  outcomes: number[];
  armModel: number[];
  layout: { stateDim: number; actionSizes: number[]; control: number[]; rounds: number };
  dynamic: number[];
  dynamicMin: number[];
  dynamicMax: number[];
  clock: number[];
  clockValues: number[];
  rewardNoise: number[];
  costNoise: number[];
  maxCost: number[];
  /** [m, cols] design rows on which the compiled trees must equal XGBoost's predictions. */
  checkRows?: Float32Array;
  /** Per outcome model, 1: P(c≠0) is P(r≠0) (the log never had one without the other). */
  sameHurdle?: number[];
}

/** What a simulator trace recorded (native/env_sim.h `SimTrace`). */
export interface NativeSimTrace {
  states: Float32Array;
  rows: Float32Array;
  actions: Int32Array;
  rewards: Float32Array;
  costs: Float32Array;
}

export interface NativeRolloutSpec {
  /** SY's ground truth (an SyConfig, kind 'sy' or absent) or the learned simulator. */
  env: SyConfig | NativeSimEnv;
  rounds: number;
  /** Infinity: no budget. */
  budget: number;
  /** A name of the native policy registry (`nativePolicies()`). */
  policy: string;
  lambda: number;
  model?: number;
  /** A forest id (`nativeForestFit` / `nativeForestLoad`), for the forest policy. */
  forest?: number;
  /** The bandit policy's prior (src/policy/bandit.ts `fitBanditPrior`). */
  bandit?: NativeBanditPrior;
  /** The scored policies' outcome model and its design-row layout (src/policy/scored.ts). */
  scored?: NativeScoredSpec;
  /** The fixed-arm policy's arm and keep probability (src/policy/fixed-arm.ts). */
  fixedArm?: NativeFixedArmSpec;
  userIds: Uint32Array;
  /** SY: [users, env.features] static features, omitted: drawn from the env seed by user id. Simulator: [users, stateDim (+ history columns)] starting states. */
  features?: Float64Array;
  recordPlan?: boolean;
  /** With recordPlan: also record the plan's `details` (for a λ search: on its probes on every user, the final plan among them). Default false. */
  recordDetails?: boolean;
  threads?: number;
  /** CODT: compute a block's round-0 target tokens once (the same for every user of a λ). Default true; the plan is the same bits either way. */
  sharedPrefix?: boolean;
  /** Arrival order of the budget-enforced replay: waves of this many users in id order, round by round within a wave (memory bounded by a wave). 0: round-major over everyone. Default 16384 (so smaller populations are round-major). */
  waveUsers?: number;
  /** Bytes the rollout may hold (0 or absent: what the system has available); over it: NativeError code NATIVE_OUT_OF_MEMORY saying how many users fit. */
  memoryLimit?: number;
  /** With a budget: run the natural rollout first and keep it when the budget rule would withhold nothing on it (it is then the enforced rollout, bit for bit). Default true; false: the enforced replay only. */
  optimistic?: boolean;
}

/** What the scored policies (native/policy_scored.cc) score with. */
export interface NativeScoredSpec {
  /** An OutcomeModel id (src/sim/outcome.ts), or ids of models by joint action (src/sim/arm-outcomes.ts) with `armModel`. */
  outcome: number | number[];
  /** With ids: joint action k is scored by outcome[armModel[k]]. */
  armModel?: number[];
  /** The model's design-row layout (src/sim/features.ts FeatureLayout's numbers). */
  layout: { stateDim: number; actionSizes: number[]; control: number[]; rounds: number };
  /** envAction[j][k]: the environment's index of the model's value k of dimension j; absent: the same indices. */
  envAction?: number[][];
  /** DFCL's decision-focused correction of the model's scores (src/policy/dfcl.ts DfclCorrection); absent or null: the scores as they are. */
  correction?: NativeScoredCorrection | null;
}

/**
 * The correction of the scored policy's scores, per joint action a (native/policy_scored.h
 * ScoredCorrection): r̃_a = r̂_a + reward[a·Q…]·φ_a, c̃_a = ĉ_a + cost[a·Q…]·φ_a, φ_a = [1,
 * (x_j − mean_j)/scale_j for j of columns, with upliftScale: (r̂_a − r̂_control)/upliftScale[0],
 * (ĉ_a − ĉ_control)/upliftScale[1]]. Sizes that disagree: NativeError NATIVE_ARGUMENT naming the field.
 */
export interface NativeScoredCorrection {
  K: number;
  control: number;
  columns: number[];
  mean: number[];
  scale: number[];
  upliftScale?: [number, number];
  /** [K * Q], arm-major, Q = 1 + columns + (upliftScale ? 2 : 0). */
  reward: number[];
  cost: number[];
}

/** The thinned fixed arm (native/policy_fixed_arm.cc): `arm` (environment indices) kept with probability `keep`, by coins keyed by (seed, user, round). */
export interface NativeFixedArmSpec {
  arm: number[];
  keep: number;
  seed?: number;
}

export interface NativeSearchSpec {
  method: 'bisection' | 'slsqp';
  budget: number;
  epsilon?: number;
  lambdaMax?: number;
  maxRollouts?: number;
  maxIterations?: number;
  noise?: number;
  lr?: number;
  seed?: number;
  /** Bisection: bracket on a seeded random subsample, then probes on every user (native/dual.h). Default true. */
  subsample?: boolean;
}

export interface NativeSearchResult {
  lambda: number;
  plan: NativeRolloutResult;
  /** Rollouts on every user. */
  rollouts: number;
  /** Rollouts on the subsample (subsampled bracketing). */
  sampleRollouts: number;
  /** The subsample's size (0: none). */
  sampleUsers: number;
  feasible: boolean;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  /** Every probe; `users` below the population: a subsample's sums scaled to it, `se` the standard error of that spend. */
  trace: Array<{ lambda: number; revenue: number; cost: number; users: number; se?: number }>;
}

/** One arm's logged outcomes (an arm is an action combination, the first dimension slowest). */
export interface NativeBanditArm {
  count: number;
  meanReward: number;
  meanCost: number;
  varReward: number;
  varCost: number;
  /** Covariance of reward and cost. */
  cov: number;
}

/** The bandit's prior: per-arm statistics of a training log, worth `weight` pseudo-observations per arm. */
export interface NativeBanditPrior {
  arms: NativeBanditArm[];
  /** Default 10; Infinity: the log's full count. */
  weight?: number;
  /** Keys the posterior draws (with user and round); default 1. */
  seed?: number;
}

/** Training rows of a causal forest: one per (user, round) unit. */
export interface NativeForestData {
  /** [rows, features] */
  x: Float32Array;
  features: number;
  /** [rows] arm index in [0, arms) */
  arm: Int32Array;
  arms: number;
  /** The no-treatment arm the uplifts are measured against. */
  control: number;
  reward: Float64Array;
  cost: Float64Array;
}

/** How a causal forest grows (native/forest.h); every field optional. */
export interface NativeForestOptions {
  trees?: number;
  sampleFraction?: number;
  honestyFraction?: number;
  /** Features tried per split; 0: min(ceil(√d + 20), d). */
  mtry?: number;
  /** Rows of every arm in each child, on the splitting half. */
  minNodeSize?: number;
  alpha?: number;
  maxDepth?: number;
  bins?: number;
  seed?: number;
  /** 0 or absent: every core. The forest does not depend on it. */
  threads?: number;
}

export interface NativeForestInfo {
  features: number;
  arms: number;
  control: number;
  rows: number;
  trees: number;
  nodes: number;
  leaves: number;
  options: Required<Omit<NativeForestOptions, 'threads'>>;
}

/** One tree: nodes (feature < 0: a leaf, `left` its index), leaf statistics [leaves, arms, (count, Σ reward, Σ cost)], and its two halves' rows. */
export interface NativeForestTree {
  feature: Int32Array;
  threshold: Float32Array;
  left: Int32Array;
  right: Int32Array;
  leaf: Float64Array;
  split: Uint32Array;
  estimate: Uint32Array;
}

/** AdamW, clipping and dropout of a native trainer (the tfjs engine's settings). */
export interface NativeTrainerOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
  dropout: number;
  /** 0 or absent: every core. Results do not depend on it. */
  threads?: number;
}

type NativeBuffer = 'params' | 'm' | 'v';

/** The raw binding, as exported by native/addon.cc. */
interface NativeBinding {
  loadModel(meta: Pick<ModelMeta, 'config' | 'normalization' | 'targets'> & { precision?: NativePrecision }, params: Record<string, Float32Array>): number;
  bf16Hardware(): boolean;
  unloadModel(id: number): boolean;
  modelCount(): number;
  codtForward(id: number, inputs: NativeForwardInputs, mode: NativeForwardMode): Promise<NativeForwardResult>;
  codtForwardSync(id: number, rounds: number, states: Float32Array, rtg: Float32Array, ctg: Float32Array, actionsOneHot: Float32Array, lambda: Float32Array, logits?: Float32Array): Float32Array;
  decisionCache(id: number, capacityBytes?: number): DecisionCacheStats;
  rollout(spec: NativeRolloutSpec): Promise<NativeRolloutResult>;
  searchLambda(spec: NativeRolloutSpec, search: NativeSearchSpec, onProbe?: (probe: NativeProbe) => void): Promise<NativeSearchResult>;
  policyNames(): Array<{ name: string; needsModel: boolean }>;
  synthSY(config: object): Promise<Omit<SyLog, 'config' | 'stateNames'>>;
  syWeights(config: object): SyWeights;
  cudaBuilt: boolean;
  cudaDeviceCount(): number;
  trainerCreate(meta: { config: CodtConfig; normalization: Normalization }, params: Record<string, Float32Array>, options: NativeTrainerOptions): number;
  trainerStep(id: number, batch: CodtBatch, lr: number, step: number, dropoutSeed: number): Promise<{ loss: number; gradNorm: number }>;
  trainerEvaluate(id: number, batch: CodtBatch): Promise<{ lossSum: number; weightSum: number }>;
  trainerGradients(id: number, batch: CodtBatch, training: boolean, dropoutSeed: number): Promise<{ loss: number; grads: Record<string, Float32Array> }>;
  trainerRead(id: number, what: NativeBuffer): Record<string, Float32Array>;
  trainerWrite(id: number, what: NativeBuffer, values: Record<string, Float32Array>): void;
  trainerDispose(id: number): boolean;
  forestFit(data: NativeForestData, options?: NativeForestOptions): Promise<number>;
  forestLoad(bytes: Uint8Array): Promise<number>;
  forestSave(id: number): Promise<Uint8Array>;
  forestPredict(id: number, x: Float32Array): Promise<{ reward: Float64Array; cost: Float64Array }>;
  forestInfo(id: number): NativeForestInfo;
  forestTree(id: number, tree: number): NativeForestTree;
  forestUnload(id: number): boolean;
  forestCount(): number;
  simCreate(spec: NativeSimSpec): number;
  simDispose(id: number): boolean;
  simCount(): number;
  simDesign(spec: { layout: NativeSimSpec['layout']; users: number; rounds: number; states: Float32Array; actions: Int32Array; rewards: Float32Array; costs: Float32Array; mask: Uint8Array }): Promise<Float32Array>;
  simTrace(env: NativeSimEnv, userIds: Uint32Array, features: Float64Array, rounds: number): Promise<NativeSimTrace>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// src/native/index.ts and dist/native/index.js both sit two levels below the package root.
const packageRoot = path.resolve(here, '..', '..');

let binding: NativeBinding | undefined;

/** Where the binary is looked for: $SACO_NATIVE_PATH, else build/Release/<name>. */
export function nativeBinaryPath(name = 'saco.node'): string {
  return name === 'saco.node' && process.env.SACO_NATIVE_PATH ? process.env.SACO_NATIVE_PATH : path.join(packageRoot, 'build', 'Release', name);
}

/** Loads a binary of build/Release; a SacoError says how to build it when it is missing. */
export function loadBinary<T>(name: string): T {
  const file = nativeBinaryPath(name);
  if (!existsSync(file)) {
    throw new SacoError('NATIVE_MISSING', `native core not built: ${file} does not exist. Run \`npm run build:native\` (needs cmake, g++, libeigen3-dev, libnlopt-dev).`);
  }
  return createRequire(import.meta.url)(file) as T;
}

/** Errors of the binding carry a code (native/napi/args.h); they become NativeErrors. */
function wrapNativeError(e: unknown, callerStack?: string): unknown {
  const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  if (e instanceof Error && typeof code === 'string' && code.startsWith('NATIVE_')) {
    const wrapped = new NativeError(code, e.message);
    if (callerStack) wrapped.stack = `${wrapped.name}: ${e.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
    return wrapped;
  }
  return e;
}

/**
 * The binding, with every function's errors turned into NativeErrors: thrown at once, or as
 * the rejection of its promise (then with the caller's stack, not libuv's).
 */
function wrapBinding(raw: NativeBinding): NativeBinding {
  const wrapped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'function') {
      wrapped[key] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    wrapped[key] = (...args: unknown[]) => {
      let out: unknown;
      try {
        out = fn(...args);
      } catch (e) {
        throw wrapNativeError(e);
      }
      if (!(out instanceof Promise)) return out;
      // an async call's caller stack, captured while still in the caller's frame and formatted
      // only if the call fails; a synchronous call's own error has it (capturing it on every
      // call was a twentieth of a microsecond-scale decision)
      const caller = new Error();
      return out.catch((e: unknown) => Promise.reject(wrapNativeError(e, caller.stack)));
    };
  }
  return wrapped as unknown as NativeBinding;
}

/** Loads the binary once. */
export function native(): NativeBinding {
  binding ??= wrapBinding(loadBinary<NativeBinding>('saco.node'));
  return binding;
}

/** What the native build can use: whether CUDA was compiled in and how many GPUs are visible. */
export function nativeInfo(): { cudaBuilt: boolean; cudaDevices: number } {
  const b = native();
  return { cudaBuilt: b.cudaBuilt, cudaDevices: b.cudaDeviceCount() };
}

/** Generates the SY log with the native core (same bits as `generateSyReference`). */
export async function generateSy(options: SyOptions = {}): Promise<SyLog> {
  const config = resolveSyConfig(options);
  const arrays = await native().synthSY(config);
  return { config, stateNames: syStateNames(config.features), ...arrays };
}

/** The SY weight vectors as drawn by the native core. */
export function syWeightsNative(options: SyOptions = {}): SyWeights {
  return native().syWeights(resolveSyConfig(options));
}

/** A model loaded into the process-wide native pool. Unload it when done (also done on GC). */
export interface NativeModel {
  readonly id: number;
  readonly meta: ModelMeta;
  /** The decoder's arithmetic (loadNativeModel's option). */
  readonly precision: NativePrecision;
  /** Frees the pool's copy; later calls with this model fail with a typed error. */
  unload(): void;
}

const unloadOnGc = new FinalizationRegistry<number>((id) => {
  binding?.unloadModel(id);
});

/**
 * The decoder's arithmetic (decisions, rollouts, solves): 'fp32' (the default, what the
 * tests hold against ONNX Runtime) or 'bf16': the transformer layers' products take their
 * weights and inputs rounded to bfloat16 and accumulate in fp32 — on a CPU with AMX (Intel
 * Sapphire Rapids and later) 2-3x the fp32 rate; elsewhere the same values, computed in fp32
 * at fp32 speed. Logits move by ~1e-2, so decisions near a tie can differ from fp32's.
 * The 'full' forward mode stays fp32.
 */
export type NativePrecision = 'fp32' | 'bf16';

/** Options of loadNativeModel. */
export interface NativeModelOptions {
  /** Default 'fp32'. */
  precision?: NativePrecision;
}

/** Loads a model's weights once into the native pool (shared by every thread and worker_thread). */
export function loadNativeModel(model: CodtModel, options: NativeModelOptions = {}): NativeModel {
  validateModel(model);
  const precision = options.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'bf16') throw new NativeError('NATIVE_ARGUMENT', `precision must be 'fp32' or 'bf16', got ${JSON.stringify(precision)}`);
  const params: Record<string, Float32Array> = {};
  for (const [name, data] of model.params) params[name] = data;
  const meta = model.meta;
  const id = native().loadModel({ config: meta.config, normalization: meta.normalization, targets: meta.targets, precision }, params);
  const handle = {
    id,
    meta,
    precision,
    unload: () => {
      unloadOnGc.unregister(handle);
      native().unloadModel(id);
    },
  };
  unloadOnGc.register(handle, id, handle);
  return handle;
}

/** True when this process computes precision 'bf16' on AMX's tiles (else bf16 runs at fp32 speed). */
export function nativeBf16Hardware(): boolean {
  return native().bf16Hardware();
}

/** Number of models in the native pool (for tests and diagnostics). */
export function nativeModelCount(): number {
  return native().modelCount();
}

/**
 * 'full' recomputes the whole sequence on the CPU, 'incremental' decodes token by token with
 * the KV cache, 'cuda' runs the full sequence on a GPU when one is visible (else the CPU).
 */
export type NativeForwardMode = 'full' | 'incremental' | 'cuda';

/** Logits and the device that computed them ('cuda' only when a GPU ran the pass). */
export interface NativeForwardResult {
  logits: Float32Array;
  device: 'cpu' | 'cuda';
}

/** CODT logits [B, T, sum K] from the native engine, and which device computed them. */
// async: argument errors the binding throws at once arrive as rejections, like the rest.
export async function nativeForwardOn(model: NativeModel, inputs: NativeForwardInputs, mode: NativeForwardMode = 'incremental'): Promise<NativeForwardResult> {
  return native().codtForward(model.id, inputs, mode);
}

/** CODT logits [B, T, sum K] from the native engine. */
export async function nativeForward(model: NativeModel, inputs: NativeForwardInputs, mode: NativeForwardMode = 'incremental'): Promise<Float32Array> {
  return (await nativeForwardOn(model, inputs, mode)).logits;
}

/** A model's decision cache: its capacity and the bytes and entries it holds, with its hits and misses so far. */
export interface DecisionCacheStats {
  capacity: number;
  bytes: number;
  entries: number;
  hits: number;
  misses: number;
}

/**
 * The model's decision cache (native/decision_cache.h): the keys and values of the sequences
 * decisions computed (nativeForward 'incremental', nativeForwardSync), so that a user's next
 * round computes only its new tokens. `capacityBytes` sets its size first (default 32 MiB per
 * model; 0 turns it off). Results are the same bits with it or without it.
 */
export function nativeDecisionCache(model: NativeModel, capacityBytes?: number): DecisionCacheStats {
  return capacityBytes === undefined ? native().decisionCache(model.id) : native().decisionCache(model.id, capacityBytes);
}

/**
 * One user's logits (inputs.batch 1), computed on the calling thread: microseconds of work,
 * less than a thread hop. Throws at once, like any synchronous call.
 */
export function nativeForwardSync(model: NativeModel, inputs: NativeForwardInputs, logits?: Float32Array): Float32Array {
  if (inputs.batch !== 1) throw new NativeError('NATIVE_ARGUMENT', `nativeForwardSync computes one user (inputs.batch 1), got ${String(inputs.batch)}: use nativeForward for more`);
  return native().codtForwardSync(model.id, inputs.rounds, inputs.states, inputs.rtg, inputs.ctg, inputs.actionsOneHot, inputs.lambda, logits);
}

export async function nativeRollout(spec: NativeRolloutSpec): Promise<NativeRolloutResult> {
  return native().rollout(spec);
}

/** One probe of the λ search, as it happens. */
export interface NativeProbe {
  lambda: number;
  revenue: number;
  cost: number;
  /** Rollouts so far. */
  rollouts: number;
}

export async function nativeSearchLambda(spec: NativeRolloutSpec, search: NativeSearchSpec, onProbe?: (probe: NativeProbe) => void): Promise<NativeSearchResult> {
  return native().searchLambda(spec, search, onProbe);
}

/** The native policy registry (native/policy_registry.cc), sorted by name. */
export function nativePolicies(): Array<{ name: string; needsModel: boolean }> {
  return native().policyNames();
}

const disposeTrainerOnGc = new FinalizationRegistry<number>((id) => {
  binding?.trainerDispose(id);
});

const toRecord = (params: Map<string, Float32Array>): Record<string, Float32Array> => Object.fromEntries(params);
const toMap = (record: Record<string, Float32Array>): Map<string, Float32Array> => new Map(Object.entries(record));

/**
 * A CODT being trained in C++ (native/trainer.h): weights, gradients and AdamW moments live
 * in the addon; each call copies its batch in, so the work never reads JavaScript memory.
 * One call at a time: await each before the next.
 */
export class NativeTrainer {
  readonly id: number;
  private disposed = false;

  constructor(config: CodtConfig, norm: Normalization, params: Map<string, Float32Array>, options: NativeTrainerOptions) {
    this.id = native().trainerCreate({ config, normalization: norm }, toRecord(params), options);
    disposeTrainerOnGc.register(this, this.id, this);
  }

  /** One clipped AdamW step; the loss is the batch's before the update (NaN: weights unchanged). */
  async step(batch: CodtBatch, lr: number, step: number, dropoutSeed: number): Promise<{ loss: number; gradNorm: number }> {
    return native().trainerStep(this.id, batch, lr, step, dropoutSeed);
  }

  async evaluate(batch: CodtBatch): Promise<{ lossSum: number; weightSum: number }> {
    return native().trainerEvaluate(this.id, batch);
  }

  /** Loss and gradient of every parameter, without an update. */
  async gradients(batch: CodtBatch, training = false, dropoutSeed = 0): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const r = await native().trainerGradients(this.id, batch, training, dropoutSeed);
    return { loss: r.loss, grads: toMap(r.grads) };
  }

  read(what: NativeBuffer): Map<string, Float32Array> {
    return toMap(native().trainerRead(this.id, what));
  }

  write(what: NativeBuffer, values: Map<string, Float32Array>): void {
    native().trainerWrite(this.id, what, toRecord(values));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeTrainerOnGc.unregister(this);
    native().trainerDispose(this.id);
  }
}

/** Fits a multi-arm causal forest (native/forest.h) off the main thread; resolves to its id in the native forest registry. */
export async function nativeForestFit(data: NativeForestData, options: NativeForestOptions = {}): Promise<number> {
  return native().forestFit(data, options);
}

/** Loads a forest from `nativeForestSave` bytes (validated); resolves to its id. */
export async function nativeForestLoad(bytes: Uint8Array): Promise<number> {
  return native().forestLoad(bytes);
}

export async function nativeForestSave(id: number): Promise<Uint8Array> {
  return native().forestSave(id);
}

/** Uplift over control of every arm, [rows, arms], for x [rows, features]. */
export async function nativeForestPredict(id: number, x: Float32Array): Promise<{ reward: Float64Array; cost: Float64Array }> {
  return native().forestPredict(id, x);
}

export function nativeForestInfo(id: number): NativeForestInfo {
  return native().forestInfo(id);
}

/** Tree `tree` of a forest, with the rows of its splitting and estimation halves (for inspection and tests). */
export function nativeForestTree(id: number, tree: number): NativeForestTree {
  return native().forestTree(id, tree);
}

export function nativeForestUnload(id: number): boolean {
  return native().forestUnload(id);
}

/** Forests in the native registry (for tests and diagnostics). */
export function nativeForestCount(): number {
  return native().forestCount();
}
