/**
 * Best single arm, thinned at random to the budget, and no coupon (src/eval/fixed-arm.ts):
 * the keep probability against its closed form, the spend in expectation, the budget never
 * exceeded, and the TypeScript rollout against the native one.
 */
import { describe, expect, it } from 'vitest';
import { resolveSyConfig, syInitialUser, syPurchaseProbability, syWeights, type SyConfig } from '../../src/data/synth.js';
import type { Trajectories } from '../../src/data/trajectories.js';
import { nativeRollout } from '../../src/native/index.js';
import { chooseKeepProbability, controlArm, fixedArmRollout } from '../../src/eval/fixed-arm.js';
import { armStatistics, bestArmOf } from '../../src/eval/methods.js';

/** Static SY (no sequential effects) with no engagement noise: P(purchase) = σ(α_i + β_i log(1 + v)) in every round. */
function staticEnv(seed: number, rounds: number): SyConfig {
  return resolveSyConfig({ seed, rounds, sequential: false, sigma: 0, users: 1 });
}

/** Σ over users and rounds of P(purchase | v) · v: the expected spend of the arm with every coupon kept. */
function closedFormSpend(env: SyConfig, ids: Uint32Array, arm: number[], rounds: number): { mean: number; probs: number[]; value: number } {
  const w = syWeights(env);
  const value = env.actionDims[0].values[arm[0]];
  const probs = Array.from(ids, (id) => syPurchaseProbability(env, syInitialUser(env, w, id).consts, 0, 0, value));
  return { mean: rounds * probs.reduce((s, p) => s + p * value, 0), probs, value };
}

const ids = (n: number, from = 0) => Uint32Array.from({ length: n }, (_, i) => from + i);

describe('best single arm, thinned to the budget', () => {
  it('keeps each coupon with p = budget / (Σ P·v), the closed form, without sequential effects', () => {
    const rounds = 3;
    const env = staticEnv(7, rounds);
    const users = ids(400);
    const arm = [3]; // the $10 coupon
    const { mean } = closedFormSpend(env, users, arm, rounds);
    for (const fraction of [0.1, 0.37, 0.8]) {
      const budget = fraction * mean;
      const choice = chooseKeepProbability({ env, rounds, userIds: users, arm, coinSeed: 5 }, budget);
      expect(choice.expectedSpendAll).toBeCloseTo(mean, 6);
      expect(choice.keep).toBeCloseTo(fraction, 9);
      expect(choice.expectedSpend / budget).toBeCloseTo(1, 9);
      expect(choice.budgetNotBinding).toBe(false);
    }
    // a budget above the spend of every coupon: p = 1, said so
    const all = chooseKeepProbability({ env, rounds, userIds: users, arm, coinSeed: 5 }, 2 * mean);
    expect(all).toMatchObject({ keep: 1, budgetNotBinding: true });
  });

  it('meets the budget in expectation: the realised spend at p* is the closed form within 4 standard errors', () => {
    const env = staticEnv(11, 1);
    const users = ids(20000);
    const arm = [2]; // $5
    const { mean, probs, value } = closedFormSpend(env, users, arm, 1);
    const budget = 0.4 * mean;
    const choice = chooseKeepProbability({ env, rounds: 1, userIds: users, arm, coinSeed: 3 }, budget);
    // each user independently: a coupon kept with p and redeemed with P, cost v
    const variance = probs.reduce((s, p) => s + choice.keep * p * value * value * (1 - choice.keep * p), 0);
    const unbudgeted = fixedArmRollout({ env, rounds: 1, userIds: users, arm, keep: choice.keep, coinSeed: 3, budget: Infinity });
    expect(Math.abs(unbudgeted.cost - budget)).toBeLessThan(4 * Math.sqrt(variance));
    // and over several coin seeds the mean lands closer still
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const costs = seeds.map((s) => fixedArmRollout({ env, rounds: 1, userIds: users, arm, keep: choice.keep, coinSeed: s, budget: Infinity }).cost);
    const avg = costs.reduce((a, b) => a + b, 0) / costs.length;
    expect(Math.abs(avg - budget)).toBeLessThan(4 * Math.sqrt(variance));
  });

  it('never spends over the budget, with sequential effects too', () => {
    for (const sequential of [false, true]) {
      const env = resolveSyConfig({ seed: 3, rounds: 5, sequential, users: 1 });
      const users = ids(600, 1000);
      const reference = closedFormSpend(staticEnv(3, 5), users, [3], 5).mean;
      for (const fraction of [0.05, 0.3, 0.7]) {
        for (const coinSeed of [1, 2, 3]) {
          const budget = fraction * reference;
          const choice = chooseKeepProbability({ env, rounds: 5, userIds: users, arm: [3], coinSeed }, budget);
          expect(Math.abs(choice.expectedSpend / budget - 1)).toBeLessThan(2e-3);
          const r = fixedArmRollout({ env, rounds: 5, userIds: users, arm: [3], keep: choice.keep, coinSeed, budget });
          expect(r.cost).toBeLessThanOrEqual(budget);
          expect(r.cost).toBeGreaterThan(0.8 * budget);
        }
      }
    }
  });

  it('picks the arm with the highest mean logged revenue', () => {
    // 3 users x 2 rounds, one action dimension with values 0, 2, 5
    const actions = Int32Array.from([0, 1, 2, 1, 2, 0]);
    const rewards = Float32Array.from([1, 4, 3, 6, 2, 0]);
    const costs = Float32Array.from([0, 2, 5, 2, 0, 0]);
    const t = { users: 3, rounds: 2, actionDims: 1, actions, rewards, costs, mask: new Uint8Array(6).fill(1), actionEncodings: [{ column: 'action', values: [0, 2, 5] }] } as unknown as Trajectories;
    const stats = armStatistics(t);
    expect(stats.map((s) => [s.arm[0], s.rows, s.meanReward, s.meanCost])).toEqual([
      [0, 2, 0.5, 0],
      [1, 2, 5, 2],
      [2, 2, 2.5, 2.5],
    ]);
    expect(bestArmOf(t)).toMatchObject({ arm: [1], label: 'action=2' });
  });
});

describe('no coupon', () => {
  it('is the native Oracle at an infinite price (same environment, same draws: equal up to the order of the sum)', async () => {
    const env = resolveSyConfig({ seed: 4, rounds: 6, users: 1 });
    const users = ids(500, 200);
    const ts = fixedArmRollout({ env, rounds: 6, userIds: users, arm: controlArm(env), keep: 0, coinSeed: 0, budget: Infinity });
    const native = await nativeRollout({ env, rounds: 6, budget: Infinity, policy: 'oracle', lambda: 1e12, userIds: users, threads: 1 });
    expect(native.cost).toBe(0);
    expect(ts.cost).toBe(0);
    expect(Math.abs(ts.revenue - native.revenue)).toBeLessThan(1e-12 * native.revenue);
    expect(ts.revenue).toBeGreaterThan(0);
  });
});
