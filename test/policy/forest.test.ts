/**
 * The Forest baseline is itself: the causal forest beats a linear T-learner where effects are
 * strongly non-linear and heterogeneous; its leaves are honest by construction; on SY static
 * its policy reaches >= 90% of the myopic Oracle's incremental revenue at a matched 0.5x
 * budget; it is deterministic whatever the threads, saves and loads, and refuses what it
 * cannot handle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { CounterStream } from '../../src/data/rng.js';
import { resolveSyConfig, SY_BUNDLE_DIMS } from '../../src/data/synth.js';
import { buildTrajectories } from '../../src/data/trajectories.js';
import { ArgumentError, NativeError } from '../../src/errors.js';
import { generateSy, native, nativeForestCount, nativeForestTree, nativeRollout } from '../../src/native/index.js';
import { fitForest, forestRows, loadForest, type CausalForest, type ForestRows } from '../../src/policy/forest.js';
import { solve } from '../../src/solve/index.js';
import { firstMismatch } from '../helpers/fixtures.js';

// ---------------------------------------------------------------- the non-linear fixture
// x ~ U(-1, 1)^6, three arms (0 = control). Reward uplift: arm 1 = 2·sign(x0)·x1², arm 2 =
// 3·(|x2| − 0.5); cost uplift: arm 1 = 1 + [x3 > 0], arm 2 = 2·(x4 > 0 ? 1 : 0.3). Baseline
// reward x2 + |x3|, noise N(0, 1) on reward and N(0, 0.5²) on the cost of a coupon.
const D = 6;
const K = 3;
const tauR = (x: ArrayLike<number>, k: number) => (k === 0 ? 0 : k === 1 ? 2 * Math.sign(x[0]) * x[1] * x[1] : 3 * (Math.abs(x[2]) - 0.5));
const tauC = (x: ArrayLike<number>, k: number) => (k === 0 ? 0 : k === 1 ? 1 + (x[3] > 0 ? 1 : 0) : 2 * (x[4] > 0 ? 1 : 0.3));

function fixture(rows: number, seed: number): ForestRows {
  const x = new Float32Array(rows * D);
  const arm = new Int32Array(rows);
  const reward = new Float64Array(rows);
  const cost = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const s = new CounterStream(seed, i, 0, 7);
    for (let j = 0; j < D; j++) x[i * D + j] = 2 * s.uniform() - 1;
    const xi = x.subarray(i * D, i * D + D);
    const k = Math.min(K - 1, Math.floor(s.uniform() * K));
    arm[i] = k;
    reward[i] = xi[2] + Math.abs(xi[3]) + tauR(xi, k) + s.normal();
    cost[i] = k === 0 ? 0 : tauC(xi, k) + 0.5 * s.normal();
  }
  return { x, features: D, arm, arms: K, control: 0, reward, cost };
}

/** Least squares of y on [1, x] over the rows of one arm (normal equations, Gaussian elimination). */
function leastSquares(data: ForestRows, y: Float64Array, k: number): number[] {
  const P = D + 1;
  const A = Array.from({ length: P }, () => new Array<number>(P + 1).fill(0));
  for (let i = 0; i < data.arm.length; i++) {
    if (data.arm[i] !== k) continue;
    const z = [1, ...data.x.subarray(i * D, i * D + D)];
    for (let a = 0; a < P; a++) {
      for (let b = 0; b < P; b++) A[a][b] += z[a] * z[b];
      A[a][P] += z[a] * y[i];
    }
  }
  for (let c = 0; c < P; c++) {
    let p = c;
    for (let r = c + 1; r < P; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    for (let r = 0; r < P; r++) {
      if (r === c) continue;
      const f = A[r][c] / A[c][c];
      for (let q = c; q <= P; q++) A[r][q] -= f * A[c][q];
    }
  }
  return A.map((row, c) => row[P] / row[c]);
}

/** The linear T-learner: one least-squares fit per arm and outcome; uplift = arm − control. */
function tLearner(data: ForestRows): (x: ArrayLike<number>) => { r: number[]; c: number[] } {
  const fit = (y: Float64Array) => Array.from({ length: K }, (_, k) => leastSquares(data, y, k));
  const br = fit(data.reward);
  const bc = fit(data.cost);
  const at = (b: number[], x: ArrayLike<number>) => b[0] + Array.from(x).reduce((s, v, j) => s + v * b[j + 1], 0);
  return (x) => ({ r: br.map((b) => at(b, x) - at(br[0], x)), c: bc.map((b) => at(b, x) - at(bc[0], x)) });
}

/** True value per user of acting greedily on estimated uplifts at λ (control when nothing scores > 0). */
function policyValue(test: Float32Array, estR: (i: number, k: number) => number, estC: (i: number, k: number) => number, lambda: number): number {
  const n = test.length / D;
  let value = 0;
  for (let i = 0; i < n; i++) {
    const x = test.subarray(i * D, i * D + D);
    let best = 0, chosen = 0;
    for (let k = 1; k < K; k++) {
      const s = estR(i, k) - lambda * estC(i, k);
      if (s > best) [best, chosen] = [s, k];
    }
    value += tauR(x, chosen) - lambda * tauC(x, chosen);
  }
  return value / n;
}

describe('causal forest on a non-linear fixture', () => {
  it('beats a linear T-learner: lower uplift MSE and a better greedy policy', async () => {
    const train = fixture(20000, 11);
    const test = fixture(2000, 12).x;
    const n = test.length / D;
    const forest = await fitForest(train, { seed: 1 });
    try {
      const f = await forest.predict(test);
      const t = tLearner(train);
      const tl = Array.from({ length: n }, (_, i) => t(test.subarray(i * D, i * D + D)));
      const mse = (est: (i: number, k: number) => number, truth: typeof tauR, k: number) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += (est(i, k) - truth(test.subarray(i * D, i * D + D), k)) ** 2;
        return s / n;
      };
      const fr = (i: number, k: number) => f.reward[i * K + k];
      const fc = (i: number, k: number) => f.cost[i * K + k];
      const lr = (i: number, k: number) => tl[i].r[k];
      const lc = (i: number, k: number) => tl[i].c[k];
      const forestMse = [1, 2].map((k) => mse(fr, tauR, k));
      const linearMse = [1, 2].map((k) => mse(lr, tauR, k));
      const best = policyValue(test, (i, k) => tauR(test.subarray(i * D, i * D + D), k), (i, k) => tauC(test.subarray(i * D, i * D + D), k), 0.5);
      const forestValue = policyValue(test, fr, fc, 0.5);
      const linearValue = policyValue(test, lr, lc, 0.5);
      console.log(
        `reward-uplift MSE, arms 1 and 2: forest ${forestMse.map((v) => v.toFixed(3)).join(', ')}; linear T-learner ${linearMse.map((v) => v.toFixed(3)).join(', ')}. ` +
          `Cost-uplift MSE: forest ${[1, 2].map((k) => mse(fc, tauC, k).toFixed(3)).join(', ')}; T-learner ${[1, 2].map((k) => mse(lc, tauC, k).toFixed(3)).join(', ')}. ` +
          `Greedy policy value at λ = 0.5 per user: forest ${forestValue.toFixed(3)}, T-learner ${linearValue.toFixed(3)}, truth ${best.toFixed(3)}`,
      );
      for (const k of [0, 1]) expect(forestMse[k]).toBeLessThan(0.5 * linearMse[k]);
      expect(forestValue).toBeGreaterThan(linearValue);
      expect(forestValue).toBeGreaterThan(0.6 * best);  // a floor against regressions: it reaches ~75%
    } finally {
      forest.unload();
    }
  });
});

describe('honesty, by construction', () => {
  const data = fixture(4000, 21);
  let one: CausalForest;
  beforeAll(async () => {
    one = await fitForest(data, { trees: 1, seed: 5, minNodeSize: 10 });
  });
  afterAll(() => one.unload());

  it("a leaf's statistics are exactly the sums over the estimation half's rows that reach it, and the halves are disjoint", () => {
    const tree = nativeForestTree(one.id, 0);
    expect(tree.feature.length).toBeGreaterThan(10);
    const split = new Set(tree.split);
    expect(tree.estimate.some((r) => split.has(r))).toBe(false);
    expect(tree.split.length + tree.estimate.length).toBe(2000);
    const leaf = new Float64Array(tree.leaf.length);
    for (const r of tree.estimate) {
      let node = 0;
      while (tree.feature[node] >= 0) node = data.x[r * D + tree.feature[node]] <= tree.threshold[node] ? tree.left[node] : tree.right[node];
      const cell = (tree.left[node] * K + data.arm[r]) * 3;
      leaf[cell] += 1;
      leaf[cell + 1] += data.reward[r];
      leaf[cell + 2] += data.cost[r];
    }
    expect(firstMismatch(tree.leaf, leaf)).toBeNull();
  });

  it("shifting the splitting half's outcomes arm by arm changes no split and no leaf; the same shift of the estimation half moves the uplifts by exactly the shift", async () => {
    const tree = nativeForestTree(one.id, 0);
    // an arm-wise shift leaves every node's residuals from its arm means, and so every split, as they are
    const delta = [0, 3, -2];
    const shifted = (rows: Uint32Array): ForestRows => {
      const reward = Float64Array.from(data.reward);
      const cost = Float64Array.from(data.cost);
      for (const r of rows) {
        reward[r] += delta[data.arm[r]];
        cost[r] += delta[data.arm[r]] / 2;
      }
      return { ...data, reward, cost };
    };
    const probe = fixture(500, 22).x;
    const base = await one.predict(probe);
    const splitShift = await fitForest(shifted(tree.split), { trees: 1, seed: 5, minNodeSize: 10 });
    const estimateShift = await fitForest(shifted(tree.estimate), { trees: 1, seed: 5, minNodeSize: 10 });
    try {
      for (const f of [splitShift, estimateShift]) {
        const t = nativeForestTree(f.id, 0);
        expect(firstMismatch(t.feature, tree.feature)).toBeNull();
        expect(firstMismatch(t.threshold, tree.threshold)).toBeNull();
      }
      const a = await splitShift.predict(probe);
      expect(firstMismatch(a.reward, base.reward)).toBeNull();
      expect(firstMismatch(a.cost, base.cost)).toBeNull();
      const b = await estimateShift.predict(probe);
      let moved = 0;
      for (let i = 0; i < probe.length / D; i++) {
        for (let k = 1; k < K; k++) {
          const j = i * K + k;
          if (base.reward[j] === 0 && base.cost[j] === 0) continue;  // no rows of the arm at x: no estimate
          expect(b.reward[j] - base.reward[j]).toBeCloseTo(delta[k] - delta[0], 9);
          expect(b.cost[j] - base.cost[j]).toBeCloseTo((delta[k] - delta[0]) / 2, 9);
          moved++;
        }
      }
      expect(moved).toBeGreaterThan(900);
    } finally {
      splitShift.unload();
      estimateShift.unload();
    }
  });
});

describe('forest plumbing', () => {
  it('is the same forest whatever the threads; saves and loads to the same predictions; refuses corrupt bytes', async () => {
    const data = fixture(3000, 31);
    const a = await fitForest(data, { trees: 20, seed: 9, threads: 1 });
    const b = await fitForest(data, { trees: 20, seed: 9, threads: 2 });
    const before = nativeForestCount();
    try {
      const bytes = await a.save();
      expect(firstMismatch(bytes, await b.save())).toBeNull();
      const c = await loadForest(bytes);
      const probe = fixture(300, 32).x;
      const [pa, pc] = [await a.predict(probe), await c.predict(probe)];
      expect(firstMismatch(pa.reward, pc.reward)).toBeNull();
      expect(firstMismatch(pa.cost, pc.cost)).toBeNull();
      c.unload();
      expect(nativeForestCount()).toBe(before);
      const cut = bytes.subarray(0, bytes.length - 5);
      await expect(loadForest(cut)).rejects.toMatchObject({ code: 'NATIVE_ARGUMENT', message: expect.stringMatching(/truncated/) });
      const bad = Uint8Array.from(bytes);
      bad[0] = 0;
      await expect(loadForest(bad)).rejects.toBeInstanceOf(NativeError);
    } finally {
      a.unload();
      b.unload();
    }
  });

  it('refuses more than 256 joint actions, a log without a free action, a missing forest and an arm with no rows, each saying why', async () => {
    const bundle = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 20, rounds: 2, actionDims: SY_BUNDLE_DIMS })));
    const wide = { ...bundle, actionEncodings: bundle.actionEncodings.map((e) => ({ ...e, values: Array.from({ length: 17 }, (_, k) => k) })) };
    expect(() => forestRows(wide)).toThrow(/at most 256 joint actions; action_cash \(17\) × action_discount \(17\) make 289/);
    const data = fixture(200, 41);
    // a log whose control is not stated, where every action costs: no arm to call the control
    const logged = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 20, rounds: 2 })));
    const paid = { ...logged, costs: new Float32Array(40).fill(1), actionEncodings: logged.actionEncodings.map(({ control: _, ...e }) => e) };
    expect(() => forestRows(paid)).toThrow(/no-coupon action/);
    // a stated control is taken as it is
    expect(forestRows({ ...logged, costs: paid.costs }).control).toBe(0);
    await expect(fitForest({ ...data, arm: new Int32Array(200) })).rejects.toThrow(/arm 1 has no rows/);
    await expect(solve({ policy: 'forest', users: 10, budget: 100 })).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe('forest boundary fuzz', () => {
  it('random arguments and corrupted bytes are refused with a NativeError or work, never a crash', async () => {
    const s = new CounterStream(77, 0, 0, 0);
    const pick = <T>(xs: T[]): T => xs[Math.floor(s.uniform() * xs.length)];
    const junk = (): unknown => pick<unknown>([undefined, null, -1, 0, 1, 2.5, 1e12, NaN, Infinity, 'x', {}, [], new Float64Array(3), new Int32Array(2), new Float32Array(5)]);
    const valid = <T>(v: T): unknown => (s.uniform() < 0.8 ? v : junk());
    const data = fixture(300, 51);
    const good = await fitForest(data, { trees: 3, seed: 1 });
    const bytes = await good.save();
    const b = native() as unknown as Record<string, (...args: unknown[]) => unknown>;
    let ok = 0, refused = 0;
    const attempt = async (call: () => unknown) => {
      try {
        const out = await call();
        if (typeof out === 'number' && Number.isInteger(out) && out > 0 && out !== good.id) b.forestUnload(out);
        ok++;
      } catch (e) {
        expect(e).toBeInstanceOf(NativeError);
        refused++;
      }
    };
    try {
      for (let i = 0; i < 150; i++) {
        const fields = { x: valid(data.x), features: valid(D), arm: valid(data.arm), arms: valid(K), control: valid(0), reward: valid(data.reward), cost: valid(data.cost) };
        await attempt(() => b.forestFit(valid(fields), valid({ trees: valid(2), bins: valid(16), mtry: valid(3), sampleFraction: valid(0.5), seed: valid(3) })));
        const corrupt = Uint8Array.from(bytes);
        for (let k = 0; k < 1 + Math.floor(s.uniform() * 4); k++) corrupt[Math.floor(s.uniform() * corrupt.length)] = Math.floor(s.uniform() * 256);
        await attempt(async () => {
          const id = (await b.forestLoad(valid(corrupt))) as number;
          try {
            await b.forestPredict(id, data.x.subarray(0, 60));  // whatever loaded is safe to walk
          } finally {
            b.forestUnload(id);
          }
        });
        await attempt(() => b.forestPredict(valid(good.id), valid(data.x.subarray(0, 12))));
        await attempt(() => b.forestTree(valid(good.id), valid(1)));
        const arm = { count: valid(10), meanReward: valid(1), meanCost: valid(0.5), varReward: valid(1), varCost: valid(1), cov: valid(0) };
        const bandit = valid({ arms: valid([arm, arm, arm, arm]), weight: valid(5), seed: valid(1) });
        await attempt(() => b.rollout({ env: resolveSyConfig({ users: 1 }), rounds: 2, budget: Infinity, policy: valid('bandit'), lambda: 0, userIds: Uint32Array.of(1, 2), bandit, forest: valid(good.id) }));
      }
    } finally {
      good.unload();
    }
    console.log(`forest boundary fuzz: ${ok} calls worked, ${refused} were refused`);
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});

describe('the Forest policy on SY static (no sequential effects)', () => {
  it("reaches >= 90% of the myopic Oracle's incremental revenue at a matched 0.5x budget", async () => {
    const env = { seed: 7, sequential: false };
    const train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 3000 })));
    const forest = await fitForest(train, { trees: 50, mtry: 4, seed: 1 });
    try {
      const ids = Uint32Array.from({ length: 2000 }, (_, i) => 100000 + i);  // fresh users
      const f = await solve({ policy: 'forest', forest, users: { ids }, budget: '0.5x', env });
      const o = await solve({ policy: 'oracle', users: { ids }, budget: '0.5x', env, lambdaMax: 20 });
      const none = await nativeRollout({ env: resolveSyConfig(env), rounds: 10, budget: 1e-9, policy: 'random', lambda: 0, userIds: ids });
      const share = (f.revenue - none.revenue) / (o.revenue - none.revenue);
      console.log(
        `SY static, 3000 training users, 2000 fresh users, budget ${f.budget.toFixed(0)} (0.5x): Forest revenue ${f.revenue.toFixed(0)} (λ* ${f.lambda.toFixed(3)}, BARate ${f.baRate.toFixed(3)}, ${f.rollouts} rollouts), ` +
          `Oracle ${o.revenue.toFixed(0)} (λ* ${o.lambda.toFixed(3)}, BARate ${o.baRate.toFixed(3)}), no coupon ${none.revenue.toFixed(0)}: Forest reaches ${(100 * share).toFixed(1)}% of the Oracle's incremental revenue`,
      );
      expect(f.baRate).toBeLessThanOrEqual(1);
      expect(f.baRate).toBeGreaterThanOrEqual(0.95);
      expect(share).toBeGreaterThanOrEqual(0.9);
    } finally {
      forest.unload();
    }
  });
});

describe('the Forest policy on a bundle (two action dimensions)', () => {
  it('an arm is a joint action: each decision is the decoded argmax of the forest\'s uplifts at the user\'s state', async () => {
    const env = { seed: 5, sequential: false, actionDims: SY_BUNDLE_DIMS };
    const train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 1500, rounds: 4 })));
    const rows = forestRows(train);
    // 3 cash × 3 discount values; the control (cash 0, discount 0) is joint action 0
    expect([rows.arms, rows.control]).toEqual([9, 0]);
    // the joint index of a logged row: cash index × 3 + discount index
    expect(rows.arm[0]).toBe(train.actions[0] * 3 + train.actions[1]);
    const forest = await fitForest(rows, { trees: 20, seed: 1 });
    try {
      // users 0..199 of the same world: their round-0 states are those of its log
      const fresh = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 200, rounds: 4 })));
      const d = fresh.stateDim;
      const x = new Float32Array(200 * d);
      for (let u = 0; u < 200; u++) x.set(fresh.states.subarray(u * 4 * d, u * 4 * d + d), u * d);
      const lambda = 0.5;
      const up = await forest.predict(x);
      const r = await nativeRollout({ env: resolveSyConfig(env), rounds: 4, budget: Infinity, policy: 'forest', forest: forest.id, lambda, userIds: Uint32Array.from({ length: 200 }, (_, i) => i), recordPlan: true });
      const plan = r.plan as Int32Array;
      const chosen = new Set<number>();
      for (let u = 0; u < 200; u++) {
        let best = 0;
        let arm = 0;
        for (let k = 1; k < 9; k++) {
          const score = up.reward[u * 9 + k] - lambda * up.cost[u * 9 + k];
          if (score > best) [best, arm] = [score, k];
        }
        chosen.add(arm);
        expect([plan[u * 4 * 2], plan[u * 4 * 2 + 1]], `user ${u}`).toEqual([Math.floor(arm / 3), arm % 3]);
      }
      // the check covers arms in both dimensions, not only the control
      expect(chosen.size).toBeGreaterThanOrEqual(3);
    } finally {
      forest.unload();
    }
  });
});
