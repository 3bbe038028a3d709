/**
 * The native trainer against its references: every layer's backward against central finite
 * differences (in C++, native/gradcheck.cc), the whole loss and every gradient against tfjs
 * autodiff from the same weights and batch, AdamW steps against the tfjs engine, and
 * determinism over thread counts. The short-run comparison of the two trainers on SY lives in
 * train.test.ts (it uses the runs of the global setup).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { selectBackend } from '../../src/model/backend.js';
import { batchLambdas, makeBatch } from '../../src/model/batches.js';
import { CODT_VARIANTS, paramSpecs, type CodtConfig } from '../../src/model/config.js';
import { TfjsEngine } from '../../src/model/engine-tfjs.js';
import { initParams, type Params } from '../../src/model/params.js';
import { computeNormalization, estimateLambdaMax, roundMoments, type Normalization } from '../../src/model/stats.js';
import { ADAMW_DEFAULTS, type AdamWSettings, type CodtBatch } from '../../src/model/types.js';
import { generateSy } from '../../src/native/index.js';
import { NativeEngine } from '../../src/native/train-engine.js';
import { nativeGradCheck, nativeGradCheckNames } from '../../src/native/testing.js';
import { randomBatch, randomModel } from '../helpers/model.js';

let backendName: string;
let sy: Trajectories;

beforeAll(async () => {
  backendName = (await selectBackend('auto')).name;
  sy = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 200, rounds: 6, seed: 5 })));
});

/** Max |a - b| over a tensor, relative to the largest |a| in it. */
function relError(a: Float32Array, b: Float32Array): { rel: number; scale: number } {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return { rel: diff / Math.max(scale, 1e-30), scale };
}

function engines(config: CodtConfig, norm: Normalization, params: Params, adam: AdamWSettings = ADAMW_DEFAULTS) {
  return { tf: new TfjsEngine(config, norm, params, adam, backendName), nat: new NativeEngine(config, norm, params, adam, 2) };
}

/** Every gradient of the native engine equals tfjs's to 1e-4 of the tensor's scale. */
function expectSameGradients(ref: Params, got: Params): void {
  let global = 0;
  for (const g of ref.values()) for (const x of g) global = Math.max(global, Math.abs(x));
  expect(global).toBeGreaterThan(0);
  for (const [name, g] of ref) {
    const mine = got.get(name) as Float32Array;
    expect(mine, name).toBeDefined();
    const { rel, scale } = relError(g, mine);
    if (name.endsWith('attn.bk')) {
      // Adding a constant to every key of a query shifts all its scores equally: softmax
      // ignores it, so this gradient is exactly zero and both engines return rounding noise.
      expect(scale, name).toBeLessThan(1e-6 * global);
      expect(relError(mine, g).scale, name).toBeLessThan(1e-6 * global);
      continue;
    }
    expect(rel, `${name} (scale ${scale.toExponential(2)})`).toBeLessThan(1e-4);
  }
}

describe('every backward pass against central finite differences (native, float32, ε = 1e-2 / 3e-3)', () => {
  for (const what of nativeGradCheckNames()) {
    it(what, () => {
      const rows = nativeGradCheck(what, 11);
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) {
        expect(r.checked, r.tensor).toBeGreaterThan(0);
        // relative to the tensor's gradient scale, floored where the true gradient is ~0
        expect(r.maxAbsError, `${what}: ${r.tensor} (max |grad| ${r.maxAbsGrad.toExponential(2)})`).toBeLessThan(1e-2 * Math.max(r.maxAbsGrad, 1e-2));
      }
      if (what.startsWith('model')) {
        // every parameter of the tiny model was checked
        const variant = what === 'model-no-rtg' ? 'no-rtg' : what === 'model-no-constraint' ? 'no-constraint' : 'weighted';
        const config: CodtConfig = { stateDim: 3, actionSizes: [3, 2], context: 3, dModel: 8, layers: 2, heads: 2, dropout: 0, variant };
        expect(rows.map((r) => r.tensor).sort()).toEqual(paramSpecs(config).map((s) => s.name).sort());
      }
    });
  }
});

describe('native loss and gradients = tfjs autodiff, same weights and batch', () => {
  for (const variant of CODT_VARIANTS) {
    it(`random weights, two action dimensions, masked rounds (${variant})`, async () => {
      const config: CodtConfig = { stateDim: 5, actionSizes: [3, 2], context: 4, dModel: 16, layers: 2, heads: 4, dropout: 0, variant };
      const model = randomModel(config, 3);
      const batch = randomBatch(config, 19, 4, 5); // 19 sequences: three chunks, the last partial
      for (let i = 0; i < batch.mask.length; i += 7) {
        batch.mask[i] = 0;
        batch.weights[i] = 0;
      }
      const { tf, nat } = engines(config, model.meta.normalization, model.params);
      try {
        const a = await tf.gradients(batch);
        const b = await nat.gradients(batch);
        expect(Math.abs(a.loss - b.loss) / a.loss).toBeLessThan(1e-5);
        expectSameGradients(a.grads, b.grads);
        const ea = await tf.evaluate(batch);
        const eb = await nat.evaluate(batch);
        expect(Math.abs(ea.lossSum - eb.lossSum) / ea.lossSum).toBeLessThan(1e-5);
        expect(eb.weightSum).toBeCloseTo(ea.weightSum, 3);
      } finally {
        tf.dispose();
        nat.dispose();
      }
    });
  }

  it('initial weights of the default config on an SY batch with the Lagrangian weights, shorter sequences than the context', async () => {
    const config: CodtConfig = { stateDim: sy.stateDim, actionSizes: [4], context: sy.rounds, dModel: 64, layers: 3, heads: 2, dropout: 0, variant: 'weighted' };
    const lambdaMax = estimateLambdaMax(sy);
    const norm = computeNormalization(sy, lambdaMax);
    const users = Int32Array.from({ length: 40 }, (_, i) => i * 3);
    const full = makeBatch(sy, users, batchLambdas(sy, users, 1, 1, lambdaMax), config, { beta: 0.5, moments: roundMoments(sy) });
    const { tf, nat } = engines(config, norm, initParams(config, 2));
    try {
      for (const batch of [full, prefix(full, sy.stateDim, 4, 4)]) {
        const a = await tf.gradients(batch);
        const b = await nat.gradients(batch);
        expect(Math.abs(a.loss - b.loss) / a.loss).toBeLessThan(1e-5);
        expectSameGradients(a.grads, b.grads);
      }
    } finally {
      tf.dispose();
      nat.dispose();
    }
  });
});

/** The first `rounds` rounds of every sequence of a batch. */
function prefix(b: CodtBatch, stateDim: number, K: number, rounds: number): CodtBatch {
  const T = b.rounds;
  const take = (src: Float32Array, width: number) => {
    const out = new Float32Array(b.size * rounds * width);
    for (let i = 0; i < b.size; i++) out.set(src.subarray(i * T * width, i * T * width + rounds * width), i * rounds * width);
    return out;
  };
  return { ...b, rounds, states: take(b.states, stateDim), rtg: take(b.rtg, 1), ctg: take(b.ctg, 1), actionsOneHot: take(b.actionsOneHot, K), mask: take(b.mask, 1), weights: take(b.weights, 1) };
}

describe('AdamW steps and determinism', () => {
  it('three clipped AdamW steps with weight decay move the weights as the tfjs engine does', async () => {
    const config: CodtConfig = { stateDim: 5, actionSizes: [3, 2], context: 4, dModel: 16, layers: 2, heads: 2, dropout: 0, variant: 'weighted' };
    const model = randomModel(config, 8);
    const adam = { ...ADAMW_DEFAULTS, weightDecay: 0.05, gradClip: 0.3 }; // the clip binds: gradient norms here are > 1
    const { tf, nat } = engines(config, model.meta.normalization, model.params, adam);
    try {
      for (let step = 1; step <= 3; step++) {
        const batch = randomBatch(config, 12, 4, 20 + step);
        const la = await tf.step(batch, 1e-2, step, 0);
        const lb = await nat.step(batch, 1e-2, step, 0);
        expect(Math.abs(la - lb) / la).toBeLessThan(1e-5);
      }
      const pa = tf.readParams();
      const pb = nat.readParams();
      const ma = tf.readOptimizer();
      const mb = nat.readOptimizer();
      for (const [name, v] of pa) {
        if (name.endsWith('attn.bk')) continue; // zero true gradient: Adam normalises each engine's rounding noise
        expect(relError(v, pb.get(name) as Float32Array).rel, name).toBeLessThan(1e-5);
        expect(relError(ma.m.get(name) as Float32Array, mb.m.get(name) as Float32Array).rel, `m ${name}`).toBeLessThan(1e-4);
      }
      // the moments round-trip through the engine
      nat.writeOptimizer(ma);
      expect(relError(nat.readOptimizer().v.get('head.w') as Float32Array, ma.v.get('head.w') as Float32Array).rel).toBe(0);
    } finally {
      tf.dispose();
      nat.dispose();
    }
  });

  it('the same numbers for 1, 2 and 3 threads, with dropout; dropout depends on its seed only', async () => {
    const config: CodtConfig = { stateDim: 5, actionSizes: [4], context: 4, dModel: 16, layers: 2, heads: 2, dropout: 0.2, variant: 'weighted' };
    const model = randomModel(config, 9);
    const batch = randomBatch(config, 37, 4, 3);
    const results = [];
    for (const threads of [1, 2, 3]) {
      const e = new NativeEngine(config, model.meta.normalization, model.params, ADAMW_DEFAULTS, threads);
      results.push({ train: await e.gradients(batch, true, 77), other: await e.gradients(batch, true, 78), eval: await e.gradients(batch, false, 77) });
      e.dispose();
    }
    for (const r of results.slice(1)) {
      expect(r.train.loss).toBe(results[0].train.loss);
      for (const [name, g] of results[0].train.grads) expect(Array.from(r.train.grads.get(name) as Float32Array), name).toEqual(Array.from(g));
    }
    const r = results[0];
    expect(r.other.loss).not.toBe(r.train.loss); // another dropout seed, other masks
    expect(r.eval.loss).not.toBe(r.train.loss); // evaluation runs without dropout
  });

  it('refuses bad batches and a second call while one runs', async () => {
    const config: CodtConfig = { stateDim: 5, actionSizes: [4], context: 4, dModel: 16, layers: 1, heads: 2, dropout: 0, variant: 'weighted' };
    const model = randomModel(config, 1);
    const e = new NativeEngine(config, model.meta.normalization, model.params, ADAMW_DEFAULTS);
    try {
      const batch = randomBatch(config, 8, 4, 1);
      await expect(e.step({ ...batch, states: batch.states.subarray(1) }, 1e-3, 1, 0)).rejects.toThrow(/batch.states: expected length/);
      await expect(e.step({ ...batch, rounds: 5 }, 1e-3, 1, 0)).rejects.toThrow(/rounds must be in \[1, 4\]/);
      const nan = batch.weights.slice();
      nan[3] = NaN;
      await expect(e.step({ ...batch, weights: nan }, 1e-3, 1, 0)).rejects.toThrow(/batch.weights\[3\] is not finite/);
      expect(() => e.writeParams(new Map([...model.params].slice(1)))).toThrow(/is missing/);
      // the second call is made while the first is pending: refused whichever thread would run it
      const first = e.step(batch, 1e-3, 1, 0);
      const second = e.step(batch, 1e-3, 2, 0);
      expect(() => e.readParams()).toThrow(/trainer is busy: await the previous call/);
      const outcomes = await Promise.allSettled([first, second]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected']);
      expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/trainer is busy: await the previous call/);
      // released with the first call: the next one runs
      expect(Number.isFinite(await e.step(batch, 1e-3, 2, 0))).toBe(true);
    } finally {
      e.dispose();
    }
  });
});
