/**
 * Training orchestration shared by every trainer: split off validation users, compute the
 * normalisation, λ range and weighting, run epochs of seeded batches through a TrainEngine
 * with warmup + cosine learning rate, validate each epoch, stop early, checkpoint
 * atomically and resume exactly. Ends with the best weights as a CodtModel.
 */
import { existsSync } from 'node:fs';
import { ArgumentError, SacoError } from '../errors.js';
import { withLambdaCopies } from '../data/lambda.js';
import { splitByUser, type Trajectories } from '../data/trajectories.js';
import { dataFingerprint, type CodtModel, type ModelMeta } from './artifact.js';
import { selectBackend, type BackendChoice, type BackendInfo } from './backend.js';
import { batchLambdas, epochOrder, makeBatch, type WeightingSpec } from './batches.js';
import { readCheckpoint, writeCheckpoint, CheckpointError, type CheckpointState, type EpochRecord } from './checkpoint.js';
import { CODT_DEFAULTS, validateCodtConfig, type CodtConfig, type CodtVariant } from './config.js';
import { ADAMW_DEFAULTS, TfjsEngine, type TrainEngine } from './engine-tfjs.js';
import { cloneParams, initParams, type Params } from './params.js';
import { computeNormalization, estimateLambdaMax, roundMoments, targetTable, type Normalization } from './stats.js';

export interface TrainOptions {
  variant?: CodtVariant;
  dModel?: number;
  layers?: number;
  heads?: number;
  dropout?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Linear warmup steps (default: 5% of all steps, at most 200). */
  warmupSteps?: number;
  weightDecay?: number;
  gradClip?: number;
  /** Epochs without a better validation loss before stopping. */
  patience?: number;
  seed?: number;
  /** Share of the training users held out for validation. */
  valFraction?: number;
  /** Temperature of the Lagrangian weights (weighted, no-rtg). */
  beta?: number;
  /** λ range; default: estimated from the data (weighted, no-rtg) or 1 (literal: the paper's U(0, 1)). */
  lambdaMax?: number;
  /** The literal recipe: every trajectory this many times with a fixed λ. */
  lambdaCopies?: number;
  backend?: BackendChoice;
  /** Checkpoint file, written after every epoch and on interruption. */
  checkpoint?: string;
  /** Continue from `checkpoint`. */
  resume?: boolean;
  /** Stop (as if interrupted) after this many optimiser steps in this call. */
  stopAfterSteps?: number;
  /** Stop at the next step boundary, checkpoint, and return with `interrupted: true`. */
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** Where the data came from, recorded in the model. */
  source?: string;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  samplesPerSecond: number;
}

export interface TrainResult {
  model: CodtModel;
  history: EpochRecord[];
  backend: BackendInfo;
  stoppedEarly: boolean;
  interrupted: boolean;
  /** Trajectories per second over the steps of this call. */
  samplesPerSecond: number;
}

export class TrainingDivergedError extends SacoError {
  constructor(detail: string) {
    super('TRAIN_DIVERGED', detail);
  }
}

export const TRAIN_DEFAULTS = { epochs: 30, batchSize: 64, lr: 3e-4, patience: 3, seed: 1, valFraction: 0.1, beta: 0.5 };

function learningRate(step: number, total: number, warmup: number, peak: number): number {
  if (step <= warmup) return (peak * step) / Math.max(warmup, 1);
  const progress = Math.min(1, (step - warmup) / Math.max(total - warmup, 1));
  return peak * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

function checkRange(name: string, v: number, min: number, max: number, integer = false): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new ArgumentError(name, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${v}`);
  }
}

/** Trains a CODT on `train` (the test users must already be split off). */
export async function trainCodt(train: Trajectories, options: TrainOptions = {}): Promise<TrainResult> {
  const o = { ...TRAIN_DEFAULTS, ...options };
  const variant = o.variant ?? CODT_DEFAULTS.variant;
  checkRange('epochs', o.epochs, 1, 100000, true);
  checkRange('batchSize', o.batchSize, 1, 1 << 20, true);
  checkRange('lr', o.lr, 0, 1);
  checkRange('patience', o.patience, 1, 100000, true);
  checkRange('valFraction', o.valFraction, 0.01, 0.9);
  checkRange('beta', o.beta, 1e-3, 1e3);
  if (o.lambdaMax !== undefined) checkRange('lambdaMax', o.lambdaMax, 1e-6, 1e6);
  const weighted = variant === 'weighted' || variant === 'no-rtg';
  const config: CodtConfig = {
    stateDim: train.stateDim,
    actionSizes: train.actionEncodings.map((e) => e.values.length),
    context: train.rounds,
    dModel: o.dModel ?? CODT_DEFAULTS.dModel,
    layers: o.layers ?? CODT_DEFAULTS.layers,
    heads: o.heads ?? CODT_DEFAULTS.heads,
    dropout: o.dropout ?? CODT_DEFAULTS.dropout,
    variant,
  };
  validateCodtConfig(config);
  if (train.users < 10) throw new ArgumentError('trajectories', `need at least 10 users to train, got ${train.users}`);

  const { train: fitBase, test: val } = splitByUser(train, { testFraction: o.valFraction, seed: o.seed + 1 });
  const lambdaMax = o.lambdaMax ?? (weighted ? estimateLambdaMax(fitBase) : 1);
  const fit = o.lambdaCopies ? withLambdaCopies(fitBase, o.lambdaCopies, { seed: o.seed, lambdaMax }) : fitBase;
  const norm: Normalization = computeNormalization(fitBase, lambdaMax);
  const moments = roundMoments(fitBase);
  const weighting: WeightingSpec = { beta: weighted ? o.beta : null, moments };
  const batches = Math.ceil(fit.users / o.batchSize);
  const totalSteps = o.epochs * batches;
  const warmup = o.warmupSteps ?? Math.min(200, Math.ceil(0.05 * totalSteps));
  const identity = { config, seed: o.seed, batchSize: o.batchSize, lr: o.lr, epochs: o.epochs, variant, lambdaMax, beta: weighting.beta, lambdaCopies: o.lambdaCopies ?? null, fingerprint: dataFingerprint(train), users: train.users };

  const backend = await selectBackend(o.backend ?? 'auto');
  const adam = { ...ADAMW_DEFAULTS, weightDecay: o.weightDecay ?? ADAMW_DEFAULTS.weightDecay, gradClip: o.gradClip ?? ADAMW_DEFAULTS.gradClip };
  let state: CheckpointState = { identity, epoch: 0, step: 0, bestValLoss: Infinity, bestEpoch: -1, epochsWithoutImprovement: 0, history: [], extra: { batchInEpoch: 0, lossSum: 0, lossCount: 0, seconds: 0 } };
  let params = initParams(config, o.seed);
  let best: Params = cloneParams(params);
  const engine: TrainEngine = new TfjsEngine(config, norm, params, adam, backend.name);
  try {
    if (o.resume) {
      if (!o.checkpoint) throw new ArgumentError('resume', 'needs a checkpoint file');
      if (existsSync(o.checkpoint)) {
        const ckpt = readCheckpoint(o.checkpoint);
        if (JSON.stringify(ckpt.state.identity) !== JSON.stringify(identity)) {
          throw new CheckpointError(o.checkpoint, 'was written by a run with another config, data or seed; refusing to resume from it', 'CHECKPOINT_MISMATCH');
        }
        state = ckpt.state;
        params = ckpt.params;
        best = ckpt.best;
        engine.writeParams(params);
        engine.writeOptimizer(ckpt.optimizer);
      }
    }

    const save = () => {
      if (o.checkpoint) writeCheckpoint(o.checkpoint, { state, params: engine.readParams(), best, optimizer: engine.readOptimizer() });
    };
    const validate = async (): Promise<number> => {
      let lossSum = 0;
      let weightSum = 0;
      for (let start = 0, k = 0; start < val.users; start += o.batchSize, k++) {
        const users = Int32Array.from({ length: Math.min(o.batchSize, val.users - start) }, (_, i) => start + i);
        const r = await engine.evaluate(makeBatch(val, users, batchLambdas(val, users, o.seed + 7919, k, lambdaMax), config, weighting));
        lossSum += r.lossSum;
        weightSum += r.weightSum;
      }
      return lossSum / Math.max(weightSum, 1e-12);
    };

    let stepsThisCall = 0;
    let samplesThisCall = 0;
    let secondsThisCall = 0;
    let interrupted = false;
    let stoppedEarly = false;
    while (state.epoch < o.epochs && !stoppedEarly) {
      const order = epochOrder(fit.users, o.seed, state.epoch);
      const extra = state.extra as { batchInEpoch: number; lossSum: number; lossCount: number; seconds: number };
      for (let b = extra.batchInEpoch; b < batches; b++) {
        if (o.signal?.aborted || (o.stopAfterSteps !== undefined && stepsThisCall >= o.stopAfterSteps)) {
          interrupted = true;
          break;
        }
        const users = order.subarray(b * o.batchSize, Math.min((b + 1) * o.batchSize, fit.users));
        const t0 = performance.now();
        const step = state.step + 1;
        const batch = makeBatch(fit, users, batchLambdas(fit, users, o.seed, step, lambdaMax), config, weighting);
        const loss = await engine.step(batch, learningRate(step, totalSteps, warmup, o.lr), step, (o.seed * 1000003 + step) % 2147483647);
        if (!Number.isFinite(loss)) {
          const where = o.checkpoint && existsSync(o.checkpoint) ? `the last good checkpoint is ${o.checkpoint} (epoch ${state.epoch})` : 'no checkpoint was written';
          throw new TrainingDivergedError(`training diverged: loss is ${loss} at epoch ${state.epoch + 1}, step ${step}; ${where}. Lower --lr or --grad-clip.`);
        }
        const dt = (performance.now() - t0) / 1000;
        state.step = step;
        extra.batchInEpoch = b + 1;
        extra.lossSum += loss;
        extra.lossCount++;
        extra.seconds += dt;
        stepsThisCall++;
        samplesThisCall += users.length;
        secondsThisCall += dt;
        o.onProgress?.({ epoch: state.epoch + 1, epochs: o.epochs, batch: b + 1, batches, loss: extra.lossSum / extra.lossCount, samplesPerSecond: samplesThisCall / Math.max(secondsThisCall, 1e-9) });
      }
      if (interrupted) break;
      const valLoss = await validate();
      const record: EpochRecord = { epoch: state.epoch + 1, trainLoss: extra.lossSum / Math.max(extra.lossCount, 1), valLoss, samplesPerSecond: fit.users / Math.max(extra.seconds, 1e-9), seconds: extra.seconds };
      state.history.push(record);
      if (valLoss < state.bestValLoss - 1e-7) {
        state.bestValLoss = valLoss;
        state.bestEpoch = record.epoch;
        state.epochsWithoutImprovement = 0;
        best = engine.readParams();
      } else {
        state.epochsWithoutImprovement++;
        stoppedEarly = state.epochsWithoutImprovement >= o.patience;
      }
      state.epoch++;
      state.extra = { batchInEpoch: 0, lossSum: 0, lossCount: 0, seconds: 0 };
      o.onEpoch?.(record);
      save();
    }
    if (interrupted) save();

    const meta: ModelMeta = {
      format: 'saco-codt',
      version: 1,
      config,
      normalization: norm,
      stateNames: train.stateNames,
      actionEncodings: train.actionEncodings,
      categorical: train.categorical,
      beta: weighting.beta,
      moments,
      targets: targetTable(fitBase, moments, lambdaMax, weighting.beta),
      fingerprint: dataFingerprint(train),
      training: {
        trainer: 'tfjs',
        backend: backend.name,
        seed: o.seed,
        epochs: state.epoch,
        steps: state.step,
        bestValLoss: state.bestValLoss,
        samplesPerSecond: samplesThisCall / Math.max(secondsThisCall, 1e-9),
        data: o.source ?? train.source,
      },
    };
    // Interrupted before any validation: the current weights are the only ones there are.
    const finalParams = state.bestEpoch >= 0 ? best : engine.readParams();
    return {
      model: { meta, params: finalParams },
      history: state.history,
      backend,
      stoppedEarly,
      interrupted,
      samplesPerSecond: samplesThisCall / Math.max(secondsThisCall, 1e-9),
    };
  } finally {
    engine.dispose();
  }
}
