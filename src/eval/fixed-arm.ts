/**
 * Policies that need no model and no λ: "the same arm for everyone, each coupon kept with
 * probability p" (Best single arm, thinned at random to the budget) and "no coupon" (p = 0).
 * `saco eval` runs them as the native fixed-arm policy (native/policy_fixed_arm.cc) through
 * solve(), in SY or the learned simulator; `fixedArmRollout` below is its TypeScript reference
 * on SY (bit-identical to native/env_sy.cc: same counter-based draws per user and round) under
 * the budget rule of native/rollout.cc: users in id order within a round, a coupon withheld
 * when, if redeemed, it would take realised spend over the budget.
 * test/policy/scored-native.test.ts holds the two equal; test/eval/best-arm.test.ts holds the
 * no-coupon rollout equal to the native Oracle at an infinite price, bit for bit.
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
import { syActionMap } from '../policy/scored.js';
import { solve, type SolveOptions } from '../solve/index.js';
import type { EvalDataset } from './methods.js';

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
 * The search for the keep probability p whose expected spend meets `budget`: p = 1 when even
 * that is within the budget, else a bisection on p (coins fixed by the seed, so a larger p keeps
 * a superset of the coupons) to `tolerance` of the budget, each step a secant on the
 * proportional model within the bracket (exact without sequential effects: the first step lands
 * on p = budget / spend(1)). A generator: it yields each p to try and is sent its expected
 * spend, so the same steps run on a synchronous reference and on native rollouts.
 */
function* keepSteps(budget: number, tolerance: number, maxRollouts: number): Generator<number, ThinningChoice, number> {
  if (!(budget > 0) || !Number.isFinite(budget)) throw new ArgumentError('budget', `must be a finite number > 0, got ${budget}`);
  const trace: ThinningChoice['trace'] = [];
  const probe = function* (keep: number): Generator<number, number, number> {
    const e = yield keep;
    trace.push({ keep, expectedSpend: e });
    return e;
  };
  const all = yield* probe(1);
  if (all <= budget) return { keep: 1, expectedSpend: all, expectedSpendAll: all, budgetNotBinding: true, rollouts: 1, trace };
  let lo = 0;
  let hi = 1;
  let keep = budget / all;
  let last = { keep, e: yield* probe(keep) };
  let best = last;
  while (Math.abs(last.e - budget) > tolerance * budget && trace.length < maxRollouts) {
    if (last.e > budget) hi = last.keep;
    else lo = last.keep;
    keep = last.e > 0 ? (last.keep * budget) / last.e : 0.5 * (lo + hi);
    if (!(keep > lo && keep < hi)) keep = 0.5 * (lo + hi);
    last = { keep, e: yield* probe(keep) };
    if (Math.abs(last.e - budget) < Math.abs(best.e - budget)) best = last;
  }
  // the probe closest to the budget (a spend estimated on coins is a step function of p: the last probe need not be it)
  return { keep: best.keep, expectedSpend: best.e, expectedSpendAll: all, budgetNotBinding: false, rollouts: trace.length, trace };
}

/** The keep probability whose expected spend in SY's TypeScript reference (see the file comment) meets `budget`; see keepSteps. */
export function chooseKeepProbability(spec: Omit<FixedArmSpec, 'keep' | 'budget'>, budget: number, tolerance = 1e-3, maxRollouts = 40): ThinningChoice {
  const steps = keepSteps(budget, tolerance, maxRollouts);
  let step = steps.next();
  while (!step.done) step = steps.next(fixedArmRollout({ ...spec, keep: step.value, budget: Infinity }).expectedSpend);
  return step.value;
}

/**
 * The keep probability of the native fixed-arm policy whose expected spend meets `budget`, in
 * whatever environment `base` names (SY, the learned simulator): each probe is an unbudgeted
 * solve() whose plan details give the environment's expected cost of every issued action
 * (SY's truth, the simulator's P(c≠0)·E[c | c≠0]); their sum is the expected spend along that
 * path (the realised cost where the environment knows no expectation). See keepSteps.
 */
export async function chooseKeep(base: Omit<SolveOptions, 'policy' | 'budget' | 'fixedArm'>, arm: { arm: number[]; seed: number }, budget: number, tolerance = 2e-3, maxRollouts = 16): Promise<ThinningChoice> {
  const steps = keepSteps(budget, tolerance, maxRollouts);
  let step = steps.next();
  while (!step.done) {
    const r = await solve({ ...base, policy: 'fixed-arm', fixedArm: { ...arm, keep: step.value }, budget: Number.MAX_VALUE, planDetails: true });
    const expected = r.planDetails!.expectedCost.reduce((s, c) => s + c, 0);
    step = steps.next(Number.isFinite(expected) ? expected : r.cost);
  }
  return step.value;
}

/** The environment's indices of a logged arm (the training log's value indices): SY's own order, the simulator's (the log's). */
export function envArm(data: EvalDataset, arm: readonly number[]): number[] {
  if (!data.config) return [...arm];
  const map = syActionMap(data.train.actionEncodings, data.config, 'train');
  return arm.map((k, j) => map[j][k]);
}

/** The no-coupon action of the data's environment: SY's cheapest value per dimension, the simulator's control (the training log's). */
export function envControl(data: EvalDataset): number[] {
  if (data.config) return controlArm(data.config);
  if (data.env.kind !== 'sim') throw new ArgumentError('data', 'a log runs in the simulator');
  return [...data.env.simulator.layout.control];
}
