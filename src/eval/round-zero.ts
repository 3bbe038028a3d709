/**
 * The off-policy check of `saco eval` on a log: every method's plan is compared in the learned
 * simulator, a world fitted on the training users; this checks the plans against what the log
 * itself says, without the simulator. A plan's round-0 actions for the test users are scored
 * on those users' logged round 0 by inverse propensity (IPS, and self-normalised SNIPS), with
 * standard errors: revenue and cost per test user of round 0 under the plan.
 *
 * Only round 0 can be checked: a plan's later actions answer the simulated histories, which
 * are not the logged ones. On a log of one round (an RCT) the check covers the whole plan. Its
 * propensities are the log's own (schema `propensity`), else the share of each joint action
 * among the training users' logged round-0 decisions: right for a randomised log, biased for a
 * targeted one (the report says which). A test user whose round 0 is a calendar round filled
 * as the control (no row) made no logged decision and is left out.
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import { jointIndex, loggedJointActions, loggingPropensities, type PropensitySource } from '../sim/features.js';
import { deterministicTargetProbabilities, offPolicyEstimates } from './ope.js';

/** The test users' logged round 0, as the check reads it. */
export interface RoundZeroLog {
  /** [test users] joint index of the logged round-0 action; -1 where no decision was logged (a filled round). */
  logged: Int32Array;
  reward: Float64Array;
  cost: Float64Array;
  /** [test users] the logging propensity of the logged action (0 where none was logged). */
  propensity: Float64Array;
  source: PropensitySource;
  /** Values per action dimension (the joint index's radices). */
  sizes: number[];
}

/**
 * Round 0 of `test`, with propensities from the log or from `train`'s round-0 action shares.
 * @throws {ArgumentError} when no test user, or no training user without the log's own propensities, has a logged round 0.
 */
export function roundZeroLog(test: Trajectories, train: Trajectories): RoundZeroLog {
  const T = test.rounds;
  const { values, source } = loggingPropensities(test, train, { round: 0, skipFilled: true });
  // a logged decision is a cell the propensities cover; with shares, there were training users to count
  const joint = loggedJointActions(test);
  const logged = Int32Array.from({ length: test.users }, (_, i) => (values[i * T] > 0 ? joint[i * T] : -1));
  if (!logged.some((k) => k >= 0)) {
    throw new ArgumentError('data', `no test user has a logged round 0 to check the plans against${source === 'action shares' ? " (or no training user has one to take the action shares from)" : ''}`);
  }
  return {
    logged,
    reward: Float64Array.from({ length: test.users }, (_, i) => test.rewards[i * T]),
    cost: Float64Array.from({ length: test.users }, (_, i) => test.costs[i * T]),
    propensity: Float64Array.from({ length: test.users }, (_, i) => values[i * T]),
    source,
    sizes: test.actionEncodings.map((e) => e.values.length),
  };
}

/** One outcome of the check, per test user of round 0 (NaN where undefined: SNIPS with no planned action logged, an SE of fewer than two users; null once stored as JSON). */
export interface RoundZeroEstimate {
  ips: number;
  ipsSe: number;
  snips: number;
  snipsSe: number;
}

/** What the check says of one plan (report.json; numbers per test user with a logged round 0). */
export interface RoundZeroCheck {
  /** Test users with a logged round-0 decision (the others are left out). */
  users: number;
  source: PropensitySource;
  /** Share of those users whose planned round-0 action is the logged one. */
  agreement: number;
  revenue: RoundZeroEstimate;
  cost: RoundZeroEstimate;
}

/**
 * IPS and SNIPS of a plan's round-0 actions on the logged round 0. `plan` is solve()'s
 * [users, rounds, action dims] in the test users' order.
 */
export function roundZeroCheck(log: RoundZeroLog, plan: Int32Array, rounds: number): RoundZeroCheck {
  const A = log.sizes.length;
  const users = log.logged.length;
  if (plan.length !== users * rounds * A) throw new ArgumentError('plan', `has ${plan.length} entries; ${users} users × ${rounds} rounds × ${A} action dimension(s) expected`);
  const rows: number[] = [];
  for (let i = 0; i < users; i++) if (log.logged[i] >= 0) rows.push(i);
  const planned = Int32Array.from(rows, (i) => jointIndex(log.sizes, plan.subarray(i * rounds * A, i * rounds * A + A)));
  const logged = Int32Array.from(rows, (i) => log.logged[i]);
  const est = offPolicyEstimates({
    user: Int32Array.from(rows.keys()),
    round: new Int32Array(rows.length),
    logging: Float64Array.from(rows, (i) => log.propensity[i]),
    target: deterministicTargetProbabilities(logged, planned),
    reward: Float64Array.from(rows, (i) => log.reward[i]),
    cost: Float64Array.from(rows, (i) => log.cost[i]),
  });
  let agree = 0;
  for (let r = 0; r < rows.length; r++) agree += planned[r] === logged[r] ? 1 : 0;
  const pick = (e: typeof est.reward): RoundZeroEstimate => ({ ips: e.ips.value, ipsSe: e.ips.se, snips: e.snips.value, snipsSe: e.snips.se });
  return { users: rows.length, source: log.source, agreement: agree / rows.length, revenue: pick(est.reward), cost: pick(est.cost) };
}
