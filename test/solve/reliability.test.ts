/**
 * No silent wrong answers: a corrupt model is refused by every engine, inputs far outside the
 * training data are refused, a non-finite outcome stops the rollout, and no result with NaN or
 * an action index −1 leaves the library, whatever finite input it is given (fuzz).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CounterStream } from '../../src/data/rng.js';
import { resolveSyConfig, syWeights } from '../../src/data/synth.js';
import { ArgumentError, NativeError, SacoError } from '../../src/errors.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { encodeOnnx, ModelFileError, readOnnx } from '../../src/model/onnx.js';
import { loadNativeModel, type NativeModel } from '../../src/native/index.js';
import { decide, decideSync, solve } from '../../src/solve/index.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';

let model: CodtModel;
let handle: NativeModel;
const env = { seed: SY_MODEL_DATA.seed, rounds: SY_MODEL_DATA.rounds };

beforeAll(async () => {
  model = readOnnx((await sharedModel('native')).path);
  handle = loadNativeModel(model);
}, SHARED_MODEL_TIMEOUT);

/** The model with one weight set to NaN. */
function withNaNWeight(): CodtModel {
  const params = new Map([...model.params].map(([k, v]) => [k, v.slice()]));
  params.get('blocks.0.attn.wq')![3] = NaN;
  return { meta: model.meta, params };
}

describe('a model with a non-finite weight', () => {
  it('is refused by readOnnx, by the native engine and by the onnxruntime engine, with typed errors', async () => {
    const bad = withNaNWeight();
    expect(() => loadNativeModel(bad)).toThrow(ArgumentError);
    expect(() => loadNativeModel(bad)).toThrow(/blocks\.0\.attn\.wq\[3\] is NaN/);
    await expect(solve({ model: bad, users: 50, budget: '0.5x', env, engine: 'ort' })).rejects.toThrow(/blocks\.0\.attn\.wq\[3\] is NaN/);
    await expect(solve({ model: bad, users: 50, budget: '0.5x', env })).rejects.toThrow(ArgumentError);
    await expect(decide({ model: bad, lambda: 0.5, state: new Array(11).fill(0) })).rejects.toThrow(ArgumentError);
    // a file holding such a model (written by hand: writeOnnx refuses it too)
    expect(() => encodeOnnx(bad)).toThrow(/is NaN/);
    const dir = mkdtempSync(path.join(tmpdir(), 'saco-nan-'));
    const file = path.join(dir, 'nan.onnx');
    const good = encodeOnnx(model);
    const bytes = Buffer.from(good);
    const target = Buffer.from(model.params.get('blocks.0.attn.wq')!.buffer.slice(0, 16));
    const at = bytes.indexOf(target);
    expect(at).toBeGreaterThan(0);
    bytes.writeFloatLE(NaN, at + 12);
    writeFileSync(file, bytes);
    try {
      expect(() => readOnnx(file)).toThrow(ModelFileError);
      expect(() => readOnnx(file)).toThrow(/is NaN/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('model = {} is a typed error in solve and decide', async () => {
    await expect(solve({ model: {} as never, users: 10, budget: 100, env })).rejects.toThrow(ArgumentError);
    await expect(decide({ model: {} as never, lambda: 0.5, state: new Array(11).fill(0) })).rejects.toThrow(ArgumentError);
  });
});

describe('inputs outside the training data', () => {
  it('decide() refuses a state of 3e38 instead of answering action −1 with NaN probabilities', async () => {
    const state = new Array(11).fill(0);
    state[2] = 3e38;
    await expect(decide({ model: handle, lambda: 0.5, state })).rejects.toMatchObject({ code: 'INPUT_OUT_OF_RANGE' });
    expect(() => decideSync({ model: handle, lambda: 0.5, state })).toThrow(/training standard deviations/);
    // a past round's state: the error names that round; a state just inside the range is decided
    const far = new Array(11).fill(0);
    far[4] = 1e9;
    const history = { states: [new Array(11).fill(0), far], actions: [[0], [1]], rewards: [0, 0], costs: [0, 0] };
    expect(() => decideSync({ model: handle, lambda: 0.5, state: new Array(11).fill(0), history })).toThrow(/history\.states\[1\].*"x4" = 1000000000 lies/);
    const { stateMean, stateStd } = handle.meta.normalization;
    const edge = Array.from(stateMean, (m, j) => m + 999 * stateStd[j]);
    expect(decideSync({ model: handle, lambda: 0.5, state: edge }).action).toHaveLength(1);
  });

  it('solve() refuses static features of 1e5, and a rollout whose environment overflows stops with a typed error', async () => {
    const features = new Float64Array(20 * 8).fill(1e5);
    const ids = Uint32Array.from({ length: 20 }, (_, i) => i);
    await expect(solve({ model: handle, users: { ids, features }, budget: 100, env })).rejects.toMatchObject({ code: 'INPUT_OUT_OF_RANGE' });
    // The Oracle has no model to check the features against: users far along w_alpha + w_m buy
    // for sure at a basket value that overflows, and the rollout stops with a typed error.
    const w = syWeights(resolveSyConfig(env));
    const dir = w.wAlpha.map((a, j) => a + w.wM[j]);
    const norm = Math.hypot(...dir);
    const far = Float64Array.from({ length: 20 * 8 }, (_, i) => (1e5 * dir[i % 8]) / norm);
    const overflow = solve({ policy: 'oracle', users: { ids, features: far }, budget: 100, env });
    await expect(overflow).rejects.toThrow(NativeError);
    await expect(solve({ policy: 'oracle', users: { ids, features: far }, budget: 100, env })).rejects.toThrow(/non-finite reward or cost/);
  });

  it('a budget given as a multiple of a reference spend of 0 says why it cannot be met', async () => {
    // one round of users with an empty coupon table spend nothing under the logging policy
    await expect(
      solve({ policy: 'random', users: 3, budget: '0.5x', env: { ...env, rounds: 1, actionDims: [{ name: 'coupon', kind: 'cash', values: [0] }] } }),
    ).rejects.toThrow(/spends 0 on them.*in currency/);
  });

  it('a history whose states do not fill whole rounds is refused, not truncated', async () => {
    const state = new Array(11).fill(0);
    const history = { states: new Float32Array(11 + 3), actions: [[0]], rewards: [0], costs: [0] };
    await expect(decide({ model: handle, lambda: 0.5, state, history })).rejects.toThrow(/history\.states.*14 values.*need 11/);
  });
});

describe('decide() and the event loop', () => {
  it('decide() runs off the main thread: timers fire during 2,000 awaited calls; decideSync agrees', async () => {
    const state = Array.from({ length: 11 }, (_, j) => 0.1 * j);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      for (let i = 0; i < 2000; i++) await decide({ model: handle, lambda: 0.5, state });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
    expect(decideSync({ model: handle, lambda: 0.5, state })).toEqual(await decide({ model: handle, lambda: 0.5, state }));
  });

  it("decideSync's reused input arrays carry nothing from one call to the next: interleaved histories and λ equal decide()'s fresh ones", async () => {
    const K = handle.meta.config.actionSizes[0];
    const stateAt = (t: number, u: number) => Array.from({ length: 11 }, (_, j) => 0.05 * ((j + t + u) % 7));
    const historyOf = (u: number, past: number) => ({
      states: Array.from({ length: past }, (_, t) => stateAt(t, u)),
      actions: Array.from({ length: past }, (_, t) => [(u + t) % K]),
      rewards: Array.from({ length: past }, (_, t) => (u * t) % 3),
      costs: Array.from({ length: past }, (_, t) => ((u + t) % 2) * 0.5),
    });
    const queries = [3, 3, 0, 4, 3, 1, 3, 4].map((past, u) => ({ model: handle, lambda: 0.2 + 0.3 * (u % 3), state: stateAt(past, u), history: historyOf(u, past) }));
    const sync = queries.map((q) => decideSync(q));
    const fresh = await Promise.all(queries.map((q) => decide(q)));
    expect(sync).toEqual(fresh);
    // and the histories differ enough that some decisions differ
    expect(new Set(sync.map((d) => d.action.join())).size).toBeGreaterThan(1);
  });
});

describe('fuzz: extreme finite inputs', () => {
  const s = new CounterStream(17, 0, 0, 0);
  const extremes = [0, 1, -1, 1e38, -1e38, 3.4e38, 5e-324, -5e-324, 1e-310, 1e5, -1e5, 7];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(s.uniform() * xs.length)];
  /** A result may be an error, but only a typed one; a decision has no NaN and no −1. */
  const typedOnly = (e: unknown) => expect(e).toBeInstanceOf(SacoError);

  it('decide(): 300 states and histories of extreme values give a typed error or a finite decision', async () => {
    let decided = 0;
    for (let i = 0; i < 300; i++) {
      const state = Array.from({ length: 11 }, () => (s.uniform() < 0.8 ? s.normal() : pick(extremes)));
      const past = Math.floor(s.uniform() * 3);
      const history = {
        states: Array.from({ length: past }, () => Array.from({ length: 11 }, () => (s.uniform() < 0.9 ? s.normal() : pick(extremes)))),
        actions: Array.from({ length: past }, () => [Math.floor(s.uniform() * 4)]),
        rewards: Array.from({ length: past }, () => (s.uniform() < 0.8 ? 20 * s.uniform() : pick(extremes))),
        costs: Array.from({ length: past }, () => (s.uniform() < 0.8 ? 5 * s.uniform() : Math.abs(pick(extremes)))),
      };
      const lambda = s.uniform() < 0.9 ? s.uniform() * model.meta.normalization.lambdaMax : pick(extremes);
      try {
        const d = await decide({ model: handle, lambda, state, history });
        expect(d.action.every((a) => Number.isInteger(a) && a >= 0 && a < 4)).toBe(true);
        expect(d.probabilities.flat().every(Number.isFinite)).toBe(true);
        decided++;
      } catch (e) {
        typedOnly(e);
      }
    }
    expect(decided).toBeGreaterThan(30);
    expect(decided).toBeLessThan(300);
  });

  it('solve(): extreme features, counts and budgets give a typed error or a plan with BARate <= 1 and no NaN', async () => {
    let plans = 0;
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      const n = pick([1, 2, 7, 50]);
      const features = Float64Array.from({ length: n * 8 }, () => (s.uniform() < 0.98 ? s.normal() : pick(extremes)));
      const budget = pick([1e-300, 5e-324, 0.01, 10, 1e6, 1e300, 3.4e38]);
      const policy = pick(['codt', 'oracle', 'random'] as const);
      try {
        const r = await solve({ model: handle, policy, users: { ids: Uint32Array.from({ length: n }, (_, k) => k), features }, budget, env });
        expect([r.revenue, r.cost, r.roi, r.baRate, r.lambda].every(Number.isFinite)).toBe(true);
        expect(r.baRate).toBeLessThanOrEqual(1);
        expect(r.plan.every((a) => a >= 0 && a < 4)).toBe(true);
        plans++;
      } catch (e) {
        typedOnly(e);
        refused++;
      }
    }
    // both kinds of outcome were exercised
    expect(plans).toBeGreaterThan(5);
    expect(refused).toBeGreaterThan(5);
  });
});
