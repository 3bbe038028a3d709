import { describe, expect, it } from 'vitest';
import { generateSyReference, resolveSyConfig, SY_BUNDLE_DIMS, syWeights, type SyOptions } from '../src/data/synth.js';
import { ArgumentError } from '../src/errors.js';
import { NativeError } from '../src/errors.js';
import { generateSy, native, syWeightsNative } from '../src/native/index.js';
import { firstMismatch } from './helpers/fixtures.js';

const CONFIGS: Array<[string, SyOptions]> = [
  ['default equations', { users: 1500, rounds: 10, seed: 3 }],
  ['bundle, biased logger, observation noise, static', { users: 400, rounds: 6, seed: 9, actionDims: SY_BUNDLE_DIMS, logging: { kind: 'biased', strength: 2 }, sigmaObs: 0.2, sequential: false }],
  ['T = 1, three features, large seed', { users: 300, rounds: 1, features: 3, seed: 2 ** 40 + 5 }],
];

describe('SY: TypeScript reference and C++ fast path', () => {
  for (const [name, options] of CONFIGS) {
    it(`produce bit-identical logs (${name})`, async () => {
      const ts = generateSyReference(options);
      const cpp = await generateSy(options);
      expect(firstMismatch(ts.states, cpp.states)).toBeNull();
      expect(firstMismatch(ts.actions, cpp.actions)).toBeNull();
      expect(firstMismatch(ts.cost, cpp.cost)).toBeNull();
      expect(firstMismatch(ts.reward, cpp.reward)).toBeNull();
      expect(firstMismatch(ts.purchaseProb, cpp.purchaseProb)).toBeNull();
    });
  }

  it('draw the same global weight vectors', () => {
    const cfg = resolveSyConfig({ seed: 42, features: 8 });
    const a = syWeights(cfg);
    const b = syWeightsNative(cfg);
    expect(firstMismatch(a.wAlpha, b.wAlpha)).toBeNull();
    expect(firstMismatch(a.wBeta, b.wBeta)).toBeNull();
    expect(firstMismatch(a.wM, b.wM)).toBeNull();
    const norm = Math.hypot(...a.wAlpha);
    expect(Math.abs(norm - 1)).toBeLessThan(1e-12);
  });

  it('do not depend on the native thread count', async () => {
    const base = await generateSy({ users: 3001, rounds: 4, seed: 5, threads: 1 });
    for (const threads of [2, 7]) {
      const other = await generateSy({ users: 3001, rounds: 4, seed: 5, threads });
      expect(firstMismatch(base.states, other.states)).toBeNull();
      expect(firstMismatch(base.reward, other.reward)).toBeNull();
      expect(firstMismatch(base.actions, other.actions)).toBeNull();
    }
  });

  it('give different logs for different seeds', async () => {
    const a = await generateSy({ users: 100, rounds: 2, seed: 1 });
    const b = await generateSy({ users: 100, rounds: 2, seed: 2 });
    expect(firstMismatch(a.states, b.states)).not.toBeNull();
  });
});

/**
 * The response model recomputed in the test from the published equations with Math.exp
 * and the known weights: an independent check of what the generator draws.
 */
function expectedProbability(c: ReturnType<typeof resolveSyConfig>, w: ReturnType<typeof syWeights>, x: ArrayLike<number>, e: number, f: number, value: number): number {
  let a = 0, b = 0;
  for (let j = 0; j < c.features; j++) {
    a += w.wAlpha[j] * x[j];
    b += w.wBeta[j] * x[j];
  }
  const alpha = a + c.alphaShift;
  const beta = Math.log1p(Math.exp(b));
  const delta = c.sequential ? c.delta : 0;
  const z = alpha + c.gammaE * e + beta * Math.log(1 + value) * Math.exp(-delta * f);
  return 1 / (1 + Math.exp(-z));
}

describe('SY statistics match the equations', () => {
  it('empirical purchase rate per action is within 3 standard errors of the expected rate', async () => {
    const options: SyOptions = { users: 20000, rounds: 5, seed: 11 };
    const log = await generateSy(options);
    const c = resolveSyConfig(options);
    const w = syWeights(c);
    const d = c.features + 3;
    const K = c.actionDims[0].values.length;
    const expected = new Float64Array(K);
    const variance = new Float64Array(K);
    const observed = new Float64Array(K);
    const count = new Float64Array(K);
    for (let r = 0; r < c.users * c.rounds; r++) {
      const k = log.actions[r];
      const s = log.states.subarray(r * d, r * d + d);
      const p = expectedProbability(c, w, s, s[c.features], s[c.features + 1], c.actionDims[0].values[k]);
      expect(Math.abs(p - log.purchaseProb[r])).toBeLessThan(1e-12);
      expected[k] += p;
      variance[k] += p * (1 - p);
      observed[k] += log.reward[r] > 0 ? 1 : 0;
      count[k]++;
    }
    for (let k = 0; k < K; k++) {
      const se = Math.sqrt(variance[k]) / count[k];
      expect(Math.abs(observed[k] / count[k] - expected[k] / count[k])).toBeLessThan(3 * se);
      // uniform logging: each action about 1/K of the rows
      expect(Math.abs(count[k] / (c.users * c.rounds) - 1 / K)).toBeLessThan(0.01);
    }
    // bigger coupons sell more (beta > 0)
    for (let k = 1; k < K; k++) expect(observed[k] / count[k]).toBeGreaterThan(observed[k - 1] / count[k - 1]);
  });

  it('rewards are the basket value on purchase and costs the redeemed face value', async () => {
    const options: SyOptions = { users: 500, rounds: 3, seed: 4 };
    const log = await generateSy(options);
    const c = resolveSyConfig(options);
    const w = syWeights(c);
    const d = c.features + 3;
    for (let r = 0; r < c.users * c.rounds; r++) {
      const x = log.states.subarray(r * d, r * d + c.features);
      let m = 0;
      for (let j = 0; j < c.features; j++) m += w.wM[j] * x[j];
      const basket = c.basketScale * Math.exp(c.basketSpread * m);
      if (log.reward[r] > 0) {
        expect(Math.abs(log.reward[r] - basket) / basket).toBeLessThan(1e-12);
        expect(log.cost[r]).toBe(c.actionDims[0].values[log.actions[r]]);
      } else expect(log.cost[r]).toBe(0);
    }
  });

  it('the biased logger gives bigger coupons to users with a higher sensitivity score', async () => {
    const options: SyOptions = { users: 6000, rounds: 2, seed: 8, logging: { kind: 'biased', strength: 2 } };
    const log = await generateSy(options);
    const c = resolveSyConfig(options);
    const w = syWeights(c);
    const d = c.features + 3;
    let hiSum = 0, hiN = 0, loSum = 0, loN = 0;
    for (let r = 0; r < c.users * c.rounds; r++) {
      let score = 0;
      for (let j = 0; j < c.features; j++) score += w.wBeta[j] * log.states[r * d + j];
      const v = c.actionDims[0].values[log.actions[r]];
      if (score > 0.5) { hiSum += v; hiN++; }
      if (score < -0.5) { loSum += v; loN++; }
    }
    expect(hiSum / hiN).toBeGreaterThan(loSum / loN + 1);
  });
});

/** Purchase rate at t+1 after a coupon at t, minus after no coupon at t, and its z-score. */
function nextRoundEffect(log: Awaited<ReturnType<typeof generateSy>>): { diff: number; z: number } {
  const { users, rounds } = log.config;
  let aBuy = 0, aN = 0, bBuy = 0, bN = 0;
  for (let i = 0; i < users; i++) {
    for (let t = 0; t + 1 < rounds; t++) {
      const row = i * rounds + t;
      const buyNext = log.reward[row + 1] > 0 ? 1 : 0;
      if (log.actions[row] > 0) { aBuy += buyNext; aN++; } else { bBuy += buyNext; bN++; }
    }
  }
  const pa = aBuy / aN;
  const pb = bBuy / bN;
  const se = Math.sqrt((pa * (1 - pa)) / aN + (pb * (1 - pb)) / bN);
  return { diff: pa - pb, z: (pa - pb) / se };
}

describe('SY sequential switch', () => {
  it('sequential: a coupon at round t measurably changes the purchase rate at t+1', async () => {
    const { z, diff } = nextRoundEffect(await generateSy({ users: 20000, rounds: 4, seed: 21, sequential: true }));
    expect(Math.abs(z)).toBeGreaterThan(5);
    expect(Math.abs(diff)).toBeGreaterThan(0.01);
  });
  it('static: it does not (difference within 3 standard errors)', async () => {
    const { z } = nextRoundEffect(await generateSy({ users: 20000, rounds: 4, seed: 21, sequential: false }));
    expect(Math.abs(z)).toBeLessThan(3);
  });
});

describe('SY configuration errors', () => {
  it('TypeScript rejects bad fields with an ArgumentError naming the field', () => {
    expect(() => resolveSyConfig({ users: 0 })).toThrow(/sy\.users/);
    expect(() => resolveSyConfig({ rounds: 1.5 })).toThrow(ArgumentError);
    expect(() => resolveSyConfig({ rho: NaN })).toThrow(/sy\.rho/);
    expect(() => resolveSyConfig({ actionDims: [] })).toThrow(/actionDims/);
    expect(() => resolveSyConfig({ actionDims: [{ name: 'd', kind: 'discount', values: [0, 1.5] }] })).toThrow(/fraction/);
    expect(() => resolveSyConfig({ actionDims: [{ name: 'c', kind: 'cash', values: [0, -2] }] })).toThrow(/values\[1\]/);
    expect(() => resolveSyConfig({ logging: { kind: 'weird' } as never })).toThrow(/logging/);
  });

  it('C++ rejects them again with a JS exception, never a crash', async () => {
    const b = native();
    const good = resolveSyConfig({ users: 10, rounds: 2 });
    const log = await b.synthSY(good);
    expect(log.states.length).toBe(20 * 11);
    expect(() => b.synthSY({ ...good, users: -1 })).toThrow(/users/);
    expect(() => b.synthSY({ ...good, users: 1e9 })).toThrow(/users/);
    expect(() => b.synthSY({ ...good, rho: Infinity })).toThrow(/rho/);
    expect(() => b.synthSY({ ...good, rho: 'x' })).toThrow(/rho/);
    expect(() => b.synthSY({ ...good, actionDims: [{ kind: 'cash', values: [0, NaN] }] })).toThrow(/finite/);
    expect(() => b.synthSY({ ...good, actionDims: [] })).toThrow(/actionDims/);
    expect(() => b.synthSY({ ...good, actionDims: [{ kind: 'coupon', values: [0] }] })).toThrow(NativeError);
    expect(() => (b.synthSY as (...a: unknown[]) => unknown)()).toThrow(/expects an object/);
  });
});
