/**
 * solve() and decide() on SY with the shared trained model: C(λ) falls with λ, a binding
 * budget is met (BARate in [0.98, 1]) with more revenue than Random, both λ searches end
 * feasible, concurrency does not change results, and bad input is refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { ArgumentError } from '../../src/errors.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { readOnnx } from '../../src/model/onnx.js';
import { generateSy, loadNativeModel, nativeModelCount, nativePolicies, nativeRollout, type NativeModel } from '../../src/native/index.js';
import { POLICIES } from '../../src/policy/registry.js';
import { decide, solve, syEnvForModel } from '../../src/solve/index.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';

let model: CodtModel;
let handle: NativeModel;
let test: Trajectories;
const env = { seed: SY_MODEL_DATA.seed, rounds: SY_MODEL_DATA.rounds };

beforeAll(async () => {
  model = readOnnx((await sharedModel('native')).path);
  handle = loadNativeModel(model);
  ({ test } = splitByUser(buildTrajectories(syLogToInteractionLog(await generateSy(SY_MODEL_DATA))), { seed: 1 }));
}, SHARED_MODEL_TIMEOUT);

function spearman(x: number[], y: number[]): number {
  const rank = (v: number[]) => {
    const order = v.map((val, i) => [val, i] as const).sort((a, b) => a[0] - b[0]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
      for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x);
  const ry = rank(y);
  const mx = rx.reduce((a, b) => a + b, 0) / rx.length;
  const my = ry.reduce((a, b) => a + b, 0) / ry.length;
  let num = 0, dx = 0, dy = 0;
  for (let i = 0; i < rx.length; i++) {
    num += (rx[i] - mx) * (ry[i] - my);
    dx += (rx[i] - mx) ** 2;
    dy += (ry[i] - my) ** 2;
  }
  return num / Math.sqrt(dx * dy);
}

describe('solve() on SY', () => {
  it('C(λ) is non-increasing: Spearman ρ <= -0.95 over 21 λ values', async () => {
    const lambdaMax = model.meta.normalization.lambdaMax;
    const lambdas = Array.from({ length: 21 }, (_, g) => (lambdaMax * g) / 20);
    const ids = Uint32Array.from({ length: 2000 }, (_, i) => 10000 + i);
    const costs: number[] = [];
    for (const lambda of lambdas) costs.push((await nativeRollout({ env: resolveSyConfig(env), rounds: 5, budget: Infinity, policy: 'codt', lambda, model: handle.id, userIds: ids })).cost);
    const rho = spearman(lambdas, costs);
    console.log(`C(λ) on 2000 fresh SY users: ${costs.map((c) => c.toFixed(0)).join(' ')}; Spearman ρ = ${rho.toFixed(4)}`);
    expect(rho).toBeLessThanOrEqual(-0.95);
  });

  it('at a binding budget: BARate in [0.98, 1], more revenue than Random; the Oracle is reported', async () => {
    const common = { users: test, budget: '0.5x' as const, env };
    const saco = await solve({ ...common, model: handle });
    const random = await solve({ ...common, policy: 'random' });
    const oracle = await solve({ ...common, policy: 'oracle', lambdaMax: 20 });
    const none = await nativeRollout({ env: resolveSyConfig(env), rounds: 5, budget: 1e-9, policy: 'random', lambda: 0, userIds: Uint32Array.from(test.userIds.map(Number)), features: undefined });
    console.log(
      `budget ${saco.budget.toFixed(0)} on ${saco.users} test users: SACO λ* ${saco.lambda.toFixed(3)} revenue ${saco.revenue.toFixed(0)} BARate ${saco.baRate.toFixed(3)} (${saco.rollouts} rollouts); ` +
        `Random ${random.revenue.toFixed(0)} (BARate ${random.baRate.toFixed(3)}); Oracle ${oracle.revenue.toFixed(0)} (BARate ${oracle.baRate.toFixed(3)}); no coupons ${none.revenue.toFixed(0)}; ` +
        `SACO reaches ${((100 * (saco.revenue - none.revenue)) / (oracle.revenue - none.revenue)).toFixed(1)}% of the Oracle's incremental revenue`,
    );
    expect(saco.budgetNotBinding).toBe(false);
    expect(saco.baRate).toBeGreaterThanOrEqual(0.98);
    expect(saco.baRate).toBeLessThanOrEqual(1);
    expect(saco.revenue).toBeGreaterThan(random.revenue);
    expect(oracle.revenue).toBeGreaterThan(random.revenue);
    expect(saco.plan.length).toBe(test.users * 5);
  });

  it('SLSQP (Algorithm 2) and bisection both end at a feasible λ', async () => {
    const common = { users: 600, budget: '0.4x' as const, env, model: handle };
    const b = await solve({ ...common, method: 'bisection' });
    const s = await solve({ ...common, method: 'slsqp' });
    console.log(`bisection: λ* ${b.lambda.toFixed(3)}, BARate ${b.baRate.toFixed(3)}, revenue ${b.revenue.toFixed(0)}, ${b.rollouts} rollouts; SLSQP: λ* ${s.lambda.toFixed(3)}, BARate ${s.baRate.toFixed(3)}, revenue ${s.revenue.toFixed(0)}, ${s.rollouts} rollouts`);
    for (const r of [b, s]) {
      expect(r.feasible).toBe(true);
      expect(r.cost).toBeLessThanOrEqual(r.budget);
      // the natural spend at λ* is within the budget too
      expect(r.trace.some((p) => Math.abs(p.lambda - r.lambda) < 1e-12 && p.cost <= r.budget)).toBe(true);
    }
  });

  it('200 concurrent solve() calls return what serial calls return', async () => {
    const jobs = Array.from({ length: 200 }, (_, k) => ({ users: { ids: Uint32Array.from({ length: 30 }, (_, i) => k * 30 + i) }, budget: '0.5x' as const, env, model: handle }));
    const serial = [];
    for (const j of jobs.slice(0, 20)) serial.push(await solve(j));
    const parallel = await Promise.all(jobs.map((j) => solve(j)));
    for (let k = 0; k < 20; k++) {
      expect(parallel[k].lambda).toBe(serial[k].lambda);
      expect(parallel[k].revenue).toBe(serial[k].revenue);
      expect(Array.from(parallel[k].plan)).toEqual(Array.from(serial[k].plan));
    }
    expect(new Set(parallel.map((p) => p.revenue)).size).toBeGreaterThan(100);
  });
});

describe('the SY environment of a model', () => {
  it('is rebuilt from the model: rounds, features, and bundle dimensions by column name', async () => {
    expect(syEnvForModel(model.meta, 4)).toEqual({ seed: 4, rounds: 5, features: 8, actionDims: [{ name: 'coupon', kind: 'cash', values: [0, 2, 5, 10] }] });
    const bundle = { ...model.meta, actionEncodings: [{ column: 'action_cash', values: [0, 2, 5] }, { column: 'action_discount', values: [0, 0.1, 0.2] }] };
    expect(syEnvForModel(bundle, 1).actionDims).toEqual([
      { name: 'cash', kind: 'cash', values: [0, 2, 5] },
      { name: 'discount', kind: 'discount', values: [0, 0.1, 0.2] },
    ]);
    expect(() => syEnvForModel({ ...model.meta, actionEncodings: [{ column: 'segment', values: ['Mail', 'None'] }] }, 1)).toThrow(/not trained on SY/);
  });
});

describe('decide()', () => {
  it('gives each user the coupon the plan gives at round 0', async () => {
    const plan = await solve({ users: test, budget: '0.5x', env, model: handle });
    let agree = 0;
    const n = 100;
    for (let i = 0; i < n; i++) {
      const state = test.states.subarray(i * 5 * test.stateDim, i * 5 * test.stateDim + test.stateDim);
      const d = await decide({ model: handle, lambda: plan.lambda, state });
      if (d.action[0] === plan.plan[i * 5]) agree++;
      expect(d.probabilities[0].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(d.labels[0]).toBe(model.meta.actionEncodings[0].values[d.action[0]]);
    }
    expect(agree).toBeGreaterThanOrEqual(95);
  });

  it('given a model object or a path, loads the weights once and decides as the loaded model does', async () => {
    const file = (await sharedModel('native')).path;
    const fromDisk = readOnnx(file);
    const state = Array.from(test.states.subarray(0, test.stateDim));
    const expected = await decide({ model: handle, lambda: 0.7, state });
    const before = nativeModelCount();
    for (let i = 0; i < 50; i++) {
      expect(await decide({ model: file, lambda: 0.7, state })).toEqual(expected);
      expect(await decide({ model: fromDisk, lambda: 0.7, state })).toEqual(expected);
    }
    // one copy for the path, one for the object, whatever the number of calls
    expect(nativeModelCount()).toBe(before + 2);
    await expect(decide({ model: '/nonexistent/m.onnx', lambda: 0.7, state })).rejects.toThrow(ArgumentError);
    await expect(decide({ model: {} as never, lambda: 0.7, state })).rejects.toThrow(ArgumentError);
  });

  it('refuses bad input with typed errors', async () => {
    const state = Array.from(test.states.subarray(0, test.stateDim));
    await expect(decide({ model: handle, lambda: 0.5, state: state.slice(1) })).rejects.toThrow(/state.*expects 11/);
    await expect(decide({ model: handle, lambda: 0.5, state: state.map(() => NaN) })).rejects.toThrow(ArgumentError);
    await expect(decide({ model: handle, lambda: -1, state })).rejects.toThrow(/lambda/);
    await expect(decide({ model: handle, lambda: 1e9, state })).rejects.toThrow(/lambda/);
    const long = { states: Array.from({ length: 5 }, () => state), actions: Array.from({ length: 5 }, () => [0]), rewards: [0, 0, 0, 0, 0], costs: [0, 0, 0, 0, 0] };
    await expect(decide({ model: handle, lambda: 0.5, state, history: long })).rejects.toThrow(/context/);
    await expect(solve({ users: 10, budget: 0, env, model: handle })).rejects.toThrow(/budget/);
    await expect(solve({ users: 10, budget: -5, env, model: handle })).rejects.toThrow(/budget/);
    await expect(solve({ users: 10, budget: Infinity, env, model: handle })).rejects.toThrow(/budget/);
    await expect(solve({ users: 10, budget: '2y' as never, env, model: handle })).rejects.toThrow(/budget/);
    await expect(solve({ users: 10, budget: 100, env, model: handle, rounds: 9 })).rejects.toThrow(/rounds/);
    const gone = loadNativeModel(model);
    gone.unload();
    await expect(solve({ users: 10, budget: 100, env, model: gone })).rejects.toThrow(/not loaded/);
    await expect(decide({ model: gone, lambda: 0.5, state })).rejects.toThrow(/not loaded/);
  });
});

describe('policy registry', () => {
  it('TypeScript lists the policies of the native registry, with the same model needs', () => {
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    expect(POLICIES.map((p) => ({ name: p.name, needsModel: p.needsModel })).sort(byName)).toEqual(nativePolicies());
  });

  it('an unknown policy is refused with the known names, in TS and natively', async () => {
    await expect(solve({ users: 10, budget: 100, env, model: handle, policy: 'greedy' as never })).rejects.toThrow(/known: codt, random, oracle/);
    const known = nativePolicies().map((p) => p.name).join(', ');
    await expect(nativeRollout({ env: resolveSyConfig({ ...env, users: 1 }), rounds: 2, budget: Infinity, policy: 'greedy', lambda: 0, userIds: Uint32Array.of(1) })).rejects.toThrow(`unknown policy 'greedy' (known: ${known})`);
  });
});
