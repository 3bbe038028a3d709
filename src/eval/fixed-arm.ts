/**
 * Policies that need no model and no λ: "the same arm for everyone, each coupon kept with
 * probability p" (Best single arm, thinned at random to the budget) and "no coupon" (p = 0).
 * They run in SY's TypeScript reference (bit-identical to native/env_sy.cc: same
 * counter-based draws per user and round) under the budget rule of native/rollout.cc: users in
 * id order within a round, a coupon withheld when, if redeemed, it would take realised spend
 * over the budget. test/eval/best-arm.test.ts holds the no-coupon rollout equal to the native
 * Oracle at an infinite price, bit for bit.
 *
 * p is chosen so that the expected spend meets the budget. The expected spend of a rollout
 * is estimated without the purchase and thinning noise: each (user, round) adds
 * p · P(purchase | coupon, state) · value, the state following the realised path (an unbiased,
 * Rao-Blackwellised estimate; with no sequential effects the states do not depend on p and it
 * is exactly p · Σ P · value, the closed form the tests check).
 */
import { ArgumentError } from '../errors.js';
import { CounterStream } from '../data/rng.js';
import { syCouponValue, syInitialUser, syPurchaseDraw, syPurchaseProbability, syStep, syWeights, type SyConfig } from '../data/synth.js';

/** The counter stream of the thinning coins (apart from every stream SY itself draws from). */
export const THINNING_STREAM = 0x7468;

export interface FixedArmRollout {
  revenue: number;
  cost: number;
  /** Coupons issued (kept by the thinning and not withheld by the budget). */
  coupons: number;
  /** Coupons the budget rule withheld. */
  blocked: number;
  /** p · Σ P(purchase) · value along the path: the spend expected at this p (see the file comment). */
  expectedSpend: number;
}

export interface FixedArmSpec {
  env: SyConfig;
  rounds: number;
  userIds: Uint32Array;
  /** The action (one index per action dimension) every user is offered. */
  arm: readonly number[];
  /** Probability that each coupon is kept (else the user gets the control action). */
  keep: number;
  /** Seed of the thinning coins. */
  coinSeed: number;
  /** Enforced as the native rollout enforces it; Infinity: none. */
  budget: number;
}

/** The control (no coupon) action of the environment: the cheapest value of each dimension. */
export function controlArm(env: SyConfig): number[] {
  return env.actionDims.map((d) => d.values.indexOf(Math.min(...d.values)));
}

/** Rolls SY forward with `arm` for every user, each coupon kept with probability `keep`, `budget` enforced. */
export function fixedArmRollout(spec: FixedArmSpec): FixedArmRollout {
  const { env, rounds, userIds, arm, keep, coinSeed, budget } = spec;
  if (arm.length !== env.actionDims.length || arm.some((a, j) => !Number.isInteger(a) || a < 0 || a >= env.actionDims[j].values.length)) {
    throw new ArgumentError('arm', `must hold one valid index per action dimension (${env.actionDims.length}), got [${arm.join(', ')}]`);
  }
  if (!(keep >= 0 && keep <= 1)) throw new ArgumentError('keep', `must be in [0, 1], got ${keep}`);
  if (!(budget > 0)) throw new ArgumentError('budget', `must be > 0 (Infinity: none), got ${budget}`);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > env.rounds) throw new ArgumentError('rounds', `must be an integer in [1, ${env.rounds}]`);
  const w = syWeights(env);
  const users = Array.from(userIds, (id) => syInitialUser(env, w, id));
  const control = controlArm(env);
  const out: FixedArmRollout = { revenue: 0, cost: 0, coupons: 0, blocked: 0, expectedSpend: 0 };
  let spent = 0;
  for (let t = 0; t < rounds; t++) {
    // decide for the whole round first (the native rule checks the round's offers in id order against spend so far)
    const offers: Array<readonly number[]> = new Array(users.length);
    let running = spent;
    for (let i = 0; i < users.length; i++) {
      const u = users[i];
      const value = syCouponValue(env, arm, u.consts.basket);
      // the expected spend counts the coupon before the coin: p · P · v, whatever this coin says
      if (value > 0) out.expectedSpend += keep * syPurchaseProbability(env, u.consts, u.engagement, u.fatigue, value) * value;
      const kept = value > 0 && keep > 0 && (keep >= 1 || new CounterStream(coinSeed, u.id, t, THINNING_STREAM).uniform() < keep);
      if (!kept) {
        offers[i] = control;
        continue;
      }
      if (Number.isFinite(budget) && running + value > budget) {
        offers[i] = control;
        out.blocked++;
        continue;
      }
      offers[i] = arm;
      out.coupons++;
      if (Number.isFinite(budget) && syPurchaseDraw(env, u, t, value).purchase) running += value;
    }
    let roundCost = 0;
    for (let i = 0; i < users.length; i++) {
      const step = syStep(env, users[i], t, offers[i]);
      out.revenue += step.reward;
      roundCost += step.cost;
    }
    spent += roundCost;
    out.cost += roundCost;
  }
  return out;
}

export interface ThinningChoice {
  /** The keep probability chosen. */
  keep: number;
  /** The expected spend at that p (see the file comment). */
  expectedSpend: number;
  /** The expected spend with every coupon kept: p = 1 when it is within the budget. */
  expectedSpendAll: number;
  budgetNotBinding: boolean;
  /** Rollouts the search used. */
  rollouts: number;
  trace: Array<{ keep: number; expectedSpend: number }>;
}

/**
 * The keep probability p whose expected spend meets `budget`: p = 1 when even that is within
 * the budget, else a bisection on p (coins fixed by `coinSeed`, so a larger p keeps a superset
 * of the coupons) to 0.1% of the budget. Without sequential effects the expected spend is
 * p · (its value at p = 1), and the first step lands on p = budget / that exactly.
 */
export function chooseKeepProbability(spec: Omit<FixedArmSpec, 'keep' | 'budget'>, budget: number, tolerance = 1e-3, maxRollouts = 40): ThinningChoice {
  if (!(budget > 0) || !Number.isFinite(budget)) throw new ArgumentError('budget', `must be a finite number > 0, got ${budget}`);
  const trace: ThinningChoice['trace'] = [];
  const spend = (keep: number) => {
    const e = fixedArmRollout({ ...spec, keep, budget: Infinity }).expectedSpend;
    trace.push({ keep, expectedSpend: e });
    return e;
  };
  const all = spend(1);
  if (all <= budget) return { keep: 1, expectedSpend: all, expectedSpendAll: all, budgetNotBinding: true, rollouts: 1, trace };
  let lo = 0;
  let hi = 1;
  // first guess: the proportional answer (exact without sequential effects)
  let keep = budget / all;
  let best = { keep, e: spend(keep) };
  while (Math.abs(best.e - budget) > tolerance * budget && trace.length < maxRollouts) {
    if (best.e > budget) hi = best.keep;
    else lo = best.keep;
    // secant on the proportional model within the bracket, else the midpoint
    keep = best.e > 0 ? (best.keep * budget) / best.e : 0.5 * (lo + hi);
    if (!(keep > lo && keep < hi)) keep = 0.5 * (lo + hi);
    best = { keep, e: spend(keep) };
  }
  return { keep: best.keep, expectedSpend: best.e, expectedSpendAll: all, budgetNotBinding: false, rollouts: trace.length, trace };
}
