/**
 * The learned outcome model (native/outcome.h): gradient-boosted trees that predict a round's
 * reward and cost from the state, the action and the user's history (src/sim/features.ts),
 * and the next value of each state feature that changes over time. It is the one model both
 * the λ recipe (expected outcomes per action, cross-fitted so no user is scored by a model
 * that saw them) and the offline simulator (samples of outcomes and transitions) stand on.
 *
 * Heads (each a booster, or a constant where there is nothing to learn):
 *   pReward = P(r ≠ 0 | x), eReward = E[r | r ≠ 0, x]   so E[r | x] = pReward · eReward
 *   pCost   = P(c ≠ 0 | x), eCost   = E[c | c ≠ 0, x]   so E[c | x] = pCost · eCost
 *   next    = E[s_{t+1,j} | x, r_t, c_t] per dynamic state feature j, with the residual sd
 * ("≠ 0" is "> 0" for the usual non-negative rewards and costs.)
 *
 * Fits are deterministic for a seed and do not depend on the thread count: every booster is
 * single-threaded and the heads run in parallel (native/xgb.h says why).
 */
import { ArgumentError, NativeError } from '../errors.js';
import { CounterStream, Streams } from '../data/rng.js';
import { selectUsers, type Trajectories } from '../data/trajectories.js';
import { native } from '../native/index.js';
import {
  buildFeatures,
  checkLayoutFits,
  featureLayout,
  jointActions,
  loggedJointActions,
  setActionColumns,
  type DesignMatrix,
  type FeatureLayout,
  type LayoutOptions,
} from './features.js';

/** Booster settings; every field has a default. */
export interface OutcomeParams {
  /** Trees per head at most (early stopping may keep fewer). Default 300. */
  rounds?: number;
  /** Tree depth. Default 3 (SY's response is smooth in x: depth 3 beat 4 and 6 at every size measured). */
  depth?: number;
  /** Learning rate. Default 0.15. */
  eta?: number;
  /** Row share per tree. Default 1. */
  subsample?: number;
  minChildWeight?: number;
  /** L2 penalty on leaf values. Default 1. */
  lambda?: number;
  /** Histogram bins per feature. Default 256. */
  maxBin?: number;
  /** Stop a head after this many trees without validation improvement; 0: off. Default 10. */
  earlyStopping?: number;
  /** An improvement must beat the best by this share of the validation gain since the first tree. Default 1e-3. */
  tolerance?: number;
  /** Seed of the validation split and the boosters. Default 0. */
  seed?: number;
  /** Threads (0: every core). Results do not depend on it. */
  threads?: number;
}

export interface OutcomeFitOptions extends OutcomeParams, LayoutOptions {
  /** Share of users held out for early stopping and residual spreads. Default 0.2; 0: none. */
  validationFraction?: number;
  /** Which heads to fit. Default: all (next only where some state feature is dynamic). */
  heads?: { reward?: boolean; cost?: boolean; next?: boolean };
  /** [N*T] weight of each cell (e.g. inverse propensities); default 1. */
  weights?: Float32Array;
  /** The layout to use (e.g. one shared by the folds of a cross-fit); default: from `traj`. */
  layout?: FeatureLayout;
}

/** A head's training, as the core reports it. */
export interface OutcomeHeadInfo {
  /** pReward, eReward, pCost, eCost, or next:<state index>. */
  name: string;
  present: boolean;
  /** No trees: the head predicts `value` (e.g. no nonzero cost was logged). */
  constant: boolean;
  value: number;
  /** Regression heads: sd of the residual (validation users when there are some). */
  residualSd: number;
  rounds: number;
  roundsRun: number;
  /** logloss or rmse of the kept trees on the validation users; NaN without. */
  validMetric: number;
  metric: string;
  trainRows: number;
  validRows: number;
  /** CPU seconds its training took on its thread (its group's data preparation included once); 0 after load. */
  cpuSeconds: number;
  /** Heads of one group trained one after the other on one thread, groups started in this order; -1 after load. */
  group: number;
  /** Total gain per input column (the layout's names; next heads add reward and cost). */
  importance: Float64Array;
}

/** The raw binding (native/napi/js_outcome.cc). */
interface OutcomeBinding {
  outcomeFit(spec: {
    rows: number;
    cols: number;
    features: Float32Array;
    reward: Float32Array;
    cost: Float32Array;
    weights?: Float32Array;
    validation?: Uint8Array;
    /** Default: both. */
    heads?: { reward: boolean; cost: boolean };
    nextFrom?: number[];
    next?: Float32Array;
    zeroCostColumns?: number[];
    names: string[];
    meta: string;
    /** Absent fields: the native defaults, the same as DEFAULTS below. */
    params: OutcomeParams;
  }): Promise<number>;
  outcomePredict(
    id: number,
    features: Float32Array,
    options?: { reward?: Float32Array; cost?: Float32Array; threads?: number },
  ): Promise<{ pReward?: Float32Array; eReward?: Float32Array; pCost?: Float32Array; eCost?: Float32Array; next?: Float32Array }>;
  outcomeInfo(id: number): { cols: number; nextFrom: number[]; zeroCostColumns: number[]; names: string[]; meta: string; heads: OutcomeHeadInfo[]; xgboost: string };
  outcomeSave(id: number, format?: 'ubj' | 'json'): Uint8Array;
  outcomeLoad(bytes: Uint8Array): number;
  outcomeDispose(id: number): boolean;
  outcomeCount(): number;
}

// The loaded binary carries these since native/napi/js_outcome.cc; src/native types the rest.
const binding = (): OutcomeBinding => native() as unknown as OutcomeBinding;

/** What the native fit of prepared design rows takes besides the layout (its names and meta come from the layout). */
export type OutcomeRowsSpec = Omit<Parameters<OutcomeBinding['outcomeFit']>[0], 'names' | 'meta'>;

/**
 * Fits one outcome model on design rows already built for `layout` (fitOutcomeModel's rows, or
 * the simulator's per-arm subsets); the layout goes into the model's meta, so a loaded model
 * reads it back.
 */
export async function fitOutcomeRows(layout: FeatureLayout, spec: OutcomeRowsSpec): Promise<OutcomeModel> {
  const id = await binding().outcomeFit({ ...spec, names: layout.names, meta: JSON.stringify({ format: META_FORMAT, version: META_VERSION, layout }) });
  return new OutcomeModel(id);
}

const META_FORMAT = 'saco-outcome';
const META_VERSION = 1;

const DEFAULTS: Required<OutcomeParams> = {
  rounds: 300,
  depth: 3,
  eta: 0.15,
  subsample: 1,
  minChildWeight: 1,
  lambda: 1,
  maxBin: 256,
  earlyStopping: 10,
  tolerance: 1e-3,
  seed: 0,
  threads: 0,
};

const disposeOnGc = new FinalizationRegistry<number>((id) => {
  binding().outcomeDispose(id);
});

/** A fitted or loaded outcome model, held by the native core (shared read-only by threads). */
export class OutcomeModel {
  /** The native registry id (the simulator's batons take it). */
  readonly id: number;
  readonly layout: FeatureLayout;
  readonly heads: OutcomeHeadInfo[];
  /** The XGBoost version that runs it. */
  readonly xgboost: string;
  /**
   * Whether the control action costs nothing by construction: no logged control row had a
   * cost, so P(c ≠ 0) is 0 for the control (not a small tree estimate).
   */
  readonly controlCostsNothing: boolean;
  private disposed = false;

  /** @internal use fitOutcomeModel or loadOutcomeModel */
  constructor(id: number) {
    this.id = id;
    const info = binding().outcomeInfo(id);
    this.layout = parseMeta(info.meta);
    this.heads = info.heads;
    this.xgboost = info.xgboost;
    this.controlCostsNothing = info.zeroCostColumns.length > 0;
    disposeOnGc.register(this, id, this);
  }

  /** A head by name (pReward, eReward, pCost, eCost, next:<state index>). */
  head(name: string): OutcomeHeadInfo | undefined {
    return this.heads.find((h) => h.name === name && h.present);
  }

  get hasReward(): boolean {
    return this.head('pReward') !== undefined;
  }

  get hasCost(): boolean {
    return this.head('pCost') !== undefined;
  }

  /** State indices with a transition head, in order. */
  get dynamic(): number[] {
    return this.heads.filter((h) => h.present && h.name.startsWith('next:')).map((h) => Number(h.name.slice(5)));
  }

  /** Features by total gain for one head, highest first. */
  importance(head: string): Array<{ feature: string; gain: number }> {
    const h = this.head(head);
    if (!h) throw new ArgumentError('head', `"${head}" is not a head of this model (${this.heads.filter((x) => x.present).map((x) => x.name).join(', ')})`);
    const names = h.name.startsWith('next:') ? [...this.layout.names, 'outcome:reward', 'outcome:cost'] : this.layout.names;
    return names.map((feature, j) => ({ feature, gain: h.importance[j] ?? 0 })).sort((a, b) => b.gain - a.gain);
  }

  /** The raw heads for design rows x [n, layout.names.length]; with the realised outcomes, the next states [n, k]. */
  async predictRows(x: Float32Array, options: { reward?: Float32Array; cost?: Float32Array; threads?: number } = {}) {
    this.check();
    const p = this.layout.names.length;
    if (!(x instanceof Float32Array) || x.length % p !== 0) throw new ArgumentError('features', `must be a Float32Array of rows × ${p} columns`);
    return binding().outcomePredict(this.id, x, options);
  }

  /** The model as bytes (versioned header, layout, every booster in UBJSON or JSON). */
  save(format: 'ubj' | 'json' = 'ubj'): Uint8Array {
    this.check();
    return binding().outcomeSave(this.id, format);
  }

  /** Frees the native model; later calls throw. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeOnGc.unregister(this);
    binding().outcomeDispose(this.id);
  }

  private check(): void {
    if (this.disposed) throw new ArgumentError('model', 'the outcome model was disposed');
  }
}

function parseMeta(meta: string): FeatureLayout {
  let parsed: unknown;
  try {
    parsed = JSON.parse(meta);
  } catch {
    throw new ArgumentError('bytes', 'the outcome model carries no saco layout (not written by fitOutcomeModel)');
  }
  const m = parsed as { format?: unknown; version?: unknown; layout?: FeatureLayout };
  if (m.format !== META_FORMAT || typeof m.version !== 'number' || !m.layout) throw new ArgumentError('bytes', 'the outcome model carries no saco layout (not written by fitOutcomeModel)');
  if (m.version > META_VERSION) throw new ArgumentError('bytes', `outcome model layout version ${m.version}; this saco reads up to ${META_VERSION}`);
  return m.layout;
}

function checkParams(o: OutcomeFitOptions): Required<OutcomeParams> {
  const p = { ...DEFAULTS };
  const int = (name: keyof OutcomeParams, min: number, max: number) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ArgumentError(name, `must be an integer in [${min}, ${max}], got ${String(v)}`);
    p[name] = v;
  };
  const num = (name: keyof OutcomeParams, ok: (v: number) => boolean, what: string) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new ArgumentError(name, `must be ${what}, got ${String(v)}`);
    p[name] = v;
  };
  int('rounds', 1, 100000);
  int('depth', 1, 20);
  num('eta', (v) => v > 0 && v <= 1, 'in (0, 1]');
  num('subsample', (v) => v > 0 && v <= 1, 'in (0, 1]');
  num('minChildWeight', (v) => v >= 0, '>= 0');
  num('lambda', (v) => v >= 0, '>= 0');
  int('maxBin', 2, 65536);
  int('earlyStopping', 0, 100000);
  num('tolerance', (v) => v >= 0 && v < 1, 'in [0, 1)');
  int('seed', 0, Number.MAX_SAFE_INTEGER);
  int('threads', 0, 1024);
  return p;
}

/** A seeded uniform per user (rank keys of the validation split and of the folds). */
function userKeys(users: number, seed: number, purpose: number): Float64Array {
  const keys = new Float64Array(users);
  for (let i = 0; i < users; i++) keys[i] = new CounterStream(seed, i, purpose, Streams.split).uniform();
  return keys;
}

// Round words of Streams.split draws (splitByUser uses round 0).
const VALIDATION_ROUND = 1;
const FOLD_ROUND = 2;

/** The users (indices) held out for validation: the seeded lowest keys, round(fraction · N). */
export function validationUsers(users: number, fraction: number, seed: number): Uint8Array {
  const flag = new Uint8Array(users);
  const n = Math.round(fraction * users);
  if (n <= 0) return flag;
  const keys = userKeys(users, seed, VALIDATION_ROUND);
  const order = Array.from({ length: users }, (_, i) => i).sort((a, b) => keys[a] - keys[b] || a - b);
  for (let k = 0; k < n; k++) flag[order[k]] = 1;
  return flag;
}

/** Fold of each user for `folds` folds: users ranked by a seeded key, dealt round-robin (sizes differ by ≤ 1). */
export function foldAssignment(users: number, folds: number, seed: number): Int32Array {
  const keys = userKeys(users, seed, FOLD_ROUND);
  const order = Array.from({ length: users }, (_, i) => i).sort((a, b) => keys[a] - keys[b] || a - b);
  const fold = new Int32Array(users);
  order.forEach((i, k) => {
    fold[i] = k % folds;
  });
  return fold;
}

/**
 * Fits the outcome model on every real (user, round) cell of `traj`, early-stopping each head
 * on a seeded share of users (never on rows of a user it trains on).
 */
export async function fitOutcomeModel(traj: Trajectories, options: OutcomeFitOptions = {}): Promise<OutcomeModel> {
  const params = checkParams(options);
  const fraction = options.validationFraction ?? VALIDATION_FRACTION;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) throw new ArgumentError('validationFraction', `must be in [0, 1), got ${String(fraction)}`);
  const layout = options.layout ?? featureLayout(traj, options);
  const m = buildFeatures(traj, layout);
  if (m.rows === 0) throw new ArgumentError('trajectories', 'have no real (user, round) cell to fit on');
  const heads = { reward: options.heads?.reward ?? true, cost: options.heads?.cost ?? true, next: options.heads?.next ?? true };
  const dynamic = heads.next ? layout.dynamic : [];
  if (!heads.reward && !heads.cost && dynamic.length === 0) throw new ArgumentError('heads', 'no head to fit (reward and cost off, and no dynamic state feature)');
  const T = traj.rounds;
  const rows = designRowOutcomes(traj, m, null, validationUsers(traj.users, fraction, params.seed), dynamic);
  let weights: Float32Array | undefined;
  if (options.weights !== undefined) {
    const w = options.weights;
    if (!(w instanceof Float32Array) || w.length !== traj.users * T) throw new ArgumentError('weights', `must be a Float32Array of users × rounds = ${traj.users * T}`);
    weights = new Float32Array(m.rows);
    for (let r = 0; r < m.rows; r++) {
      const c = m.cells[r];
      if (!Number.isFinite(w[c]) || w[c] < 0) throw new ArgumentError('weights', `cell ${c}: ${w[c]} is not a finite weight >= 0`);
      weights[r] = w[c];
    }
  }
  return fitOutcomeRows(layout, {
    zeroCostColumns: heads.cost && controlNeverCosts(traj, layout) ? controlColumns(layout) : undefined,
    rows: m.rows,
    cols: m.cols,
    features: m.x,
    reward: rows.reward,
    cost: rows.cost,
    weights,
    validation: fraction > 0 ? rows.validation : undefined,
    heads: { reward: heads.reward, cost: heads.cost },
    nextFrom: dynamic.length > 0 ? dynamic.map((s) => layout.offsets.state + s) : undefined,
    next: dynamic.length > 0 ? rows.next : undefined,
    params,
  });
}

/** Default share of users held out for early stopping and residual spreads. */
export const VALIDATION_FRACTION = 0.2;

/** What an outcome fit learns from, per design row: its outcomes, whether it is a validation row, and the next round's dynamic states. */
export interface RowOutcomes {
  /** The rows' features (a copy of the subset's rows; `m.x` itself for every row). */
  features: Float32Array;
  reward: Float32Array;
  cost: Float32Array;
  /** 1 where the row's user is held out. */
  validation: Uint8Array;
  anyHeld: boolean;
  /** [rows, dynamic] the next round's value of each dynamic state; NaN (the whole row) where no next round is logged. */
  next: Float32Array;
}

/**
 * The outcomes of design rows `rows` of `m` (null: every row, in order) for an outcome fit:
 * reward and cost of the row's cell, the validation flag of its user (`held`, per user) and the
 * next round's value of each `dynamic` state.
 */
export function designRowOutcomes(traj: Trajectories, m: DesignMatrix, rows: number[] | null, held: Uint8Array, dynamic: number[]): RowOutcomes {
  const { rounds: T, stateDim: d } = traj;
  const p = m.cols;
  const n = rows ? rows.length : m.rows;
  const k = dynamic.length;
  const out: RowOutcomes = {
    features: rows ? new Float32Array(n * p) : m.x,
    reward: new Float32Array(n),
    cost: new Float32Array(n),
    validation: new Uint8Array(n),
    anyHeld: false,
    next: new Float32Array(n * k),
  };
  for (let q = 0; q < n; q++) {
    const r = rows ? rows[q] : q;
    const c = m.cells[r];
    if (rows) out.features.set(m.x.subarray(r * p, (r + 1) * p), q * p);
    out.reward[q] = traj.rewards[c];
    out.cost[q] = traj.costs[c];
    out.validation[q] = held[Math.floor(c / T)];
    out.anyHeld ||= out.validation[q] === 1;
    const hasNext = (c % T) + 1 < T && traj.mask[c + 1] === 1;
    for (let j = 0; j < k; j++) out.next[q * k + j] = hasNext ? traj.states[(c + 1) * d + dynamic[j]] : NaN;
  }
  return out;
}

/** The design columns of the control's one-hot (every dimension at its control value). */
function controlColumns(layout: FeatureLayout): number[] {
  const cols: number[] = [];
  let acc = layout.offsets.action;
  layout.actionSizes.forEach((k, j) => {
    cols.push(acc + layout.control[j]);
    acc += k;
  });
  return cols;
}

/** Whether the control was logged and every logged control cell cost 0. */
export function controlNeverCosts(traj: Trajectories, layout: FeatureLayout): boolean {
  const A = traj.actionDims;
  let seen = 0;
  for (let c = 0; c < traj.users * traj.rounds; c++) {
    if (!traj.mask[c]) continue;
    let control = true;
    for (let j = 0; j < A; j++) if (traj.actions[c * A + j] !== layout.control[j]) control = false;
    if (!control) continue;
    if (traj.costs[c] !== 0) return false;
    seen++;
  }
  return seen > 0;
}

/** Reads bytes written by `OutcomeModel.save()` into the native core. */
export function loadOutcomeModel(bytes: Uint8Array): OutcomeModel {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError('bytes', 'must be a Uint8Array');
  let id: number;
  try {
    id = binding().outcomeLoad(bytes);
  } catch (e) {
    if (e instanceof NativeError) throw new ArgumentError('bytes', e.message, 'OUTCOME_MODEL_INVALID');
    throw e;
  }
  try {
    return new OutcomeModel(id);
  } catch (e) {
    binding().outcomeDispose(id);
    throw e;
  }
}

/** The model's bytes (same as `model.save()`). */
export function saveOutcomeModel(model: OutcomeModel, format: 'ubj' | 'json' = 'ubj'): Uint8Array {
  return model.save(format);
}

/** Number of outcome models alive in the native core (tests, diagnostics). */
export function outcomeModelCount(): number {
  return binding().outcomeCount();
}

/** Per (user, round) cell, [N*T] each; 0 in padded cells. Absent heads are absent. */
export interface OutcomePrediction {
  /** E[r | s, a, h] and E[c | s, a, h]. */
  reward?: Float32Array;
  cost?: Float32Array;
  pReward?: Float32Array;
  /** E[r | r ≠ 0, s, a, h]. */
  eReward?: Float32Array;
  pCost?: Float32Array;
  eCost?: Float32Array;
}

/** Per (user, round) cell and joint action: [N*T*K], action fastest; 0 in padded cells. */
export interface OutcomeByAction {
  /** [K, A] the joint actions (`jointActions`), K = Π action sizes. */
  actions: Int32Array;
  K: number;
  reward?: Float32Array;
  cost?: Float32Array;
  pReward?: Float32Array;
  pCost?: Float32Array;
}

function scatter(values: Float32Array | undefined, cells: Int32Array, out: Float32Array, stride = 1, offset = 0): void {
  if (!values) return;
  for (let r = 0; r < cells.length; r++) out[cells[r] * stride + offset] = values[r];
}

async function predictMatrix(model: OutcomeModel, x: Float32Array, threads?: number) {
  const raw = await model.predictRows(x, { threads });
  const n = x.length / model.layout.names.length;
  const times = (a?: Float32Array, b?: Float32Array) => {
    if (!a || !b) return undefined;
    const out = new Float32Array(n);
    for (let r = 0; r < n; r++) out[r] = a[r] * b[r];
    return out;
  };
  return { ...raw, reward: times(raw.pReward, raw.eReward), cost: times(raw.pCost, raw.eCost) };
}

/**
 * Expected outcomes for every real cell of `traj`: for the logged actions (default), for one
 * joint action given as value indices [A] (history stays as logged: a one-round
 * counterfactual), or for every joint action ('all', e.g. for advantages).
 */
export async function predictOutcomes(model: OutcomeModel, traj: Trajectories, action?: ArrayLike<number>, options?: { threads?: number }): Promise<OutcomePrediction>;
export async function predictOutcomes(model: OutcomeModel, traj: Trajectories, action: 'all', options?: { threads?: number }): Promise<OutcomeByAction>;
export async function predictOutcomes(
  model: OutcomeModel,
  traj: Trajectories,
  action?: ArrayLike<number> | 'all',
  options: { threads?: number } = {},
): Promise<OutcomePrediction | OutcomeByAction> {
  if (!(model instanceof OutcomeModel)) throw new ArgumentError('model', 'must be an OutcomeModel (fitOutcomeModel or loadOutcomeModel)');
  checkLayoutFits(model.layout, traj);
  const m = buildFeatures(traj, model.layout);
  const cellsTotal = traj.users * traj.rounds;
  if (action === 'all') {
    const actions = jointActions(model.layout.actionSizes);
    const A = model.layout.actionSizes.length;
    const K = actions.length / A;
    const out: OutcomeByAction = { actions, K };
    const fields = ['reward', 'cost', 'pReward', 'pCost'] as const;
    for (let a = 0; a < K; a++) {
      setActionColumns(m.x, model.layout, actions.subarray(a * A, (a + 1) * A));
      const p = await predictMatrix(model, m.x, options.threads);
      for (const f of fields) {
        if (!p[f]) continue;
        out[f] ??= new Float32Array(cellsTotal * K);
        scatter(p[f], m.cells, out[f]!, K, a);
      }
    }
    return out;
  }
  if (action !== undefined) {
    if (typeof action !== 'object' || action.length !== model.layout.actionSizes.length) {
      throw new ArgumentError('action', `must be 'all' or one value index per action dimension (${model.layout.actionSizes.length})`);
    }
    setActionColumns(m.x, model.layout, action);
  }
  const p = await predictMatrix(model, m.x, options.threads);
  const out: OutcomePrediction = {};
  for (const f of ['reward', 'cost', 'pReward', 'eReward', 'pCost', 'eCost'] as const) {
    if (!p[f]) continue;
    out[f] = new Float32Array(cellsTotal);
    scatter(p[f], m.cells, out[f]!);
  }
  return out;
}

export interface CrossFitOptions extends Omit<OutcomeFitOptions, 'layout' | 'heads'> {
  /** Number of folds (≥ 2). Default 2. */
  folds?: number;
  /** Called as each fold's model starts (done: the folds finished before it), for progress. */
  onFold?: (done: number, folds: number) => void;
}

/** What a cross-fit returns: every cell scored for every joint action by a model that never saw its user. */
export interface CrossFitResult {
  folds: number;
  /** [N] the fold of each user: its cells are scored by the model fitted on the other folds. */
  fold: Int32Array;
  /** [K, A] joint actions; K = Π action sizes. */
  actions: Int32Array;
  K: number;
  /** [N*T] row of `actions` that was logged in each cell; -1 in padding. */
  logged: Int32Array;
  /** [N*T*K] E[r | s, a, h] and E[c | s, a, h], action fastest; 0 in padding. */
  reward: Float32Array;
  cost: Float32Array;
  /** The layout every fold used (the same control values and columns). */
  layout: FeatureLayout;
  /** Per fold: the number of users it trained on and the heads' training reports. */
  models: Array<{ trainUsers: number; heads: OutcomeHeadInfo[] }>;
}

/**
 * Cross-fitted expected reward and cost of every action in every cell: users are dealt into
 * `folds` seeded folds; the model for fold f is fitted on the users of the other folds (with
 * its own validation users among them) and scores fold f's users. The λ recipe relabels with
 * these, so the policy never learns a model's overfit to its own training users.
 */
export async function crossFitOutcomes(traj: Trajectories, options: CrossFitOptions = {}): Promise<CrossFitResult> {
  const folds = options.folds ?? 2;
  if (!Number.isInteger(folds) || folds < 2) throw new ArgumentError('folds', `must be an integer >= 2, got ${String(folds)}`);
  if (folds > traj.users) throw new ArgumentError('folds', `${folds} folds need at least as many users (have ${traj.users})`);
  checkParams(options);
  const layout = featureLayout(traj, options);
  const seed = options.seed ?? 0;
  const fold = foldAssignment(traj.users, folds, seed);
  const actions = jointActions(layout.actionSizes);
  const A = layout.actionSizes.length;
  const K = actions.length / A;
  const T = traj.rounds;
  const reward = new Float32Array(traj.users * T * K);
  const cost = new Float32Array(traj.users * T * K);
  const models: CrossFitResult['models'] = [];
  const { onFold, ...fitOptions } = options;
  for (let f = 0; f < folds; f++) {
    onFold?.(f, folds);
    const train: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < traj.users; i++) (fold[i] === f ? held : train).push(i);
    const trainTraj = selectUsers(traj, train);
    const heldTraj = selectUsers(traj, held);
    const weights = options.weights ? pickWeights(options.weights, train, T, traj.users) : undefined;
    const model = await fitOutcomeModel(trainTraj, { ...fitOptions, weights, layout, heads: { reward: true, cost: true, next: false } });
    try {
      const p = await predictOutcomes(model, heldTraj, 'all', { threads: options.threads });
      for (let h = 0; h < held.length; h++) {
        const i = held[h];
        reward.set(p.reward!.subarray(h * T * K, (h + 1) * T * K), i * T * K);
        cost.set(p.cost!.subarray(h * T * K, (h + 1) * T * K), i * T * K);
      }
      models.push({ trainUsers: train.length, heads: model.heads });
    } finally {
      model.dispose();
    }
  }
  return { folds, fold, actions, K, logged: loggedJointActions(traj), reward, cost, layout, models };
}

function pickWeights(w: Float32Array, users: number[], T: number, total: number): Float32Array {
  if (!(w instanceof Float32Array) || w.length !== total * T) throw new ArgumentError('weights', `must be a Float32Array of users × rounds = ${total * T}`);
  const out = new Float32Array(users.length * T);
  users.forEach((i, k) => out.set(w.subarray(i * T, (i + 1) * T), k * T));
  return out;
}
