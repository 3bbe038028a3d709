/**
 * The fast paths of issue 15 against the plain ones they replace: the round-0 shared prefix
 * against per-user decoding, the subsampled λ search against the exhaustive one, the
 * block-wave arrival order of the budget-enforced replay against round-major, the natural
 * rollout kept as the enforced one when the budget rule withholds nothing, the persistent
 * thread pool at 1 and 2 threads and under concurrent calls, and the typed out-of-memory
 * error. Timings are never asserted (bench/solve.ts measures them).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { NativeError } from '../../src/errors.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { readOnnx } from '../../src/model/onnx.js';
import { loadNativeModel, nativeForward, nativeForwardSync, nativeRollout, type NativeModel } from '../../src/native/index.js';
import { solve, syEnvForModel } from '../../src/solve/index.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';

// The AVX-512 row kernel computes every row with the same instructions whatever the batch
// (native/layers.h), so the shared prefix and any block split give the same bits; elsewhere
// (Eigen's GEMM) they agree to float rounding.
const rowsIndependent = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const near = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m <= tol;
};

let model: CodtModel;
let h: NativeModel;
let env: ReturnType<typeof resolveSyConfig>;
const rounds = SY_MODEL_DATA.rounds;

beforeAll(async () => {
  model = readOnnx((await sharedModel('native')).path);
  h = loadNativeModel(model);
  env = resolveSyConfig({ ...syEnvForModel(model.meta, 1), users: 1 });
}, SHARED_MODEL_TIMEOUT);

afterAll(() => h?.unload());

describe('shared round-0 prefix', () => {
  it(`gives the same logits as decoding every user on its own (${rowsIndependent ? 'bit for bit: AVX-512 row kernel' : 'to 1e-5: Eigen GEMM'})`, async () => {
    const c = model.meta.config;
    const K = c.actionSizes.reduce((a, b) => a + b, 0);
    const B = 16; // one decoder block
    const T = 3;
    const lambda = 0.4 * model.meta.normalization.lambdaMax;
    const inputs = {
      batch: B, rounds: T,
      states: Float32Array.from({ length: B * T * c.stateDim }, (_, i) => Math.sin(0.37 * i)),
      rtg: Float32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 12.5 : 12.5 - 3 * Math.cos(i))),
      ctg: Float32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 2.25 : 2.25 - Math.sin(i))),
      actionsOneHot: Float32Array.from({ length: B * T * K }, (_, i) => ((i * 7) % K === 0 ? 1 : 0)),
      lambda: new Float32Array(B).fill(lambda),
    };
    const shared = await nativeForward(h, inputs, 'incremental'); // every user: the same round-0 targets and λ
    // the last user's round-0 target differs: the block cannot share, every user decodes its own
    const rtg = inputs.rtg.slice();
    rtg[(B - 1) * T] += 1;
    const unshared = await nativeForward(h, { ...inputs, rtg }, 'incremental');
    const per = (B - 1) * T * K;
    const tol = rowsIndependent ? 0 : 1e-5;
    expect(near(shared.subarray(0, per), unshared.subarray(0, per), tol)).toBe(true);
    // and one user alone, on the calling thread (decideSync's path)
    for (const u of [0, 7]) {
      const one = nativeForwardSync(h, {
        batch: 1, rounds: T, states: inputs.states.subarray(u * T * c.stateDim, (u + 1) * T * c.stateDim), rtg: inputs.rtg.subarray(u * T, (u + 1) * T),
        ctg: inputs.ctg.subarray(u * T, (u + 1) * T), actionsOneHot: inputs.actionsOneHot.subarray(u * T * K, (u + 1) * T * K), lambda: inputs.lambda.subarray(u, u + 1),
      });
      expect(near(one, shared.subarray(u * T * K, (u + 1) * T * K), tol)).toBe(true);
    }
  });

  it('gives the same plan, revenue and cost in a rollout, with and without a budget', async () => {
    const ids = Uint32Array.from({ length: 1000 }, (_, i) => 3 * i + 1);
    for (const budget of [Infinity, 4000]) {
      const spec = { env, rounds, budget, policy: 'codt', lambda: 0.9, model: h.id, userIds: ids, recordPlan: true };
      const [on, off] = await Promise.all([nativeRollout({ ...spec, sharedPrefix: true }), nativeRollout({ ...spec, sharedPrefix: false })]);
      if (rowsIndependent) {
        expect(on.revenue).toBe(off.revenue);
        expect(on.cost).toBe(off.cost);
        expect(Array.from(on.plan as Int32Array)).toEqual(Array.from(off.plan as Int32Array));
      } else {
        expect(Math.abs(on.revenue - off.revenue)).toBeLessThan(1e-6 * off.revenue);
      }
    }
  });
});

describe('the budget-enforced replay', () => {
  const users = Uint32Array.from({ length: 10_000 }, (_, i) => 20_000 + i);
  let spec: { env: typeof env; rounds: number; policy: string; model: number; userIds: Uint32Array; recordPlan: boolean };
  beforeAll(() => {
    spec = { env, rounds, policy: 'codt', model: h.id, userIds: users, recordPlan: true };
  });

  it('in waves of 2,048 users (memory bounded by a wave) never exceeds B, and its revenue is within 0.5% of round-major on 10,000 users where a search ends', async () => {
    const natural = await nativeRollout({ ...spec, model: h.id, budget: Infinity, lambda: 0.3 });
    // budgets that bind a little (the end of a search) and more (a λ below λ*: logged, the
    // wave order then withholds from the last wave's users in every round)
    for (const share of [0.99, 0.9, 0.5]) {
      const budget = share * natural.cost;
      const waves = await nativeRollout({ ...spec, model: h.id, budget, lambda: 0.3, waveUsers: 2048 });
      const roundMajor = await nativeRollout({ ...spec, model: h.id, budget, lambda: 0.3, waveUsers: 0 });
      const gap = (waves.revenue - roundMajor.revenue) / roundMajor.revenue;
      console.log(`budget ${(100 * share).toFixed(0)}% of the natural spend: waves ${waves.revenue.toFixed(0)} (cost ${waves.cost.toFixed(0)}, ${waves.blocked} withheld), round-major ${roundMajor.revenue.toFixed(0)} (cost ${roundMajor.cost.toFixed(0)}, ${roundMajor.blocked} withheld): ${(100 * gap).toFixed(3)}%`);
      expect(waves.cost).toBeLessThanOrEqual(budget);
      expect(roundMajor.cost).toBeLessThanOrEqual(budget);
      expect(waves.blocked).toBeGreaterThan(0);
      if (share >= 0.99) expect(Math.abs(gap)).toBeLessThan(0.005);
    }
  });

  it('is the natural rollout, bit for bit, when the budget rule withholds nothing on it', async () => {
    const natural = await nativeRollout({ ...spec, model: h.id, budget: Infinity, lambda: 0.8 });
    const budget = natural.cost + 100;
    const kept = await nativeRollout({ ...spec, model: h.id, budget, lambda: 0.8 });
    const replayed = await nativeRollout({ ...spec, model: h.id, budget, lambda: 0.8, optimistic: false });
    expect(replayed.blocked).toBe(0);
    for (const r of [kept, replayed]) {
      expect(r.revenue).toBe(natural.revenue);
      expect(r.cost).toBe(natural.cost);
      expect(r.coupons).toBe(natural.coupons);
      expect(Array.from(r.plan as Int32Array)).toEqual(Array.from(natural.plan as Int32Array));
    }
  });

  it('an allocation that cannot fit is a NativeError that says how many users fit', async () => {
    const err = await nativeRollout({ ...spec, model: h.id, budget: 1000, lambda: 0.8, memoryLimit: 4 << 20 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect((err as NativeError).code).toBe('NATIVE_OUT_OF_MEMORY');
    const fit = Number(/about (\d+) users fit/.exec((err as Error).message)?.[1]);
    expect(fit).toBeGreaterThan(0);
    expect(fit).toBeLessThan(users.length);
    // that many do fit
    await expect(nativeRollout({ ...spec, model: h.id, userIds: users.subarray(0, fit), budget: 1000, lambda: 0.8, memoryLimit: 4 << 20 })).resolves.toBeTruthy();
  });
});

describe('subsampled λ search', () => {
  it("finds a λ* the exhaustive search accepts (B - ε <= C <= B on every user) and revenue within 0.5% of it, with fewer rollouts on every user", async () => {
    const users = 12_000; // above the 8,192 users from which the search subsamples
    const common = { model: h, users: { ids: Uint32Array.from({ length: users }, (_, i) => 50_000 + i) }, env: syEnvForModel(model.meta, 1) };
    for (const budget of ['0.25x', '0.5x'] as const) {
      const exhaustive = await solve({ ...common, budget, subsample: false });
      const sampled = await solve({ ...common, budget });
      const epsilon = 0.02 * exhaustive.budget;
      console.log(`${budget}: exhaustive λ* ${exhaustive.lambda.toFixed(4)} (cost ${exhaustive.cost.toFixed(0)}, ${exhaustive.rollouts - 1} rollouts); subsampled λ* ${sampled.lambda.toFixed(4)} (cost ${sampled.cost.toFixed(0)}, ${sampled.rollouts - 1} rollouts on every user + ${sampled.sampleRollouts} on ${sampled.sampleUsers} users); revenue ${(100 * (sampled.revenue / exhaustive.revenue - 1)).toFixed(3)}%`);
      expect(sampled.sampleRollouts).toBeGreaterThan(0);
      expect(sampled.rollouts).toBeLessThan(exhaustive.rollouts);
      for (const r of [exhaustive, sampled]) {
        expect(r.cost).toBeLessThanOrEqual(r.budget);
        if (!r.needsMoreThanLambdaMax) expect(r.cost).toBeGreaterThanOrEqual(r.budget - epsilon);
      }
      expect(Math.abs(sampled.revenue / exhaustive.revenue - 1)).toBeLessThan(0.005);
      // λ* within the tolerance: the subsampled λ* spends, on every user, within the band the exhaustive search stops in
      const full = await nativeRollout({ env, rounds, budget: Infinity, policy: 'codt', lambda: sampled.lambda, model: h.id, userIds: common.users.ids });
      expect(full.cost).toBeLessThanOrEqual(exhaustive.budget);
      expect(full.cost).toBeGreaterThanOrEqual(exhaustive.budget - epsilon);
    }
  });
});

describe('persistent thread pool', () => {
  it('1 and 2 threads give the same search and plan; concurrent solve() calls equal serial ones', async () => {
    const common = { model: h, users: 9000, env: syEnvForModel(model.meta, 1) };
    const one = await solve({ ...common, budget: '0.5x', threads: 1 });
    const two = await solve({ ...common, budget: '0.5x', threads: 2 });
    expect(two.lambda).toBe(one.lambda);
    expect(two.revenue).toBe(one.revenue);
    expect(two.trace).toEqual(one.trace);
    expect(Array.from(two.plan)).toEqual(Array.from(one.plan));
    const budgets = ['0.3x', '0.5x', '0.7x'] as const;
    const serial = [];
    for (const budget of budgets) serial.push(await solve({ ...common, users: 3000, budget }));
    const concurrent = await Promise.all(budgets.map((budget) => solve({ ...common, users: 3000, budget })));
    for (let i = 0; i < budgets.length; i++) {
      expect(concurrent[i].lambda).toBe(serial[i].lambda);
      expect(concurrent[i].revenue).toBe(serial[i].revenue);
      expect(Array.from(concurrent[i].plan)).toEqual(Array.from(serial[i].plan));
    }
  });
});
