/**
 * Trajectories: per user, rounds t = 0..T-1 as flat typed arrays padded with a mask, with
 * return-to-go and cost-to-go (DESIGN.md section 3):
 *   RTG_t = sum_{t' >= t} gamma^(t'-t) r_t'      CTG_t = sum_{t' >= t} gamma^(t'-t) c_t'
 */
import { ArgumentError, DataError } from '../errors.js';
import type { ActionEncoding, CategoricalEncoding, InteractionLog } from './log.js';
import { CounterStream, Streams } from './rng.js';
import { MAX_ABS_VALUE, MIN_PROPENSITY } from './schema.js';

export interface Trajectories {
  source: string;
  users: number;
  /** Longest trajectory; shorter ones are padded (mask 0). */
  rounds: number;
  stateDim: number;
  actionDims: number;
  stateNames: string[];
  actionEncodings: ActionEncoding[];
  categorical: CategoricalEncoding[];
  userIds: string[];
  gamma: number;
  /** [users] number of real rounds. */
  lengths: Int32Array;
  /** [users, rounds] 1 for a real round, 0 for padding. */
  mask: Uint8Array;
  /** [users, rounds, stateDim] */
  states: Float32Array;
  /** [users, rounds, actionDims] index into each dimension's values. */
  actions: Int32Array;
  /** [users, rounds] */
  rewards: Float32Array;
  costs: Float32Array;
  rtg: Float32Array;
  ctg: Float32Array;
  /** [users] a fixed λ per trajectory (only for the literal `--lambda-copies` recipe). */
  lambda?: Float32Array;
  /**
   * [users, rounds] 1 where the round had no row in the log and was filled as the control
   * action (calendar rounds, schema `round`: reward 0, cost 0, the state carried over); absent: none.
   */
  filled?: Uint8Array;
  /**
   * [users, rounds] the logging policy's probability of the logged action (schema
   * `propensity`; 1 in filled rounds, nothing meaningful in padding); absent: the log does not say
   * (`loggingPropensities` in src/sim/features.ts falls back to the action shares).
   */
  propensity?: Float32Array;
}

export interface BuildOptions {
  /** Discount of RTG and CTG; the paper uses 1. */
  gamma?: number;
}

const inRange = (v: number) => Number.isFinite(v) && Math.abs(v) <= MAX_ABS_VALUE;

/**
 * Refuses a log holding a value that float32 training cannot sum: ingestion checks files,
 * this catches logs built in code (a reward of 1e200 made RTG Infinity and training NaN).
 */
function checkValues(log: InteractionLog): void {
  const d = log.stateNames.length;
  const refuse = (r: number, column: string, what: string, v: number) => {
    const where = `user ${log.userIds[log.userIndex[r]]}, round ${log.roundIndex[r]}`;
    throw new DataError('DATA_OUT_OF_RANGE', `${where}: ${what} ${v} is not finite or beyond ±${MAX_ABS_VALUE.toExponential()} (sums and squares would overflow)`, {
      file: log.source,
      column,
    });
  };
  for (let r = 0; r < log.rows; r++) {
    if (!inRange(log.reward[r])) refuse(r, 'reward', 'reward', log.reward[r]);
    if (!inRange(log.cost[r])) refuse(r, 'cost', 'cost', log.cost[r]);
    for (let j = 0; j < d; j++) {
      const v = log.states[r * d + j];
      if (!inRange(v)) refuse(r, log.stateNames[j], `state "${log.stateNames[j]}"`, v);
    }
    const p = log.propensity?.[r];
    if (p !== undefined && !(p >= MIN_PROPENSITY && p <= 1)) {
      throw new DataError('DATA_OUT_OF_RANGE', `user ${log.userIds[log.userIndex[r]]}, round ${log.roundIndex[r]}: logging propensity ${p} is not in (0, 1] (at least ${MIN_PROPENSITY})`, { file: log.source, column: 'propensity' });
    }
  }
}

/** Builds padded trajectories from a log whose (userIndex, roundIndex) pairs are unique. */
export function buildTrajectories(log: InteractionLog, options: BuildOptions = {}): Trajectories {
  const gamma = options.gamma ?? 1;
  if (!Number.isFinite(gamma) || gamma <= 0 || gamma > 1) throw new ArgumentError('gamma', `must be in (0, 1], got ${gamma}`);
  checkValues(log);
  const users = log.userIds.length;
  const d = log.stateNames.length;
  const A = log.actionEncodings.length;
  const lengths = new Int32Array(users);
  for (let r = 0; r < log.rows; r++) lengths[log.userIndex[r]]++;
  let T = 0;
  for (let i = 0; i < users; i++) T = Math.max(T, lengths[i]);

  const mask = new Uint8Array(users * T);
  const states = new Float32Array(users * T * d);
  const actions = new Int32Array(users * T * A);
  const rewards64 = new Float64Array(users * T);
  const costs64 = new Float64Array(users * T);
  const filled = log.filled ? new Uint8Array(users * T) : undefined;
  const propensity = log.propensity ? new Float32Array(users * T).fill(1) : undefined;
  for (let r = 0; r < log.rows; r++) {
    const i = log.userIndex[r];
    const t = log.roundIndex[r];
    if (t < 0 || t >= lengths[i] || mask[i * T + t]) {
      throw new ArgumentError('log.roundIndex', `row ${r}: round ${t} of user ${log.userIds[i]} is out of range or repeated`);
    }
    const cell = i * T + t;
    mask[cell] = 1;
    states.set(log.states.subarray(r * d, r * d + d), cell * d);
    actions.set(log.actions.subarray(r * A, r * A + A), cell * A);
    rewards64[cell] = log.reward[r];
    costs64[cell] = log.cost[r];
    if (filled) filled[cell] = (log.filled as Uint8Array)[r];
    if (propensity) propensity[cell] = (log.propensity as Float64Array)[r];
  }
  const rtg = new Float32Array(users * T);
  const ctg = new Float32Array(users * T);
  for (let i = 0; i < users; i++) {
    let rAcc = 0;
    let cAcc = 0;
    for (let t = lengths[i] - 1; t >= 0; t--) {
      rAcc = rewards64[i * T + t] + gamma * rAcc;
      cAcc = costs64[i * T + t] + gamma * cAcc;
      rtg[i * T + t] = rAcc;
      ctg[i * T + t] = cAcc;
    }
  }
  return {
    source: log.source,
    users,
    rounds: T,
    stateDim: d,
    actionDims: A,
    stateNames: log.stateNames,
    actionEncodings: log.actionEncodings,
    categorical: log.categorical,
    userIds: log.userIds,
    gamma,
    lengths,
    mask,
    states,
    actions,
    rewards: Float32Array.from(rewards64),
    costs: Float32Array.from(costs64),
    rtg,
    ctg,
    ...(filled ? { filled } : {}),
    ...(propensity ? { propensity } : {}),
  };
}

/** The trajectories of the given users (by index), in that order. */
export function selectUsers(traj: Trajectories, indices: ArrayLike<number>): Trajectories {
  const n = indices.length;
  return rearranged(traj, Array.from({ length: n }, (_, k) => traj.userIds[indices[k]]), (src, width, make) => {
    const out = make(n * width);
    for (let k = 0; k < n; k++) {
      const i = indices[k];
      out.set(src.subarray(i * width, (i + 1) * width), k * width);
    }
    return out;
  });
}

/** The trajectories with users appended who have no round yet (length 0, every cell empty): users to decide at their round 0. */
export function withNewUsers(traj: Trajectories, userIds: readonly string[]): Trajectories {
  const n = traj.users + userIds.length;
  return rearranged(traj, [...traj.userIds, ...userIds], (src, width, make) => {
    const out = make(n * width);
    out.set(src);
    return out;
  });
}

type Arrange = <Arr extends Float32Array | Int32Array | Uint8Array>(src: Arr, width: number, make: (len: number) => Arr) => Arr;

/** Trajectories of `userIds`, every per-user array made from traj's by `arrange` (given its width per user). */
function rearranged(traj: Trajectories, userIds: string[], arrange: Arrange): Trajectories {
  const T = traj.rounds;
  const f32 = (len: number) => new Float32Array(len);
  const i32 = (len: number) => new Int32Array(len);
  const u8 = (len: number) => new Uint8Array(len);
  return {
    ...traj,
    users: userIds.length,
    userIds,
    lengths: arrange(traj.lengths, 1, i32),
    mask: arrange(traj.mask, T, u8),
    states: arrange(traj.states, T * traj.stateDim, f32),
    actions: arrange(traj.actions, T * traj.actionDims, i32),
    rewards: arrange(traj.rewards, T, f32),
    costs: arrange(traj.costs, T, f32),
    rtg: arrange(traj.rtg, T, f32),
    ctg: arrange(traj.ctg, T, f32),
    lambda: traj.lambda ? arrange(traj.lambda, 1, f32) : undefined,
    filled: traj.filled ? arrange(traj.filled, T, u8) : undefined,
    propensity: traj.propensity ? arrange(traj.propensity, T, f32) : undefined,
  };
}

export interface SplitOptions {
  /** Share of users in the test part (default 0.2). */
  testFraction?: number;
  seed?: number;
}

/**
 * Seeded split by user: users are ranked by a Philox draw keyed by (seed, user id's
 * index) and the first round(testFraction * users) go to test. Same seed, same split.
 */
export function splitByUser(traj: Trajectories, options: SplitOptions = {}): { train: Trajectories; test: Trajectories } {
  const { train, test } = splitIndices(traj.users, options.testFraction ?? 0.2, options.seed ?? 0);
  return { train: selectUsers(traj, train), test: selectUsers(traj, test) };
}

/**
 * At most `max` users, seeded: splitByUser's test part at the fraction max / users (all of
 * them when they are fewer), without copying the users left out.
 */
export function sampleUsers(traj: Trajectories, max: number, seed: number): Trajectories {
  return traj.users > max ? selectUsers(traj, splitIndices(traj.users, max / traj.users, seed).test) : traj;
}

// The users of each part, in order: ranked by a Philox draw keyed by (seed, index), the first
// round(testFraction * users) are the test part.
function splitIndices(users: number, testFraction: number, seed: number): { train: number[]; test: number[] } {
  if (!(testFraction >= 0 && testFraction <= 1)) throw new ArgumentError('testFraction', `must be in [0, 1], got ${testFraction}`);
  const keys = new Float64Array(users);
  for (let i = 0; i < users; i++) keys[i] = new CounterStream(seed, i, 0, Streams.split).uniform();
  const order = Array.from({ length: users }, (_, i) => i).sort((a, b) => keys[a] - keys[b] || a - b);
  const nTest = Math.round(testFraction * users);
  return { test: order.slice(0, nTest).sort((a, b) => a - b), train: order.slice(nTest).sort((a, b) => a - b) };
}

/**
 * Warnings for action values the encodings list but no real (user, round) of `traj` holds:
 * nothing learned from these trajectories will choose them (a value declared in the schema
 * for a coupon that was never sent).
 */
export function unloggedActionValues(traj: Trajectories): string[] {
  const A = traj.actionDims;
  return traj.actionEncodings.flatMap((enc, j) => {
    const seen = new Uint8Array(enc.values.length);
    // filled rounds count: they are trained on as the control (a log of mailings only, like dunnhumby's, learns "no mailing" from them)
    for (let c = 0; c < traj.mask.length; c++) if (traj.mask[c]) seen[traj.actions[c * A + j]] = 1;
    const never = enc.values.filter((_, k) => !seen[k]);
    return never.length ? [`action column "${enc.column}": value(s) ${never.map((v) => JSON.stringify(v)).join(', ')} never occur in the log, so nothing learned from it will choose them`] : [];
  });
}
