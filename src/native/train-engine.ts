/**
 * The native training engine: forward, backward, clipping and AdamW in C++ (native/trainer.h),
 * behind the model's TrainEngine so the orchestration of model/train.ts drives it like the
 * tfjs engine. From the same weights and batch it gives the tfjs loss and gradients
 * (test/model/native-trainer.test.ts). It lives here, not in model/, because model/ never
 * loads the binary; `trainCodt` below is the orchestration with this engine plugged in.
 */
import os from 'node:os';
import type { CodtConfig } from '../model/config.js';
import type { Params } from '../model/params.js';
import type { Normalization } from '../model/stats.js';
import { trainCodtWith, type NativeEngineFactory, type TrainOptions, type TrainResult } from '../model/train.js';
import type { AdamWSettings, CodtBatch, OptimizerState, TrainEngine } from '../model/types.js';
import type { Trajectories } from '../data/trajectories.js';
import { NativeTrainer } from './index.js';

export class NativeEngine implements TrainEngine {
  readonly name: string;
  private readonly trainer: NativeTrainer;

  /** threads 0: every core (the numbers do not depend on it). */
  constructor(config: CodtConfig, norm: Normalization, params: Params, adam: AdamWSettings, threads = 0) {
    this.trainer = new NativeTrainer(config, norm, params, { ...adam, dropout: config.dropout, threads });
    const n = threads || os.availableParallelism();
    this.name = `native-cpu (${n} thread${n === 1 ? '' : 's'})`;
  }

  /** NaN when the loss or the gradient is not finite; the weights are then left as they were. */
  async step(batch: CodtBatch, lr: number, step: number, dropoutSeed: number): Promise<number> {
    const r = await this.trainer.step(batch, lr, step, dropoutSeed);
    return Number.isFinite(r.gradNorm) ? r.loss : NaN;
  }

  evaluate(batch: CodtBatch): Promise<{ lossSum: number; weightSum: number }> {
    return this.trainer.evaluate(batch);
  }

  /** Loss and gradients without an update (tests compare them with tfjs). */
  gradients(batch: CodtBatch, training = false, dropoutSeed = 0): Promise<{ loss: number; grads: Params }> {
    return this.trainer.gradients(batch, training, dropoutSeed);
  }

  readParams(): Params {
    return this.trainer.read('params');
  }

  writeParams(params: Params): void {
    this.trainer.write('params', params);
  }

  readOptimizer(): OptimizerState {
    return { m: this.trainer.read('m'), v: this.trainer.read('v') };
  }

  writeOptimizer(state: OptimizerState): void {
    this.trainer.write('m', state.m);
    this.trainer.write('v', state.v);
  }

  dispose(): void {
    this.trainer.dispose();
  }
}

/** The factory the orchestration receives for `trainer: 'native'` (and 'auto' on CPU). */
export const createNativeEngine: NativeEngineFactory = (spec, threads) => new NativeEngine(spec.config, spec.norm, spec.params, spec.adam, threads);

/**
 * Trains a CODT on `train` (split the test users off first). The native C++ trainer runs by
 * default; `trainer: 'tfjs'` runs the tfjs reference (loaded only then), and `'auto'` picks
 * tfjs only when @tensorflow/tfjs-node-gpu sees a GPU or a tfjs `backend` is named. With
 * `checkpoint` it checkpoints after every epoch and on `signal`; `resume` continues exactly.
 *
 * @throws {ArgumentError} for an option out of range, fewer than 10 users, or an unknown trainer or backend.
 * @throws {TrainingDivergedError} when the loss or its gradient stops being finite (lower `lr` or `gradClip`).
 * @throws {CheckpointError} when `resume` meets a checkpoint of another run, or one cannot be read or written.
 * @throws {SacoError} code `NATIVE_MISSING` when the native trainer is needed and the binary is not built.
 * @example
 * const { trajectories } = await readTrajectories('log.parquet');
 * const { train } = splitByUser(trajectories, { seed: 1 });
 * const { model, history } = await trainCodt(train, { epochs: 10, checkpoint: 'run.ckpt' });
 * writeOnnx(model, 'codt.onnx');
 */
export function trainCodt(train: Trajectories, options: TrainOptions = {}): Promise<TrainResult> {
  return trainCodtWith({ native: createNativeEngine }, train, options);
}
