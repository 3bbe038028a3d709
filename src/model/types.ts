/**
 * What the model stage shares with the rest of the code without pulling in an engine: the
 * batch and forward-input layouts, the numeric constants every CODT implementation must
 * agree on, and the trainer contract. Importing this file loads nothing (tfjs stays unloaded
 * until a tfjs engine is built).
 */
import type { CodtConfig } from './config.js';
import type { Params } from './params.js';
import type { Normalization } from './stats.js';

/** LayerNorm epsilon of the tfjs reference, the ONNX graph and the native engine. */
export const LN_EPS = 1e-5;
/** Added to masked attention scores (large negative, finite so softmax stays NaN-free). */
export const MASK_VALUE = -1e9;

/** One batch as flat arrays; B = size, T = rounds (<= context). */
export interface CodtBatch {
  size: number;
  rounds: number;
  /** [B, T, stateDim] raw states */
  states: Float32Array;
  /** [B, T] raw return-to-go and cost-to-go */
  rtg: Float32Array;
  ctg: Float32Array;
  /** [B, T, sum K] one-hot of the action of each round (the logged one in training) */
  actionsOneHot: Float32Array;
  /** [B] raw λ */
  lambda: Float32Array;
  /** [B, T] 1 for real rounds */
  mask: Float32Array;
  /** [B, T] per-sample loss weights */
  weights: Float32Array;
}

/** Inputs of one forward pass, as the ONNX graph and the native engine take them. */
export type ForwardInputs = { batch: number; rounds: number } & Pick<CodtBatch, 'states' | 'rtg' | 'ctg' | 'actionsOneHot' | 'lambda'>;

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
}

export const ADAMW_DEFAULTS: AdamWSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4, gradClip: 1.0 };

/** Optimiser state as plain arrays: first and second moments per parameter. */
export interface OptimizerState {
  m: Params;
  v: Params;
}

/** What a trainer backend must do; the orchestration (train.ts) drives it. */
export interface TrainEngine {
  readonly name: string;
  /** One AdamW step at learning rate `lr` (step counts from 1); returns the batch loss before the update (NaN: not finite, weights unchanged). */
  step(batch: CodtBatch, lr: number, step: number, dropoutSeed: number): Promise<number>;
  /** Loss of a batch without dropout and without an update: sum of w·CE and sum of w. */
  evaluate(batch: CodtBatch): Promise<{ lossSum: number; weightSum: number }>;
  readParams(): Params;
  writeParams(params: Params): void;
  readOptimizer(): OptimizerState;
  writeOptimizer(state: OptimizerState): void;
  dispose(): void;
}

/** What an engine is built from. */
export interface EngineSpec {
  config: CodtConfig;
  norm: Normalization;
  params: Params;
  adam: AdamWSettings;
}
