/**
 * The one place that loads the native binary (build/Release/saco.node) and the typed
 * wrappers around it. Arguments are validated here first (typed errors) and again in C++.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SacoError } from '../errors.js';
import { allocateSyLog, resolveSyConfig, type SyConfig, type SyLog, type SyOptions, type SyWeights } from '../data/synth.js';
import type { CodtModel, ModelMeta } from '../model/artifact.js';
import type { CodtBatch, ForwardInputs } from '../model/codt-tfjs.js';
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
}

export interface NativeRolloutSpec {
  env: SyConfig;
  rounds: number;
  /** Infinity: no budget. */
  budget: number;
  policy: 'codt' | 'random' | 'oracle';
  lambda: number;
  model?: number;
  userIds: Uint32Array;
  /** [users, env.features] static features; omitted: drawn from the env seed by user id. */
  features?: Float64Array;
  recordPlan?: boolean;
  threads?: number;
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
}

export interface NativeSearchResult {
  lambda: number;
  plan: NativeRolloutResult;
  rollouts: number;
  feasible: boolean;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  trace: Array<{ lambda: number; revenue: number; cost: number }>;
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

/** One tensor's finite-difference check (native/gradcheck.h). */
export interface GradCheckRow {
  tensor: string;
  maxAbsError: number;
  maxAbsGrad: number;
  checked: number;
}

type NativeBuffer = 'params' | 'm' | 'v';

/** The raw binding, as exported by native/addon.cc. */
interface NativeBinding {
  loadModel(meta: Pick<ModelMeta, 'config' | 'normalization' | 'targets'>, params: Record<string, Float32Array>): number;
  unloadModel(id: number): boolean;
  modelCount(): number;
  /** A Promise, or the result itself for one user's few rounds (microseconds of work). */
  codtForward(id: number, inputs: NativeForwardInputs, mode: NativeForwardMode): Promise<Float32Array> | Float32Array;
  rollout(spec: NativeRolloutSpec): Promise<NativeRolloutResult>;
  searchLambda(spec: NativeRolloutSpec, search: NativeSearchSpec): Promise<NativeSearchResult>;
  synthSY(config: object, out: { states: Float64Array; actions: Int32Array; cost: Float64Array; reward: Float64Array; purchaseProb: Float64Array }): Promise<void>;
  syWeights(config: object): SyWeights;
  philox4x32(counter: Uint32Array, key: Uint32Array): Uint32Array;
  pmath(name: 'exp' | 'log', values: Float64Array): Float64Array;
  cudaBuilt: boolean;
  cudaDeviceCount(): number;
  trainerCreate(meta: { config: CodtConfig; normalization: Normalization }, params: Record<string, Float32Array>, options: NativeTrainerOptions): number;
  trainerStep(id: number, batch: CodtBatch, lr: number, step: number, dropoutSeed: number): Promise<{ loss: number; gradNorm: number }>;
  trainerEvaluate(id: number, batch: CodtBatch): Promise<{ lossSum: number; weightSum: number }>;
  trainerGradients(id: number, batch: CodtBatch, training: boolean, dropoutSeed: number): Promise<{ loss: number; grads: Record<string, Float32Array> }>;
  trainerRead(id: number, what: NativeBuffer): Record<string, Float32Array>;
  trainerWrite(id: number, what: NativeBuffer, values: Record<string, Float32Array>): void;
  trainerDispose(id: number): boolean;
  gradCheck(what: string, seed: number): GradCheckRow[];
  gradCheckNames: string[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
// src/native/index.ts and dist/native/index.js both sit two levels below the package root.
const packageRoot = path.resolve(here, '..', '..');

let binding: NativeBinding | undefined;

/** Where the binary is looked for: $SACO_NATIVE_PATH, else build/Release/saco.node. */
export function nativeBinaryPath(): string {
  return process.env.SACO_NATIVE_PATH ?? path.join(packageRoot, 'build', 'Release', 'saco.node');
}

/** Loads the binary once; throws a SacoError that says how to build it when it is missing. */
export function native(): NativeBinding {
  if (binding) return binding;
  const file = nativeBinaryPath();
  if (!existsSync(file)) {
    throw new SacoError('NATIVE_MISSING', `native core not built: ${file} does not exist. Run \`npm run build:native\` (needs cmake, g++, libeigen3-dev, libnlopt-dev).`);
  }
  const require = createRequire(import.meta.url);
  binding = require(file) as NativeBinding;
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
  const log = allocateSyLog(config);
  await native().synthSY(config, log);
  return log;
}

/** The SY weight vectors as drawn by the native core. */
export function syWeightsNative(options: SyOptions = {}): SyWeights {
  return native().syWeights(resolveSyConfig(options));
}

/** Philox4x32-10 in C++ (for known-answer tests). */
export function philox4x32Native(counter: readonly number[], key: readonly number[]): number[] {
  return Array.from(native().philox4x32(Uint32Array.from(counter), Uint32Array.from(key)));
}

/** saco::pmath::exp / log applied to each value (for cross-language bit tests). */
export function pmathNative(name: 'exp' | 'log', values: Float64Array): Float64Array {
  return native().pmath(name, values);
}

/** A model loaded into the process-wide native pool. Unload it when done (also done on GC). */
export interface NativeModel {
  readonly id: number;
  readonly meta: ModelMeta;
  /** Frees the pool's copy; later calls with this model fail with a typed error. */
  unload(): void;
}

const unloadOnGc = new FinalizationRegistry<number>((id) => {
  binding?.unloadModel(id);
});

/** Loads a model's weights once into the native pool (shared by every thread and worker_thread). */
export function loadNativeModel(model: CodtModel): NativeModel {
  const params: Record<string, Float32Array> = {};
  for (const [name, data] of model.params) params[name] = data;
  const meta = model.meta;
  const id = native().loadModel({ config: meta.config, normalization: meta.normalization, targets: meta.targets }, params);
  const handle = {
    id,
    meta,
    unload: () => {
      unloadOnGc.unregister(handle);
      native().unloadModel(id);
    },
  };
  unloadOnGc.register(handle, id, handle);
  return handle;
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

/** CODT logits [B, T, sum K] from the native engine. */
// async: argument errors the binding throws at once arrive as rejections, like the rest.
export async function nativeForward(model: NativeModel, inputs: NativeForwardInputs, mode: NativeForwardMode = 'incremental'): Promise<Float32Array> {
  return native().codtForward(model.id, inputs, mode);
}

export async function nativeRollout(spec: NativeRolloutSpec): Promise<NativeRolloutResult> {
  return native().rollout(spec);
}

export async function nativeSearchLambda(spec: NativeRolloutSpec, search: NativeSearchSpec): Promise<NativeSearchResult> {
  return native().searchLambda(spec, search);
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

/** Finite-difference checks of the backward passes; `names` lists what can be checked. */
export function nativeGradCheck(what: string, seed: number): GradCheckRow[] {
  return native().gradCheck(what, seed);
}

export function nativeGradCheckNames(): string[] {
  return [...native().gradCheckNames];
}
