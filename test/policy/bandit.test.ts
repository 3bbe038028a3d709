/**
 * The Bandit baseline is itself: round 0 follows its prior exactly as Thompson sampling says
 * (closed form), it learns from every user's outcomes between rounds so its per-round regret
 * against the myopic Oracle falls to that of the best single coupon, it does not depend on
 * threads, and a budgeted solve meets the budget.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { ArgumentError, NativeError } from '../../src/errors.js';
import { generateSy, nativeRollout } from '../../src/native/index.js';
import { fitBanditPrior, type BanditPrior } from '../../src/policy/bandit.js';
import { solve } from '../../src/solve/index.js';
import { firstMismatch } from '../helpers/fixtures.js';

const env = { seed: 7, sequential: false };
const config = resolveSyConfig(env);
let train: Trajectories;
let prior: BanditPrior;

beforeAll(async () => {
  train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 3000 })));
  prior = fitBanditPrior(train);
});

const fresh = (n: number) => Uint32Array.from({ length: n }, (_, i) => 100000 + i);

/** Φ, by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** P(arm k's draw is the largest) for independent draws N(mean_j, sd_j²): ∫ φ_k(z) Π_{j≠k} Φ_j(z) dz. */
function probabilityBest(mean: number[], sd: number[]): number[] {
  return mean.map((mk, k) => {
    let p = 0;
    const steps = 4000;
    const h = (16 * sd[k]) / steps;
    for (let s = 0; s <= steps; s++) {
      const z = mk - 8 * sd[k] + s * h;
      let f = Math.exp(-0.5 * ((z - mk) / sd[k]) ** 2) / (sd[k] * Math.sqrt(2 * Math.PI));
      for (let j = 0; j < mean.length; j++) if (j !== k) f *= normalCdf((z - mean[j]) / sd[j]);
      p += (s === 0 || s === steps ? 0.5 : 1) * f * h;
    }
    return p;
  });
}

describe('Thompson sampling on SY static', () => {
  it('round 0 takes each arm with the probability that its prior draw is the largest (closed form)', async () => {
    const lambda = 1;
    const n = 20000;
    const r = await nativeRollout({ env: config, rounds: 1, budget: Infinity, policy: 'bandit', lambda, userIds: fresh(n), bandit: prior, recordPlan: true });
    const share = [0, 0, 0, 0];
    for (const a of r.plan as Int32Array) share[a] += 1 / n;
    const w = prior.weight ?? 10;
    const mean = prior.arms.map((a) => a.meanReward - lambda * a.meanCost);
    const sd = prior.arms.map((a) => Math.sqrt((a.varReward + lambda * lambda * a.varCost - 2 * lambda * a.cov) / Math.min(w, a.count)));
    const p = probabilityBest(mean, sd);
    console.log(`round 0 at λ = 1: arm shares ${share.map((v) => v.toFixed(4)).join(' ')}; Thompson's closed form ${p.map((v) => v.toFixed(4)).join(' ')}`);
    for (let k = 0; k < 4; k++) expect(Math.abs(share[k] - p[k])).toBeLessThan(4 * Math.sqrt((p[k] * (1 - p[k])) / n) + 1e-3);
  });

  it("its per-round regret against the myopic Oracle falls from the first rounds to the last, down to the best single coupon's", async () => {
    const lambda = 1;
    const n = 5000;
    const userIds = fresh(n);
    const common = { env: config, rounds: 10, budget: Infinity, lambda, userIds };
    const oracle = await nativeRollout({ ...common, policy: 'oracle' });
    const regretOf = async (p: BanditPrior) => {
      const b = await nativeRollout({ ...common, policy: 'bandit', bandit: p });
      return Array.from(oracle.revenueByRound, (r, t) => (r - lambda * oracle.costByRound[t] - (b.revenueByRound[t] - lambda * b.costByRound[t])) / n);
    };
    const regret = await regretOf(prior);
    // the floor of a non-contextual policy: the log's best arm from the start (a prior as sure as the whole log)
    const floor = await regretOf(fitBanditPrior(train, { weight: Infinity }));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const [first, last, floorLast] = [mean(regret.slice(0, 2)), mean(regret.slice(-2)), mean(floor.slice(-2))];
    console.log(
      `regret per user and round against the myopic Oracle (λ = 1, ${n} fresh users, prior weight ${prior.weight}): ${regret.map((v) => v.toFixed(3)).join(' ')}; ` +
        `with the log's best arm from the start: ${floor.map((v) => v.toFixed(3)).join(' ')}`,
    );
    expect(first).toBeGreaterThan(2 * last);
    expect(last).toBeLessThan(floorLast + 0.05);
  });

  it('gives the same rollout whatever the threads, with and without a budget', async () => {
    const userIds = fresh(1000);
    for (const budget of [Infinity, 3000]) {
      const run = (threads: number) => nativeRollout({ env: config, rounds: 10, budget, lambda: 0.8, userIds, policy: 'bandit', bandit: prior, recordPlan: true, threads });
      const [a, b] = [await run(1), await run(2)];
      expect(firstMismatch(a.plan as Int32Array, b.plan as Int32Array)).toBeNull();
      expect(firstMismatch(a.revenueByRound, b.revenueByRound)).toBeNull();
      expect(firstMismatch(a.costByRound, b.costByRound)).toBeNull();
    }
  });

  it('solve() meets a 0.5x budget with it', async () => {
    const s = await solve({ policy: 'bandit', bandit: prior, users: { ids: fresh(2000) }, budget: '0.5x', env });
    console.log(`bandit at 0.5x: λ* ${s.lambda.toFixed(3)}, revenue ${s.revenue.toFixed(0)}, BARate ${s.baRate.toFixed(3)}, ${s.rollouts} rollouts, feasible ${s.feasible}`);
    expect(s.feasible).toBe(true);
    expect(s.baRate).toBeLessThanOrEqual(1);
    expect(s.baRate).toBeGreaterThanOrEqual(0.9);
  });

  it('refuses a missing prior, a prior of other arms and a bad weight', async () => {
    await expect(solve({ policy: 'bandit', users: 10, budget: 100, env })).rejects.toBeInstanceOf(ArgumentError);
    const three = { ...prior, arms: prior.arms.slice(0, 3) };
    await expect(nativeRollout({ env: config, rounds: 2, budget: Infinity, lambda: 0, userIds: fresh(5), policy: 'bandit', bandit: three })).rejects.toThrow(NativeError);
    await expect(nativeRollout({ env: config, rounds: 2, budget: Infinity, lambda: 0, userIds: fresh(5), policy: 'bandit', bandit: three })).rejects.toThrow(/3 arms, the environment's actions make 4/);
    expect(() => fitBanditPrior(train, { weight: 0 })).toThrow(ArgumentError);
  });
});
