/**
 * The design matrix of the outcome model: one row per real (user, round) cell of a
 * `Trajectories`, in user-major order (cell i*T + t), with named columns
 *
 *   state:<name>          s_t, every state feature as logged
 *   action:<column>=<v>   a_t one-hot, every value of every action dimension
 *   round_frac            t / T (T = the layout's rounds)
 *   hist:treated          rounds t' < t whose action was not the control on every dimension
 *   hist:since_treated    t minus the last such round; T when there was none
 *   hist:prev:<column>    a_{t-1}'s value index per dimension; -1 at t = 0
 *   hist:reward_sum       Σ_{t' < t} r_t'
 *   hist:cost_sum         Σ_{t' < t} c_t'
 *   hist:reward_rounds    #{t' < t : r_t' > 0}
 *
 * The history columns carry what earlier rounds did (DESIGN.md section 6: the first learned
 * simulator drifted +14% on no-coupon revenue without them). A simulator computes the same
 * columns from its own simulated history; the layout below says exactly which.
 *
 * The control (no-treatment) value of each action dimension: the encoding's `control`
 * index where the log records one (an explicit schema field), else the value whose logged
 * rows have cost 0 most often (a coupon that is never redeemed costs nothing, so the
 * control wins with a share of 1), ties to the lower index; index 0 when nothing was logged.
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';

/** Where the control value of an action dimension came from. */
export type ControlSource = 'schema' | 'zero-cost' | 'default';

/** Everything needed to build the same columns again (stored with the model). */
export interface FeatureLayout {
  /** Column names, in column order. */
  names: string[];
  stateDim: number;
  stateNames: string[];
  /** Columns of the action dimensions (the encodings' `column`). */
  actionColumns: string[];
  /** Values per action dimension. */
  actionSizes: number[];
  /** The control value index of each action dimension, and where it came from. */
  control: number[];
  controlSource: ControlSource[];
  /** T of `round_frac` = t / T and of `hist:since_treated` when never treated. */
  rounds: number;
  /** State features that change within a user (transition heads), indices into the state. */
  dynamic: number[];
  /** First column of each block. */
  offsets: { state: number; action: number; round: number; history: number };
}

export interface LayoutOptions {
  /** Control value index per action dimension; default: from the log (see the module comment). */
  control?: number[];
  /** Dynamic state features (indices); default: those that change within some user. */
  dynamic?: number[];
}

const HISTORY = ['treated', 'since_treated', 'reward_sum', 'cost_sum', 'reward_rounds'] as const;

/** Checks the sizes and action indices of a Trajectories (built in code, they may be off). */
export function checkTrajectories(traj: Trajectories, name = 'trajectories'): void {
  const { users: N, rounds: T, stateDim: d, actionDims: A } = traj;
  const int = (v: number) => Number.isInteger(v) && v >= 0;
  if (!int(N) || !int(T) || !int(d) || !int(A) || N < 1 || T < 1 || A < 1) {
    throw new ArgumentError(name, `needs users, rounds and actionDims >= 1 (got ${N}, ${T}, ${A})`);
  }
  const sizes: Array<[string, { length: number }, number]> = [
    ['mask', traj.mask, N * T],
    ['states', traj.states, N * T * d],
    ['actions', traj.actions, N * T * A],
    ['rewards', traj.rewards, N * T],
    ['costs', traj.costs, N * T],
  ];
  for (const [field, arr, want] of sizes) {
    if (!arr || arr.length !== want) throw new ArgumentError(`${name}.${field}`, `expected length ${want}, got ${arr?.length}`);
  }
  if (traj.actionEncodings.length !== A) throw new ArgumentError(`${name}.actionEncodings`, `expected ${A} encodings, got ${traj.actionEncodings.length}`);
  for (let c = 0; c < N * T; c++) {
    if (!traj.mask[c]) continue;
    if (!Number.isFinite(traj.rewards[c]) || !Number.isFinite(traj.costs[c])) {
      throw new ArgumentError(`${name}.rewards`, `user ${Math.floor(c / T)}, round ${c % T}: reward and cost must be finite`);
    }
    for (let j = 0; j < A; j++) {
      const k = traj.actions[c * A + j];
      if (!Number.isInteger(k) || k < 0 || k >= traj.actionEncodings[j].values.length) {
        throw new ArgumentError(`${name}.actions`, `user ${Math.floor(c / T)}, round ${c % T}, dimension ${j}: index ${k} is not one of the ${traj.actionEncodings[j].values.length} values`);
      }
    }
    for (let s = 0; s < d; s++) {
      if (!Number.isFinite(traj.states[c * d + s])) throw new ArgumentError(`${name}.states`, `user ${Math.floor(c / T)}, round ${c % T}: state ${traj.stateNames[s] ?? s} is not finite`);
    }
  }
}

/** The control value index of each action dimension, and where it came from. */
export function controlActions(traj: Trajectories): { control: number[]; source: ControlSource[] } {
  const { users: N, rounds: T, actionDims: A } = traj;
  const control: number[] = [];
  const source: ControlSource[] = [];
  for (let j = 0; j < A; j++) {
    const enc = traj.actionEncodings[j];
    const explicit = (enc as { control?: unknown }).control;
    if (typeof explicit === 'number' && Number.isInteger(explicit) && explicit >= 0 && explicit < enc.values.length) {
      control.push(explicit);
      source.push(enc.controlStated === false ? 'zero-cost' : 'schema');
      continue;
    }
    const K = enc.values.length;
    const rows = new Float64Array(K);
    const free = new Float64Array(K);
    for (let c = 0; c < N * T; c++) {
      if (!traj.mask[c]) continue;
      const k = traj.actions[c * A + j];
      rows[k]++;
      if (traj.costs[c] === 0) free[k]++;
    }
    let best = -1;
    for (let k = 0; k < K; k++) {
      if (rows[k] > 0 && (best < 0 || free[k] / rows[k] > free[best] / rows[best])) best = k;
    }
    control.push(best < 0 ? 0 : best);
    source.push(best < 0 ? 'default' : 'zero-cost');
  }
  return { control, source };
}

/** State features whose value changes within some user's trajectory. */
export function dynamicStates(traj: Trajectories): number[] {
  const { users: N, rounds: T, stateDim: d } = traj;
  const out: number[] = [];
  for (let s = 0; s < d; s++) {
    let changes = false;
    for (let i = 0; i < N && !changes; i++) {
      const first = traj.states[i * T * d + s];
      for (let t = 1; t < T && traj.mask[i * T + t]; t++) {
        if (traj.states[(i * T + t) * d + s] !== first) {
          changes = true;
          break;
        }
      }
    }
    if (changes) out.push(s);
  }
  return out;
}

/** The columns for this log's shape, with its control values and dynamic features. */
export function featureLayout(traj: Trajectories, options: LayoutOptions = {}): FeatureLayout {
  checkTrajectories(traj);
  const A = traj.actionDims;
  const sizes = traj.actionEncodings.map((e) => e.values.length);
  let control: number[];
  let controlSource: ControlSource[];
  if (options.control !== undefined) {
    if (!Array.isArray(options.control) || options.control.length !== A || options.control.some((k, j) => !Number.isInteger(k) || k < 0 || k >= sizes[j])) {
      throw new ArgumentError('control', `must hold one value index per action dimension (${A}), each below that dimension's ${sizes.join('/')} values`);
    }
    control = [...options.control];
    controlSource = control.map(() => 'schema');
  } else {
    ({ control, source: controlSource } = controlActions(traj));
  }
  let dynamic: number[];
  if (options.dynamic !== undefined) {
    if (!Array.isArray(options.dynamic) || options.dynamic.some((s) => !Number.isInteger(s) || s < 0 || s >= traj.stateDim) || new Set(options.dynamic).size !== options.dynamic.length) {
      throw new ArgumentError('dynamic', `must hold distinct state indices in [0, ${traj.stateDim})`);
    }
    dynamic = [...options.dynamic].sort((a, b) => a - b);
  } else {
    dynamic = dynamicStates(traj);
  }
  const stateNames = traj.stateNames.length === traj.stateDim ? traj.stateNames : Array.from({ length: traj.stateDim }, (_, s) => `s${s}`);
  const actionColumns = traj.actionEncodings.map((e, j) => e.column || `action${j}`);
  const names = [
    ...stateNames.map((n) => `state:${n}`),
    ...traj.actionEncodings.flatMap((e, j) => e.values.map((v) => `action:${actionColumns[j]}=${String(v)}`)),
    'round_frac',
    'hist:treated',
    'hist:since_treated',
    ...actionColumns.map((c) => `hist:prev:${c}`),
    'hist:reward_sum',
    'hist:cost_sum',
    'hist:reward_rounds',
  ];
  const action = traj.stateDim;
  const round = action + sizes.reduce((a, b) => a + b, 0);
  return {
    names,
    stateDim: traj.stateDim,
    stateNames,
    actionColumns,
    actionSizes: sizes,
    control,
    controlSource,
    rounds: traj.rounds,
    dynamic,
    offsets: { state: 0, action, round, history: round + 1 },
  };
}

/** Number of history columns of a layout. */
export const historyWidth = (layout: FeatureLayout): number => HISTORY.length + layout.actionSizes.length;

/** Checks that trajectories have the shape a layout was made for. */
export function checkLayoutFits(layout: FeatureLayout, traj: Trajectories): void {
  checkTrajectories(traj);
  if (traj.stateDim !== layout.stateDim) throw new ArgumentError('trajectories', `have ${traj.stateDim} state features, the model was fitted on ${layout.stateDim}`);
  const sizes = traj.actionEncodings.map((e) => e.values.length);
  if (sizes.length !== layout.actionSizes.length || sizes.some((k, j) => k !== layout.actionSizes[j])) {
    throw new ArgumentError('trajectories', `have action sizes [${sizes.join(', ')}], the model was fitted on [${layout.actionSizes.join(', ')}]`);
  }
}

/** Every joint action, [K, A] value indices, the last dimension fastest; K = Π sizes. */
export function jointActions(sizes: number[]): Int32Array {
  const K = sizes.reduce((a, b) => a * b, 1);
  const A = sizes.length;
  const out = new Int32Array(K * A);
  for (let k = 0; k < K; k++) {
    let rest = k;
    for (let j = A - 1; j >= 0; j--) {
      out[k * A + j] = rest % sizes[j];
      rest = Math.floor(rest / sizes[j]);
    }
  }
  return out;
}

/** The joint index (row of `jointActions`) of each cell's logged action, [N*T]; -1 for padding. */
export function loggedJointActions(traj: Trajectories): Int32Array {
  const A = traj.actionDims;
  const sizes = traj.actionEncodings.map((e) => e.values.length);
  const out = new Int32Array(traj.users * traj.rounds).fill(-1);
  for (let c = 0; c < out.length; c++) if (traj.mask[c]) out[c] = jointIndex(sizes, traj.actions.subarray(c * A, c * A + A));
  return out;
}

/** Where {@link loggingPropensities} took its values from. */
export type PropensitySource = 'logged' | 'action shares';

/** Which cells {@link loggingPropensities} gives (and counts for the shares). */
export interface PropensityCells {
  /** Only this round's cells. Default: every round. */
  round?: number;
  /** Leave out calendar rounds filled as the control (no logged decision): 0 there, and not counted. Default false. */
  skipFilled?: boolean;
}

/**
 * The logging policy's probability of each real cell's logged action, [N*T] (0 in padding and
 * in cells `which` leaves out): the log's own where it has them (schema `propensity`), else the
 * share of the cell's joint action among the same cells of `sharesOf` (default: `traj`
 * itself; an action it never holds counts once). The shares are right only for a log
 * randomised independently of the users (uniform over K joint actions: about 1/K each); a
 * targeted log needs its propensities.
 */
export function loggingPropensities(traj: Trajectories, sharesOf: Trajectories = traj, which: PropensityCells = {}): { values: Float64Array; source: PropensitySource } {
  const included = (t: Trajectories, c: number) => t.mask[c] === 1 && (which.round === undefined || c % t.rounds === which.round) && !(which.skipFilled && t.filled?.[c] === 1);
  const cells = traj.users * traj.rounds;
  const values = new Float64Array(cells);
  if (traj.propensity) {
    for (let c = 0; c < cells; c++) if (included(traj, c)) values[c] = traj.propensity[c];
    return { values, source: 'logged' };
  }
  const joint = loggedJointActions(traj);
  const sharesJoint = sharesOf === traj ? joint : loggedJointActions(sharesOf);
  const counts = new Float64Array(traj.actionEncodings.reduce((k, e) => k * e.values.length, 1));
  let counted = 0;
  for (let c = 0; c < sharesJoint.length; c++) {
    if (!included(sharesOf, c)) continue;
    counts[sharesJoint[c]]++;
    counted++;
  }
  for (let c = 0; c < cells; c++) if (included(traj, c) && counted > 0) values[c] = Math.max(counts[joint[c]], 1) / counted;
  return { values, source: 'action shares' };
}

/** The joint index (row of `jointActions`) of one action [sizes.length]: the last dimension fastest. */
export function jointIndex(sizes: readonly number[], action: ArrayLike<number>): number {
  let k = 0;
  for (let j = 0; j < sizes.length; j++) k = k * sizes[j] + action[j];
  return k;
}

/** A design matrix and the cell (i*T + t) each of its rows belongs to. */
export interface DesignMatrix {
  /** [rows, layout.names.length] */
  x: Float32Array;
  rows: number;
  cols: number;
  /** [rows] cell index i*T + t into the trajectories' [N, T] arrays. */
  cells: Int32Array;
}

/** The design matrix of every real cell, with the logged actions. */
export function buildFeatures(traj: Trajectories, layout: FeatureLayout): DesignMatrix {
  checkLayoutFits(layout, traj);
  const { users: N, rounds: T, stateDim: d, actionDims: A } = traj;
  const p = layout.names.length;
  let rows = 0;
  for (let c = 0; c < N * T; c++) rows += traj.mask[c];
  const x = new Float32Array(rows * p);
  const cells = new Int32Array(rows);
  const { action: aOff, round: tOff, history: hOff } = layout.offsets;
  const sizeOffsets: number[] = [];
  let acc = 0;
  for (const k of layout.actionSizes) {
    sizeOffsets.push(acc);
    acc += k;
  }
  const H = layout.rounds;
  let r = 0;
  for (let i = 0; i < N; i++) {
    let treated = 0;
    let lastTreated = -1;
    let rewardSum = 0;
    let costSum = 0;
    let rewardRounds = 0;
    for (let t = 0; t < T; t++) {
      const c = i * T + t;
      if (!traj.mask[c]) continue;
      const row = x.subarray(r * p, (r + 1) * p);
      cells[r] = c;
      row.set(traj.states.subarray(c * d, c * d + d), 0);
      for (let j = 0; j < A; j++) row[aOff + sizeOffsets[j] + traj.actions[c * A + j]] = 1;
      row[tOff] = t / H;
      row[hOff] = treated;
      row[hOff + 1] = lastTreated < 0 ? H : t - lastTreated;
      for (let j = 0; j < A; j++) row[hOff + 2 + j] = t > 0 && traj.mask[c - 1] ? traj.actions[(c - 1) * A + j] : -1;
      row[hOff + 2 + A] = rewardSum;
      row[hOff + 3 + A] = costSum;
      row[hOff + 4 + A] = rewardRounds;
      // this round becomes history for the next
      let isTreated = false;
      for (let j = 0; j < A; j++) if (traj.actions[c * A + j] !== layout.control[j]) isTreated = true;
      if (isTreated) {
        treated++;
        lastTreated = t;
      }
      rewardSum += traj.rewards[c];
      costSum += traj.costs[c];
      if (traj.rewards[c] > 0) rewardRounds++;
      r++;
    }
  }
  return { x, rows, cols: p, cells };
}

/** Rewrites the action one-hot of every row of `x` to one joint action (history untouched). */
export function setActionColumns(x: Float32Array, layout: FeatureLayout, action: ArrayLike<number>): void {
  const p = layout.names.length;
  const rows = x.length / p;
  const { action: aOff, round: tOff } = layout.offsets;
  const width = tOff - aOff;
  const hot: number[] = [];
  let acc = 0;
  layout.actionSizes.forEach((k, j) => {
    const v = action[j];
    if (!Number.isInteger(v) || v < 0 || v >= k) throw new ArgumentError('action', `dimension ${j}: index ${v} is not one of its ${k} values`);
    hot.push(aOff + acc + v);
    acc += k;
  });
  for (let r = 0; r < rows; r++) {
    x.fill(0, r * p + aOff, r * p + aOff + width);
    for (const col of hot) x[r * p + col] = 1;
  }
}
