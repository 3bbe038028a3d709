/**
 * The native training engine: forward, backward, clipping and AdamW in C++ (native/trainer.h),
 * driven by the same orchestration as the tfjs engine (train.ts). From the same weights and
 * batch it gives the tfjs loss and gradients (test/model/native-trainer.test.ts).
 */
import os from 'node:os';
import { NativeTrainer } from '../native/index.js';
import type { CodtBatch } from './codt-tfjs.js';
import type { CodtConfig } from './config.js';
import type { AdamWSettings, OptimizerState, TrainEngine } from './engine-tfjs.js';
import type { Params } from './params.js';
import type { Normalization } from './stats.js';

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
