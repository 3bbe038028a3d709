/**
 * Doubly robust off-policy estimates, beside the IPS family of src/eval/ope.ts: an outcome
 * model's predictions are the baseline and importance weights correct its error, so the
 * estimate is unbiased when the logging propensities are right (whatever the model), and its
 * variance falls as the model gets better.
 *
 * Notation as in ope.ts: user i's rows t in round order, ratio ρ_it = π_it / μ_it, cumulative
 * weight w_it = Π_{s ≤ t} ρ_is, w_i,t−1 the weight before row t (1 before the first row; rounds
 * without a row carry the weight over), W_i = the trajectory's weight. The outcome model gives,
 * per row,
 *   q̂_it = Ê[y | s_it, a_it, h_it]                  (at the logged action)
 *   v̂_it = Σ_a π(a | s_it, h_it) Ê[y | s_it, a, h_it]  (its expectation under the target; for a
 *                                                     deterministic target, at the target's action)
 * with y the reward (or the cost) of the round: the immediate outcome, E[r | s, a, h], as
 * src/sim/outcome.ts predicts it (`predictOutcomes`), not a value of the rounds to come.
 *
 * - `pddr` (per-decision DR; Jiang & Li 2016, Thomas & Brunskill 2016, with a one-round model):
 *     (1/N) Σ_i Σ_t [ w_i,t−1 v̂_it + w_it (y_it − q̂_it) ]
 *   The estimator to use for T > 1. For q̂ = v̂ = 0 it is per-decision IPS exactly.
 * - `dr` (trajectory-wise): (1/N) Σ_i [ Σ_t w_i,t−1 v̂_it + W_i Σ_t (y_it − q̂_it) ]
 *   Unbiased too (E[W Σ (y − q̂)] = V(π) − E_π Σ q̂ and E[Σ w_t−1 v̂] = E_π Σ q̂), with the
 *   trajectory weight's variance; for q̂ = v̂ = 0 it is trajectory IPS. For T = 1 both are the
 *   usual DR, v̂ + ρ (y − q̂).
 *
 * Both are means of per-user terms, so their standard errors are clustered by user exactly as
 * in ope.ts: sd of the terms / √N (N − 1 in the sd). The model must not have been fitted on the
 * users it scores (fit it on training users, or cross-fit), or its overfit leaks into the
 * correction term and the SE is too small.
 */
import { ArgumentError } from '../errors.js';
import { loggedJointActions } from '../sim/features.js';
import { predictOutcomes, type OutcomeModel } from '../sim/outcome.js';
import type { Trajectories } from '../data/trajectories.js';
import { estimateGrouped, groupOpeLog, type OpeEstimate, type OpeLog, type OpeResult, type OpeTrajectories } from './ope.js';

/** An outcome model's predictions of one outcome (reward or cost), one entry per row of the log. */
export interface OutcomePredictions {
  /** q̂: the model's E[y | s, a, h] at the logged action. */
  logged: ArrayLike<number>;
  /** v̂: Σ_a π(a | s, h) E[y | s, a, h], the model's expectation under the target policy. */
  target: ArrayLike<number>;
}

/** A log with known propensities (see {@link OpeLog}) and an outcome model's predictions for it. */
export interface DrLog extends OpeLog {
  rewardModel: OutcomePredictions;
  costModel: OutcomePredictions;
}

/** The doubly robust estimates of one outcome. */
export interface DrEstimates {
  /** Trajectory-wise doubly robust: unbiased, with the trajectory weight's variance. */
  dr: OpeEstimate;
  /** Per-decision doubly robust: unbiased, the one to use for T > 1. */
  pddr: OpeEstimate;
  /** The model's part alone, (1/N) Σ_i Σ_t w_i,t−1 v̂_it (its value and SE): how much the correction moves it is `pddr − modelTerm`. */
  modelTerm: OpeEstimate;
}

export interface DrResult {
  users: number;
  rows: number;
  rounds: number[];
  scale: number;
  reward: DrEstimates;
  cost: DrEstimates;
  /** The IPS family on the same log (offPolicyEstimates), to read beside the DR ones. */
  ope: OpeResult;
}

function checkPredictions(name: string, p: OutcomePredictions | undefined, rows: number): void {
  if (typeof p !== 'object' || p === null) throw new ArgumentError(`ope.${name}`, 'must be { logged, target }: the outcome model\'s predictions at the logged action and under the target, one per row');
  for (const key of ['logged', 'target'] as const) {
    const v = p[key];
    if (v === null || typeof v !== 'object' || typeof (v as { length?: unknown }).length !== 'number') throw new ArgumentError(`ope.${name}.${key}`, 'must be an array of numbers');
    if (v.length !== rows) throw new ArgumentError(`ope.${name}.${key}`, `has ${v.length} entries, expected ${rows} (one per row, like ope.user)`);
    for (let i = 0; i < rows; i++) if (!Number.isFinite(v[i])) throw new ArgumentError(`ope.${name}.${key}[${i}]`, `must be a finite number, got ${v[i]}`);
  }
}

function clusteredSe(terms: Float64Array): number {
  const N = terms.length;
  if (N < 2) return NaN;
  let mean = 0;
  for (let i = 0; i < N; i++) mean += terms[i];
  mean /= N;
  let ss = 0;
  for (let i = 0; i < N; i++) ss += (terms[i] - mean) * (terms[i] - mean);
  return Math.sqrt(ss / (N * (N - 1)));
}

function estimate(terms: Float64Array, scale: number, ess: number): OpeEstimate {
  let s = 0;
  for (let i = 0; i < terms.length; i++) s += terms[i];
  return { value: (s / terms.length) * scale, se: clusteredSe(terms) * scale, ess };
}

/** DR, per-decision DR and the model term of one outcome on a grouped log. */
function drOutcome(g: OpeTrajectories, y: ArrayLike<number>, p: OutcomePredictions, scale: number, essTraj: number, essPd: number): DrEstimates {
  const N = g.users;
  const drTerms = new Float64Array(N);
  const pdTerms = new Float64Array(N);
  const modelTerms = new Float64Array(N);
  for (let u = 0; u < N; u++) {
    let w = 1;
    let model = 0;
    let pd = 0;
    let residual = 0;
    for (let k = g.start[u]; k < g.start[u + 1]; k++) {
      const row = g.order[k];
      const before = w;
      w *= g.ratio[row];
      const e = y[row] - p.logged[row];
      model += before * p.target[row];
      pd += before * p.target[row] + w * e;
      residual += e;
    }
    modelTerms[u] = model;
    pdTerms[u] = pd;
    drTerms[u] = model + w * residual;
  }
  return { dr: estimate(drTerms, scale, essTraj), pddr: estimate(pdTerms, scale, essPd), modelTerm: estimate(modelTerms, scale, essPd) };
}

/**
 * Doubly robust and per-decision doubly robust estimates of a target policy's reward and cost
 * (sum over rounds per user, averaged over users, times `scaleTo`), with standard errors
 * clustered by user, and the IPS family of the same log beside them (`ope`).
 *
 * @throws ArgumentError on a malformed log (see groupOpeLog), predictions of the wrong length or
 *   not finite, or a bad `scaleTo`.
 * @example
 * const table = await outcomeTable(model, testTrajectories); // once
 * const p = predictionsFor(table, { actions: targetActions }); // per target policy
 * const r = doublyRobustEstimates({ user, round, logging: 0.25, target: pi, reward, cost, rewardModel: p.reward, costModel: p.cost });
 * console.log(r.reward.pddr, r.ope.reward.pdis);
 */
export function doublyRobustEstimates(log: DrLog, options: { scaleTo?: number } = {}): DrResult {
  const scale = options.scaleTo ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) throw new ArgumentError('ope.scaleTo', `must be a finite number > 0, got ${String(scale)}`);
  const g = groupOpeLog(log);
  const rows = g.order.length;
  checkPredictions('rewardModel', log.rewardModel, rows);
  checkPredictions('costModel', log.costModel, rows);
  const ope = estimateGrouped(g, log.reward, log.cost, scale);
  const essTraj = ope.diagnostics.ess;
  const essPd = ope.diagnostics.essByRound.reduce((a, b) => Math.min(a, b), Infinity);
  return {
    users: g.users,
    rows,
    rounds: g.rounds,
    scale,
    reward: drOutcome(g, log.reward, log.rewardModel, scale, essTraj, essPd),
    cost: drOutcome(g, log.cost, log.costModel, scale, essTraj, essPd),
    ope,
  };
}

/** The target policy of a model's predictions: its joint action per row (deterministic), or its probabilities of every joint action [rows × K]. */
export type TargetSpec = { actions: ArrayLike<number> } | { probabilities: ArrayLike<number> };

/**
 * Per-row q̂ and v̂ from predictions of every joint action ([rows × K], action fastest, as
 * `predictOutcomes(model, traj, 'all')` lays out a cell): q̂ at the logged joint action, v̂ the
 * target's expectation.
 */
export function predictionsFromActions(perAction: ArrayLike<number>, K: number, logged: ArrayLike<number>, target: TargetSpec): OutcomePredictions {
  const rows = logged.length;
  if (!Number.isInteger(K) || K < 1 || perAction.length !== rows * K) throw new ArgumentError('perAction', `must hold rows × K = ${rows} × ${K} predictions`);
  const q = new Float64Array(rows);
  const v = new Float64Array(rows);
  const det = 'actions' in target;
  const tgt = det ? target.actions : target.probabilities;
  if (tgt.length !== (det ? rows : rows * K)) throw new ArgumentError(det ? 'target.actions' : 'target.probabilities', `must hold ${det ? rows : `${rows} × ${K}`} entries`);
  for (let r = 0; r < rows; r++) {
    const a = logged[r];
    if (!Number.isInteger(a) || a < 0 || a >= K) throw new ArgumentError(`logged[${r}]`, `must be a joint action index in [0, ${K})`);
    q[r] = perAction[r * K + a];
    if (det) {
      const b = tgt[r];
      if (!Number.isInteger(b) || b < 0 || b >= K) throw new ArgumentError(`target.actions[${r}]`, `must be a joint action index in [0, ${K})`);
      v[r] = perAction[r * K + b];
    } else {
      let s = 0;
      let total = 0;
      for (let k = 0; k < K; k++) {
        const pk = tgt[r * K + k];
        if (!(pk >= 0 && pk <= 1)) throw new ArgumentError(`target.probabilities[${r * K + k}]`, `must be a probability, got ${pk}`);
        s += pk * perAction[r * K + k];
        total += pk;
      }
      if (Math.abs(total - 1) > 1e-6) throw new ArgumentError('target.probabilities', `row ${r} sums to ${total}, not 1`);
      v[r] = s;
    }
  }
  return { logged: q, target: v };
}

/** An outcome model's predictions of every joint action for the real cells of a log (see {@link outcomeTable}). */
export interface OutcomeTable {
  /** The cell (i·T + t) of each row, user-major. */
  cells: Int32Array;
  K: number;
  /** [rows] the logged joint action of each row. */
  logged: Int32Array;
  /** [rows × K] E[r | s, a, h] and E[c | s, a, h], action fastest. */
  reward: Float64Array;
  cost: Float64Array;
}

/**
 * The outcome model's expected reward and cost of every joint action for every real cell of
 * `traj`, computed once; {@link predictionsFor} then gives q̂ and v̂ for any target policy. The
 * model must be fitted on other users than those of `traj`.
 */
export async function outcomeTable(model: OutcomeModel, traj: Trajectories, options: { threads?: number } = {}): Promise<OutcomeTable> {
  const all = await predictOutcomes(model, traj, 'all', options);
  if (!all.reward || !all.cost) throw new ArgumentError('model', 'has no reward or no cost head: fit it with both');
  const K = all.K;
  const joint = loggedJointActions(traj);
  const list: number[] = [];
  for (let c = 0; c < traj.users * traj.rounds; c++) if (traj.mask[c]) list.push(c);
  const rows = list.length;
  const cells = Int32Array.from(list);
  const logged = new Int32Array(rows);
  const reward = new Float64Array(rows * K);
  const cost = new Float64Array(rows * K);
  for (let r = 0; r < rows; r++) {
    const c = cells[r];
    logged[r] = joint[c];
    for (let k = 0; k < K; k++) {
      reward[r * K + k] = all.reward[c * K + k];
      cost[r * K + k] = all.cost[c * K + k];
    }
  }
  return { cells, K, logged, reward, cost };
}

/** q̂ and v̂ of reward and cost for a target policy, one entry per row of the table. */
export function predictionsFor(table: OutcomeTable, target: TargetSpec): { reward: OutcomePredictions; cost: OutcomePredictions } {
  return { reward: predictionsFromActions(table.reward, table.K, table.logged, target), cost: predictionsFromActions(table.cost, table.K, table.logged, target) };
}

/** {@link outcomeTable} and {@link predictionsFor} in one call, for one target. */
export async function outcomeModelPredictions(
  model: OutcomeModel,
  traj: Trajectories,
  target: TargetSpec,
  options: { threads?: number } = {},
): Promise<{ cells: Int32Array; K: number; reward: OutcomePredictions; cost: OutcomePredictions }> {
  const table = await outcomeTable(model, traj, options);
  return { cells: table.cells, K: table.K, ...predictionsFor(table, target) };
}
