/**
 * The Bandit baseline: Thompson sampling over coupons (Chapelle & Li 2011), non-contextual as
 * in the paper, on the Lagrangian reward r − λ·c (native/policy_bandit.cc). The prior comes
 * from a training log: per arm, the mean and variance of reward and cost, worth `weight`
 * pseudo-observations; every user of a round draws from the same posterior, which is updated
 * between rounds from the outcomes of all users (a batched bandit). λ is searched.
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import { loggedJointActions } from '../sim/features.js';
import type { NativeBanditArm, NativeBanditPrior } from '../native/index.js';
import type { PolicyDefinition } from './types.js';

export const banditPolicy = {
  name: 'bandit',
  description: 'Thompson sampling over coupons (non-contextual), prior from the log, posterior updated after every round from all users',
  needsModel: false,
  searched: true,
  fittedOn: 'a prior fitted on a log (fitBanditPrior)',
  sharesStateAcrossUsers: true,
} as const satisfies PolicyDefinition;

export type BanditArm = NativeBanditArm;
export type BanditPrior = NativeBanditPrior;

export interface BanditPriorOptions {
  /** Pseudo-observations the log is worth per arm (at most the arm's count); default 10, Infinity: all of them. */
  weight?: number;
  /** Keys the posterior draws, with user and round; default 1. */
  seed?: number;
}

/**
 * The bandit's prior from trajectories: per arm (an action combination, the first dimension
 * slowest, as the native policy numbers them), the count, means, variances and covariance of
 * the logged reward and cost.
 * @throws {ArgumentError} for a bad weight or seed, or a log with no rows.
 */
export function fitBanditPrior(traj: Trajectories, options: BanditPriorOptions = {}): BanditPrior {
  const weight = options.weight ?? 10;
  if (typeof weight !== 'number' || !(weight > 0)) throw new ArgumentError('weight', `must be > 0 (Infinity: the whole log), got ${String(weight)}`);
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ArgumentError('seed', `must be a non-negative integer, got ${String(seed)}`);
  const sizes = traj.actionEncodings.map((e) => e.values.length);
  const K = sizes.reduce((a, b) => a * b, 1);
  if (K > 65536) throw new ArgumentError('trajectories', `${K} action combinations are too many arms for a bandit`);
  const n = new Float64Array(K), sr = new Float64Array(K), sc = new Float64Array(K);
  const arms: number[] = [];
  const logged = loggedJointActions(traj);
  for (let i = 0; i < traj.mask.length; i++) {
    if (!traj.mask[i]) continue;
    const arm = logged[i];
    arms.push(arm, i);
    n[arm]++;
    sr[arm] += traj.rewards[i];
    sc[arm] += traj.costs[i];
  }
  if (arms.length === 0) throw new ArgumentError('trajectories', 'hold no logged rows');
  const mr = sr.map((s, k) => (n[k] > 0 ? s / n[k] : 0));
  const mc = sc.map((s, k) => (n[k] > 0 ? s / n[k] : 0));
  const vr = new Float64Array(K), vc = new Float64Array(K), cv = new Float64Array(K);
  for (let q = 0; q < arms.length; q += 2) {
    const k = arms[q], i = arms[q + 1];
    const dr = traj.rewards[i] - mr[k], dc = traj.costs[i] - mc[k];
    vr[k] += dr * dr;
    vc[k] += dc * dc;
    cv[k] += dr * dc;
  }
  const out: BanditArm[] = [];
  for (let k = 0; k < K; k++) {
    const dof = Math.max(n[k] - 1, 1);
    out.push({ count: n[k], meanReward: mr[k], meanCost: mc[k], varReward: vr[k] / dof, varCost: vc[k] / dof, cov: cv[k] / dof });
  }
  return { arms: out, weight, seed };
}
