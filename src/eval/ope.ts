/**
 * Off-policy estimates of a target policy's value from a log whose logging propensities are
 * known (a randomised log, or one with a logged propensity column): inverse propensity (IPS),
 * self-normalised IPS (SNIPS), and their per-decision forms for logs with several rounds per
 * user, with standard errors clustered by user and effective sample sizes.
 *
 * Notation. User i has rows t = rounds in increasing order; each row carries the logged action
 * a_it, the logging propensity μ_it = μ(a_it | history) > 0, the target's probability
 * π_it = π(a_it | history) of that same action, a reward r_it and a cost c_it. The ratio is
 * ρ_it = π_it / μ_it and the cumulative weight w_it = Π_{s ≤ t} ρ_is (rounds a user has no row
 * for make no decision: ratio 1, reward and cost 0).
 *
 * The estimand is V(π) = E[Σ_t r_t] under π: **the sum over rounds per user, averaged over
 * users** (the same for cost). Multiply by a number of users for a total (`scaleTo`):
 * `nativeRollout`'s `revenue` is such a total over its users.
 *
 * - `ips` (trajectory-wise): (1/N) Σ_i W_i G_i with W_i = Π_t ρ_it (the whole trajectory's
 *   weight) and G_i = Σ_t r_it. Unbiased; variance grows like the product of the ratios.
 * - `snips`: Σ_i W_i G_i / Σ_i W_i. Consistent, not unbiased; the value stays in the
 *   range of the outcomes.
 * - `pdis` (per-decision IPS): (1/N) Σ_i Σ_t w_it r_it: round t's reward is weighted by the
 *   ratios up to t only. Unbiased, and the estimator to use for T > 1: a round's reward does
 *   not depend on later actions, so later ratios only add variance. For T = 1 it equals `ips`.
 * - `pdsnips` (weighted per-decision): Σ_t (Σ_i w_it r_it) / (Σ_i w_it), normalised round by
 *   round. For T = 1 it equals `snips`.
 *
 * Standard errors are clustered by user: users are independent, the rounds of one user are
 * not, so each estimator is written as a mean (or a smooth function of means) of per-user
 * terms and its variance estimated from those terms: for a mean, sd(Y_i)/√N (N − 1 in the
 * sd); for the self-normalised ones, the delta method (linearisation) with the same N − 1
 * correction. They are valid for large N, not for a handful of users with non-zero weight:
 * read them together with the effective sample size.
 *
 * Effective sample size (Kish): (Σ w)² / Σ w² over users, for the trajectory weights W_i
 * (`ips`, `snips`) and for each round's cumulative weights w_it; the per-decision estimators
 * report the smallest over rounds (usually the last). With uniform logging over K actions and a
 * deterministic target, the trajectory ESS is about N / K^T.
 */
import { ArgumentError } from '../errors.js';

/** A per-row array, or one number for every row. */
export type PerRow = ArrayLike<number> | number;

/**
 * The log, one entry per row (user, round), in any order. Every per-row array has the same
 * length (the number of rows).
 */
export interface OpeLog {
  /** The user of each row: any safe integer (ids need not be dense). */
  user: ArrayLike<number>;
  /**
   * The round of each row: an integer ≥ 0. Orders a user's rows and aligns rounds across users
   * (the per-decision self-normalisation is per round). A user has at most one row per round.
   */
  round: ArrayLike<number>;
  /**
   * μ(a | history): the probability with which the logging policy took the logged action
   * (joint over the action dimensions), in (0, 1]. One number for a log where it is the same
   * everywhere (uniform over K actions: 1/K; see {@link uniformPropensities}).
   */
  logging: PerRow;
  /**
   * π(a | history): the target policy's probability of the logged action, in [0, 1]. For a
   * deterministic target, 1 where it would take the logged action, else 0
   * ({@link deterministicTargetProbabilities}).
   */
  target: PerRow;
  /** Reward of each row (finite). */
  reward: ArrayLike<number>;
  /** Cost of each row (finite). */
  cost: ArrayLike<number>;
}

/** One estimate of one outcome. */
export interface OpeEstimate {
  /** The estimate of the value (per user, or scaled by `scaleTo`); NaN when undefined (no weight). */
  value: number;
  /** Its standard error, clustered by user (same scale as `value`). */
  se: number;
  /** Kish effective sample size of the weights it uses (users; the minimum over rounds for the per-decision ones). */
  ess: number;
}

/** The four estimators of one outcome. */
export interface OpeEstimates {
  /** Trajectory-wise inverse propensity: unbiased. */
  ips: OpeEstimate;
  /** Trajectory-wise self-normalised IPS. */
  snips: OpeEstimate;
  /** Per-decision IPS: unbiased, lower variance than `ips` for T > 1. */
  pdis: OpeEstimate;
  /** Per-decision self-normalised IPS (weighted per-decision importance sampling). */
  pdsnips: OpeEstimate;
}

/** What {@link offPolicyEstimates} returns. */
export interface OpeResult {
  /** Number of distinct users N (the clusters). */
  users: number;
  /** Number of rows. */
  rows: number;
  /** The distinct rounds of the log, ascending. */
  rounds: number[];
  /** The factor every value and SE was multiplied by (1: per user). */
  scale: number;
  reward: OpeEstimates;
  cost: OpeEstimates;
  diagnostics: {
    /** Mean trajectory weight (1/N) Σ W_i; its expectation is 1 under correct propensities. */
    meanWeight: number;
    /** Mean cumulative weight per round (1/N) Σ_i w_it; each has expectation 1. */
    meanWeightByRound: number[];
    /** Kish ESS of the trajectory weights. */
    ess: number;
    /** Kish ESS of the cumulative weights of each round. */
    essByRound: number[];
    /** Largest ratio π/μ of any row. */
    maxRatio: number;
  };
}

/** Options of {@link offPolicyEstimates}. */
export interface OpeOptions {
  /**
   * Multiplies every value and standard error: 1 (default) gives the value per user (sum over
   * rounds, averaged over users); N gives the total over a population of N such users.
   */
  scaleTo?: number;
}

/**
 * A log validated and grouped by user, rows in round order: the common input of the
 * estimators here and of the doubly robust ones built on them.
 */
export interface OpeTrajectories {
  /** Distinct users N. */
  users: number;
  /** The user ids, in order of first appearance (dense index → id). */
  userIds: number[];
  /** Distinct rounds, ascending. */
  rounds: number[];
  /** Row indices of the original log, grouped by user (dense index order) and sorted by round within a user. */
  order: Int32Array;
  /** User u's rows are order[start[u] .. start[u+1]). Length N + 1. */
  start: Int32Array;
  /** Rank of each original row's round in `rounds`. */
  roundRank: Int32Array;
  /** π/μ of each original row. */
  ratio: Float64Array;
}

function isArrayLike(v: unknown): v is ArrayLike<number> {
  return v !== null && typeof v === 'object' && typeof (v as { length?: unknown }).length === 'number';
}

function checkLength(name: string, v: unknown, rows: number): void {
  if (!isArrayLike(v)) throw new ArgumentError(`ope.${name}`, 'must be an array of numbers');
  if (v.length !== rows) throw new ArgumentError(`ope.${name}`, `has ${v.length} entries, expected ${rows} (one per row, like ope.user)`);
}

function perRowValue(v: PerRow, i: number): number {
  return typeof v === 'number' ? v : v[i];
}

function checkProbability(name: string, v: PerRow, rows: number, open: boolean): void {
  const bad = (x: number): boolean => !(open ? x > 0 && x <= 1 : x >= 0 && x <= 1);
  const range = open ? '(0, 1]' : '[0, 1]';
  if (typeof v === 'number') {
    if (bad(v)) throw new ArgumentError(`ope.${name}`, `must be a probability in ${range}, got ${v}`);
    return;
  }
  checkLength(name, v, rows);
  for (let i = 0; i < rows; i++) {
    if (bad(v[i])) throw new ArgumentError(`ope.${name}[${i}]`, `must be a probability in ${range}, got ${v[i]}`);
  }
}

function checkFinite(name: string, v: ArrayLike<number>, rows: number): void {
  checkLength(name, v, rows);
  for (let i = 0; i < rows; i++) {
    if (!Number.isFinite(v[i])) throw new ArgumentError(`ope.${name}[${i}]`, `must be a finite number, got ${v[i]}`);
  }
}

/**
 * Validates a log and groups it by user in round order. Throws ArgumentError naming the field
 * and row on: arrays of different lengths, no rows, user ids that are not safe integers,
 * rounds that are not integers ≥ 0, two rows of one user in one round, logging propensities
 * not in (0, 1], target probabilities not in [0, 1], rewards or costs that are not finite
 * (NaN included).
 */
export function groupOpeLog(log: OpeLog): OpeTrajectories {
  if (log === null || typeof log !== 'object') throw new ArgumentError('ope', 'must be an object { user, round, logging, target, reward, cost }');
  if (!isArrayLike(log.user)) throw new ArgumentError('ope.user', 'must be an array of numbers');
  const rows = log.user.length;
  if (rows < 1) throw new ArgumentError('ope.user', 'the log has no rows');
  checkLength('round', log.round, rows);
  checkProbability('logging', log.logging, rows, true);
  checkProbability('target', log.target, rows, false);
  checkFinite('reward', log.reward, rows);
  checkFinite('cost', log.cost, rows);

  const userIndex = new Map<number, number>();
  const userIds: number[] = [];
  const dense = new Int32Array(rows);
  const roundSet = new Set<number>();
  for (let i = 0; i < rows; i++) {
    const id = log.user[i];
    if (!Number.isSafeInteger(id)) throw new ArgumentError(`ope.user[${i}]`, `must be a safe integer, got ${id}`);
    const r = log.round[i];
    if (!Number.isInteger(r) || r < 0 || r > 0x7fffffff) throw new ArgumentError(`ope.round[${i}]`, `must be an integer in [0, 2^31), got ${r}`);
    let u = userIndex.get(id);
    if (u === undefined) {
      u = userIds.length;
      userIndex.set(id, u);
      userIds.push(id);
    }
    dense[i] = u;
    roundSet.add(r);
  }
  const rounds = [...roundSet].sort((a, b) => a - b);
  const rank = new Map<number, number>();
  rounds.forEach((r, k) => rank.set(r, k));
  const roundRank = new Int32Array(rows);
  for (let i = 0; i < rows; i++) roundRank[i] = rank.get(log.round[i]) as number;

  // Counting sort by dense user, then a sort by round inside each user (already sorted in the usual layout).
  const N = userIds.length;
  const start = new Int32Array(N + 1);
  for (let i = 0; i < rows; i++) start[dense[i] + 1]++;
  for (let u = 0; u < N; u++) start[u + 1] += start[u];
  const fill = start.slice(0, N);
  const order = new Int32Array(rows);
  for (let i = 0; i < rows; i++) order[fill[dense[i]]++] = i;
  for (let u = 0; u < N; u++) {
    const a = start[u];
    const b = start[u + 1];
    let sorted = true;
    for (let k = a + 1; k < b; k++) {
      if (roundRank[order[k]] <= roundRank[order[k - 1]]) {
        sorted = false;
        break;
      }
    }
    if (!sorted) {
      const part = Array.from(order.subarray(a, b)).sort((x, y) => roundRank[x] - roundRank[y] || x - y);
      order.set(part, a);
    }
    for (let k = a + 1; k < b; k++) {
      if (roundRank[order[k]] === roundRank[order[k - 1]]) {
        throw new ArgumentError(`ope.round[${order[k]}]`, `user ${userIds[u]} has two rows in round ${log.round[order[k]]} (rows ${order[k - 1]} and ${order[k]})`);
      }
    }
  }

  const ratio = new Float64Array(rows);
  for (let i = 0; i < rows; i++) ratio[i] = perRowValue(log.target, i) / perRowValue(log.logging, i);
  return { users: N, userIds, rounds, order, start, roundRank, ratio };
}

function kish(sum: number, sumSq: number): number {
  return sumSq > 0 ? (sum * sum) / sumSq : 0;
}

/** Clustered SE of a mean of per-user terms (or of linearised terms that sum to ~0): √(Σ (y − ȳ)² / (N (N − 1))). */
function clusteredSe(terms: Float64Array, centred: boolean): number {
  const N = terms.length;
  if (N < 2) return NaN;
  let mean = 0;
  if (!centred) {
    for (let i = 0; i < N; i++) mean += terms[i];
    mean /= N;
  }
  let ss = 0;
  for (let i = 0; i < N; i++) ss += (terms[i] - mean) * (terms[i] - mean);
  return Math.sqrt(ss / (N * (N - 1)));
}

/** The per-user quantities of one outcome, from which every estimator follows. */
function estimateOutcome(g: OpeTrajectories, y: ArrayLike<number>, scale: number, essTraj: number, essByRound: number[]): OpeEstimates {
  const N = g.users;
  const R = g.rounds.length;
  const { order, start, roundRank, ratio } = g;
  const Wi = new Float64Array(N); // trajectory weight
  const Gi = new Float64Array(N); // return
  const PDi = new Float64Array(N); // Σ_t w_it y_it
  const sumWY = new Float64Array(R); // Σ_i w_it y_it per round
  const sumW = new Float64Array(R + 1); // difference array, then Σ_i w_it per round (weights carried over absent rounds)
  for (let u = 0; u < N; u++) {
    let w = 1;
    let G = 0;
    let pd = 0;
    let from = 0; // rank from which the current w holds
    for (let k = start[u]; k < start[u + 1]; k++) {
      const row = order[k];
      const t = roundRank[row];
      sumW[from] += w;
      sumW[t] -= w;
      w *= ratio[row];
      from = t;
      const wy = w * y[row];
      G += y[row];
      pd += wy;
      sumWY[t] += wy;
    }
    sumW[from] += w;
    sumW[R] -= w;
    Wi[u] = w;
    Gi[u] = G;
    PDi[u] = pd;
  }
  for (let t = 1; t <= R; t++) sumW[t] += sumW[t - 1];

  // Trajectory IPS and SNIPS.
  let sW = 0;
  let sWG = 0;
  for (let u = 0; u < N; u++) {
    sW += Wi[u];
    sWG += Wi[u] * Gi[u];
  }
  const ipsTerms = new Float64Array(N);
  for (let u = 0; u < N; u++) ipsTerms[u] = Wi[u] * Gi[u];
  const ips = sWG / N;
  const snips = sW > 0 ? sWG / sW : NaN;
  const snipsTerms = new Float64Array(N);
  if (sW > 0) {
    const meanW = sW / N;
    for (let u = 0; u < N; u++) snipsTerms[u] = (Wi[u] * Gi[u] - snips * Wi[u]) / meanW;
  }

  // Per-decision IPS and its self-normalised form.
  const pdis = PDi.reduce((a, b) => a + b, 0) / N;
  const perRound = new Float64Array(R); // V̂_t = Σ w y / Σ w
  let pdsnips = 0;
  let defined = true;
  for (let t = 0; t < R; t++) {
    if (sumW[t] > 0) perRound[t] = sumWY[t] / sumW[t];
    else defined = false;
    pdsnips += perRound[t];
  }
  // Linearisation: φ_i = Σ_t (w_it y_it − V̂_t w_it) / m_t with m_t = (1/N) Σ_i w_it, the weight carried over absent rounds.
  // c_t = V̂_t / m_t; with prefix sums C, a weight w held over ranks [a, b) contributes w (C[b] − C[a]).
  const C = new Float64Array(R + 1);
  for (let t = 0; t < R; t++) C[t + 1] = C[t] + (sumW[t] > 0 ? perRound[t] / (sumW[t] / N) : 0);
  const pdsTerms = new Float64Array(N);
  for (let u = 0; u < N; u++) {
    let w = 1;
    let from = 0;
    let phi = 0;
    for (let k = start[u]; k < start[u + 1]; k++) {
      const row = order[k];
      const t = roundRank[row];
      phi -= w * (C[t] - C[from]);
      w *= ratio[row];
      from = t;
      if (sumW[t] > 0) phi += (w * y[row]) / (sumW[t] / N);
    }
    phi -= w * (C[R] - C[from]);
    pdsTerms[u] = phi;
  }
  const essPd = essByRound.reduce((a, b) => Math.min(a, b), Infinity);
  return {
    ips: { value: ips * scale, se: clusteredSe(ipsTerms, false) * scale, ess: essTraj },
    snips: { value: snips * scale, se: (sW > 0 ? clusteredSe(snipsTerms, true) : NaN) * scale, ess: essTraj },
    pdis: { value: pdis * scale, se: clusteredSe(PDi, false) * scale, ess: essPd },
    pdsnips: { value: defined ? pdsnips * scale : NaN, se: defined ? clusteredSe(pdsTerms, true) * scale : NaN, ess: essPd },
  };
}

/**
 * IPS, SNIPS, per-decision IPS and per-decision SNIPS of a target policy's reward and cost,
 * with standard errors clustered by user and effective sample sizes (see the module comment
 * for the formulas). The value is the sum over rounds per user averaged over users, times
 * `options.scaleTo` (default 1).
 *
 * A self-normalised estimate is NaN (with a NaN SE) where its normaliser is 0: no user has a
 * non-zero trajectory weight (`snips`), or no user has a non-zero cumulative weight in some
 * round (`pdsnips`): the log says nothing about the target there.
 *
 * @throws ArgumentError on a malformed log (see {@link groupOpeLog}) or a bad `scaleTo`.
 */
export function offPolicyEstimates(log: OpeLog, options: OpeOptions = {}): OpeResult {
  const scale = options.scaleTo ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
    throw new ArgumentError('ope.scaleTo', `must be a finite number > 0, got ${String(scale)}`);
  }
  const g = groupOpeLog(log);
  return estimateGrouped(g, log.reward, log.cost, scale);
}

/** {@link offPolicyEstimates} on a log already grouped by {@link groupOpeLog} (outcomes are not validated again). */
export function estimateGrouped(g: OpeTrajectories, reward: ArrayLike<number>, cost: ArrayLike<number>, scale = 1): OpeResult {
  const N = g.users;
  const R = g.rounds.length;
  // Weight diagnostics (trajectory, and per round with weights carried over absent rounds).
  const sumW = new Float64Array(R + 1);
  const sumW2 = new Float64Array(R + 1);
  let sW = 0;
  let sW2 = 0;
  let maxRatio = 0;
  for (let u = 0; u < N; u++) {
    let w = 1;
    let from = 0;
    for (let k = g.start[u]; k < g.start[u + 1]; k++) {
      const row = g.order[k];
      const t = g.roundRank[row];
      sumW[from] += w;
      sumW[t] -= w;
      sumW2[from] += w * w;
      sumW2[t] -= w * w;
      w *= g.ratio[row];
      from = t;
      if (g.ratio[row] > maxRatio) maxRatio = g.ratio[row];
    }
    sumW[from] += w;
    sumW[R] -= w;
    sumW2[from] += w * w;
    sumW2[R] -= w * w;
    sW += w;
    sW2 += w * w;
  }
  for (let t = 1; t <= R; t++) {
    sumW[t] += sumW[t - 1];
    sumW2[t] += sumW2[t - 1];
  }
  const essByRound = Array.from({ length: R }, (_, t) => kish(sumW[t], sumW2[t]));
  const ess = kish(sW, sW2);
  return {
    users: N,
    rows: g.order.length,
    rounds: g.rounds,
    scale,
    reward: estimateOutcome(g, reward, scale, ess, essByRound),
    cost: estimateOutcome(g, cost, scale, ess, essByRound),
    diagnostics: {
      meanWeight: sW / N,
      meanWeightByRound: Array.from({ length: R }, (_, t) => sumW[t] / N),
      ess,
      essByRound,
      maxRatio,
    },
  };
}

function checkActions(name: string, actions: ArrayLike<number>, actionSizes: readonly number[]): number {
  if (!Array.isArray(actionSizes) || actionSizes.length < 1) throw new ArgumentError('ope.actionSizes', 'must list the number of values of each action dimension');
  for (const [j, K] of actionSizes.entries()) {
    if (!Number.isInteger(K) || K < 1) throw new ArgumentError(`ope.actionSizes[${j}]`, `must be an integer ≥ 1, got ${K}`);
  }
  if (!isArrayLike(actions)) throw new ArgumentError(`ope.${name}`, 'must be an array of action indices');
  const A = actionSizes.length;
  if (actions.length % A !== 0) throw new ArgumentError(`ope.${name}`, `has ${actions.length} entries, not a multiple of the ${A} action dimensions`);
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    const K = actionSizes[i % A];
    if (!Number.isInteger(a) || a < 0 || a >= K) {
      throw new ArgumentError(`ope.${name}[${i}]`, `row ${Math.floor(i / A)}, dimension ${i % A}: must be an action index in [0, ${K}), got ${a}`);
    }
  }
  return actions.length / A;
}

/**
 * Logging propensities of a log randomised uniformly and independently over each action
 * dimension: μ = Π_j 1/K_j for every row (SY's uniform logger: 1/4 with its 4 coupons).
 *
 * @param actions [rows, dims] logged action indices (validated against `actionSizes`).
 * @param actionSizes K_j, the number of values of each action dimension.
 */
export function uniformPropensities(actions: ArrayLike<number>, actionSizes: readonly number[]): Float64Array {
  const rows = checkActions('actions', actions, actionSizes);
  const p = actionSizes.reduce((acc, K) => acc / K, 1);
  return new Float64Array(rows).fill(p);
}

/**
 * π of the logged action under a deterministic target: 1 on rows where the target's action
 * equals the logged one in every dimension, else 0.
 *
 * @param logged [rows, dims] logged action indices.
 * @param target [rows, dims] the target policy's action on each row's logged state and history.
 * @param dims number of action dimensions (1 by default).
 */
export function deterministicTargetProbabilities(logged: ArrayLike<number>, target: ArrayLike<number>, dims = 1): Float64Array {
  if (!Number.isInteger(dims) || dims < 1) throw new ArgumentError('ope.dims', `must be an integer ≥ 1, got ${dims}`);
  if (!isArrayLike(logged) || !isArrayLike(target)) throw new ArgumentError('ope.target', 'logged and target actions must be arrays');
  if (logged.length !== target.length) throw new ArgumentError('ope.target', `has ${target.length} entries, the logged actions ${logged.length}`);
  if (logged.length % dims !== 0) throw new ArgumentError('ope.logged', `has ${logged.length} entries, not a multiple of ${dims} dimensions`);
  const rows = logged.length / dims;
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let same = 1;
    for (let j = 0; j < dims; j++) {
      const a = logged[i * dims + j];
      const b = target[i * dims + j];
      if (!Number.isInteger(a) || !Number.isInteger(b)) throw new ArgumentError(`ope.target[${i}]`, `action indices must be integers, got ${a} and ${b}`);
      if (a !== b) same = 0;
    }
    out[i] = same;
  }
  return out;
}

/**
 * π or μ of the logged action under a policy that draws each action dimension independently
 * from per-row distributions: Π_j probs[j][row, a_j].
 *
 * @param actions [rows, dims] logged action indices.
 * @param actionSizes K_j per dimension.
 * @param probs one array per dimension, [rows, K_j] row-major, each row a distribution.
 */
export function factoredProbabilities(actions: ArrayLike<number>, actionSizes: readonly number[], probs: ReadonlyArray<ArrayLike<number>>): Float64Array {
  const rows = checkActions('actions', actions, actionSizes);
  const A = actionSizes.length;
  if (!Array.isArray(probs) || probs.length !== A) throw new ArgumentError('ope.probs', `must have one array per action dimension (${A})`);
  for (let j = 0; j < A; j++) {
    const K = actionSizes[j];
    const p = probs[j];
    if (!isArrayLike(p) || p.length !== rows * K) throw new ArgumentError(`ope.probs[${j}]`, `must have rows × K = ${rows * K} entries`);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const v = p[i * K + k];
        if (!(v >= 0 && v <= 1)) throw new ArgumentError(`ope.probs[${j}][${i * K + k}]`, `must be a probability in [0, 1], got ${v}`);
        s += v;
      }
      if (Math.abs(s - 1) > 1e-6) throw new ArgumentError(`ope.probs[${j}]`, `row ${i} sums to ${s}, not 1`);
    }
  }
  const out = new Float64Array(rows).fill(1);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < A; j++) out[i] *= probs[j][i * actionSizes[j] + actions[i * A + j]];
  }
  return out;
}
