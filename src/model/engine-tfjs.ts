/**
 * The tfjs training engine: loss, gradients (tfjs autodiff), global-norm clipping and
 * AdamW with decoupled weight decay. The orchestration (batches, schedule, validation,
 * checkpoints) lives in train.ts and is shared with the native trainer. Only train.ts's
 * dynamic import (and tests) load this file: it is what brings tfjs into a process.
 */
import * as tf from '@tensorflow/tfjs';
import { paramSpecs, type CodtConfig } from './config.js';
import { TfCodt, variableFrom } from './codt-tfjs.js';
import type { Params } from './params.js';
import type { Normalization } from './stats.js';
import type { AdamWSettings, CodtBatch, OptimizerState, TrainEngine } from './types.js';

export class TfjsEngine implements TrainEngine {
  readonly name: string;
  private readonly model: TfCodt;
  private readonly m: Map<string, tf.Variable>;
  private readonly v: Map<string, tf.Variable>;
  private readonly decay: Map<string, boolean>;

  constructor(config: CodtConfig, norm: Normalization, params: Params, private readonly adam: AdamWSettings, backendName: string) {
    this.name = `tfjs-${backendName}`;
    this.model = new TfCodt(config, norm, params);
    this.m = new Map([...this.model.vars].map(([k, v]) => [k, variableFrom(tf.zerosLike(v), false)]));
    this.v = new Map([...this.model.vars].map(([k, v]) => [k, variableFrom(tf.zerosLike(v), false)]));
    this.decay = new Map(paramSpecs(config).map((s) => [s.name, s.decay]));
  }

  async step(batch: CodtBatch, lr: number, step: number, dropoutSeed: number): Promise<number> {
    const lossTensor = tf.tidy(() => {
      const vars = [...this.model.vars.values()];
      const { value, grads } = tf.variableGrads(() => this.model.loss(batch, true, dropoutSeed), vars);
      const names = [...this.model.vars.keys()];
      const gradList = names.map((_, i) => grads[vars[i].name]);
      const norm2 = tf.addN(gradList.map((g) => tf.sum(tf.square(g))));
      const scale = tf.minimum(1, tf.div(this.adam.gradClip, tf.add(tf.sqrt(norm2), 1e-12)));
      const { beta1, beta2, eps, weightDecay } = this.adam;
      const bc1 = 1 - beta1 ** step;
      const bc2 = 1 - beta2 ** step;
      names.forEach((name, i) => {
        const g = tf.mul(gradList[i], scale);
        const m = this.m.get(name) as tf.Variable;
        const v = this.v.get(name) as tf.Variable;
        const p = this.model.vars.get(name) as tf.Variable;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        let update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        if (this.decay.get(name) && weightDecay > 0) update = tf.add(update, tf.mul(p, weightDecay));
        p.assign(tf.sub(p, tf.mul(update, lr)));
      });
      return value;
    });
    const loss = (await lossTensor.data())[0];
    lossTensor.dispose();
    return loss;
  }

  /** Loss and gradients without an update (the reference the native engine is held to). */
  async gradients(batch: CodtBatch, training = false, dropoutSeed = 0): Promise<{ loss: number; grads: Params }> {
    const vars = [...this.model.vars.values()];
    const { value, grads } = tf.variableGrads(() => this.model.loss(batch, training, dropoutSeed), vars);
    const out: Params = new Map();
    for (const [name, v] of this.model.vars) {
      const g = grads[v.name];
      out.set(name, Float32Array.from((await g.data()) as Float32Array));
    }
    const loss = (await value.data())[0];
    value.dispose();
    for (const g of Object.values(grads)) g.dispose();
    return { loss, grads: out };
  }

  async evaluate(batch: CodtBatch): Promise<{ lossSum: number; weightSum: number }> {
    const t = tf.tidy(() => this.model.loss(batch, false));
    const loss = (await t.data())[0];
    t.dispose();
    let weightSum = 0;
    for (let i = 0; i < batch.weights.length; i++) weightSum += batch.weights[i] * batch.mask[i];
    return { lossSum: loss * weightSum, weightSum };
  }

  readParams(): Params {
    return this.model.readParams();
  }

  writeParams(params: Params): void {
    this.model.writeParams(params);
  }

  readOptimizer(): OptimizerState {
    const read = (vars: Map<string, tf.Variable>) => new Map([...vars].map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
    return { m: read(this.m), v: read(this.v) };
  }

  writeOptimizer(state: OptimizerState): void {
    tf.tidy(() => {
      for (const [k, v] of this.m) v.assign(tf.tensor(state.m.get(k) as Float32Array, v.shape));
      for (const [k, v] of this.v) v.assign(tf.tensor(state.v.get(k) as Float32Array, v.shape));
    });
  }

  dispose(): void {
    this.model.dispose();
    for (const v of [...this.m.values(), ...this.v.values()]) v.dispose();
  }
}
