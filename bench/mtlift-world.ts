/**
 * An MT-LIFT-like RCT with a known response, for benches that value plans with the truth
 * (bench/dfcl-mtlift.ts, bench/eval-mtlift.ts): 99 features (every fifth an integer 0-9, the
 * rest standard normal), 5 arms drawn uniformly,
 *   P(click | f, t) = σ(−2.5 + 0.3·f3 + u_t(f)),  u_0 = 0,  u_t = 0.1·t·(f1 > 0 ? 1 : −0.3) + 0.05·f2,
 * a conversion on 10% of clicks, reward click + 5·conversion (so E[r] = 1.5·P(click)) and a
 * stated cost of 0.05·t per coupon: treated arms earn up to ~+0.02 per user, and only for users
 * with f1 > 0.
 */
import type { InteractionLog } from '../src/data/log.js';
import { CounterStream } from '../src/data/rng.js';
import { greedyActions } from '../src/policy/scored.js';

export const FEATURES = 99;
export const ARMS = 5;
export const COST_PER_LEVEL = 0.05;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** P(click) of arm t for the features f (f(j) = feature j). */
export function clickProbability(f: (j: number) => number, t: number): number {
  const uplift = t === 0 ? 0 : 0.1 * t * (f(1) > 0 ? 1 : -0.3) + 0.05 * f(2);
  return sigmoid(-2.5 + 0.3 * f(3) + uplift);
}

/** E[reward] of arm t for the user whose features start at states[u * FEATURES]. */
export const expectedReward = (states: ArrayLike<number>, u: number, t: number): number => 1.5 * clickProbability((j) => states[u * FEATURES + j], t);

/** A uniformly logged one-round log of `users` users (ids "0", "1", …). */
export function mtliftLog(users: number, seed: number): InteractionLog {
  const states = new Float64Array(users * FEATURES);
  const actions = new Int32Array(users);
  const reward = new Float64Array(users);
  for (let u = 0; u < users; u++) {
    const s = new CounterStream(seed, u, 0, 0x6d74);
    for (let j = 0; j < FEATURES; j++) states[u * FEATURES + j] = j % 5 === 0 ? Math.floor(10 * s.uniform()) : s.normal();
    const t = Math.min(ARMS - 1, Math.floor(ARMS * s.uniform()));
    const click = s.uniform() < clickProbability((j) => states[u * FEATURES + j], t) ? 1 : 0;
    const conversion = click && s.uniform() < 0.1 ? 1 : 0;
    actions[u] = t;
    reward[u] = click + 5 * conversion;
  }
  return {
    source: `mtlift-like seed ${seed}`,
    rows: users,
    userIndex: Int32Array.from({ length: users }, (_, i) => i),
    roundIndex: new Int32Array(users),
    userIds: Array.from({ length: users }, (_, i) => String(i)),
    stateNames: Array.from({ length: FEATURES }, (_, j) => `f${j}`),
    states,
    actionEncodings: [{ column: 'treatment', values: Array.from({ length: ARMS }, (_, t) => t), control: 0 }],
    actions,
    cost: Float64Array.from(actions, (t) => COST_PER_LEVEL * t),
    reward,
    categorical: [],
    propensity: new Float64Array(users).fill(1 / ARMS),
  };
}

/** The true expected reward and the stated cost of every arm for the users `users` (rows of `states`): [users * ARMS] each. */
export function trueScores(states: ArrayLike<number>, users: ArrayLike<number>): { reward: Float64Array; cost: Float64Array } {
  const reward = new Float64Array(users.length * ARMS);
  const cost = new Float64Array(users.length * ARMS);
  for (let i = 0; i < users.length; i++) {
    for (let t = 0; t < ARMS; t++) {
      reward[i * ARMS + t] = expectedReward(states, users[i], t);
      cost[i * ARMS + t] = COST_PER_LEVEL * t;
    }
  }
  return { reward, cost };
}

/** What the uniform logging policy spends on n users (the "1x" budget). */
export const loggingSpend = (n: number): number => (n * COST_PER_LEVEL * (ARMS - 1)) / 2;

/** True incremental revenue over no coupon of giving user `users[i]` (a row of `states`) the arm plan[i]. */
export function trueIncrement(states: ArrayLike<number>, users: ArrayLike<number>, plan: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < users.length; i++) total += expectedReward(states, users[i], plan[i]) - expectedReward(states, users[i], 0);
  return total;
}

/** The greedy plan of scores [n*ARMS] whose stated spend fits `budget` (λ by bisection). */
export function greedyPlanWithin(reward: Float64Array, cost: Float64Array, budget: number): Int32Array {
  const spend = (a: Int32Array) => a.reduce((s, t) => s + COST_PER_LEVEL * t, 0);
  let lo = 0;
  let hi = 1;
  while (spend(greedyActions(reward, cost, ARMS, hi)) > budget && hi < 1e9) [lo, hi] = [hi, 2 * hi];
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (spend(greedyActions(reward, cost, ARMS, mid)) > budget) lo = mid;
    else hi = mid;
  }
  return greedyActions(reward, cost, ARMS, hi);
}
