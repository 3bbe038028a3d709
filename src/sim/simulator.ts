/**
 * The learned offline simulator (issue 13; DESIGN.md sections 6 and 8): an environment fitted
 * on logs, in which the same rollout, budget rule, λ search and policies run as in SY. It is
 * the outcome model (src/sim/outcome.ts: XGBoost hurdles for reward and cost, transition heads
 * for the state features that change, all reading the user's history) plus what was measured
 * when fitting it:
 *
 *   clock features   state features that are the same for every user at a round (t/T, a week
 *                    number): replayed from the log's per-round value, not learned
 *   noise tables     quantiles of y / ŷ on held-out users for E[r | r≠0] and E[c | c≠0],
 *                    rescaled to mean 1: the spread the trees do not explain, sampled
 *   max cost         per joint action, the largest logged cost (the budget rule's test; sampled
 *                    costs are clipped to it, so realised spend never exceeds B)
 *   dynamic range    the logged range of each dynamic feature (simulated values are clipped)
 *
 * Per arm: by default one outcome model per joint action (a T-learner) when there are at most
 * 16 and each was logged ≥ 500 times, else one pooled model with the action one-hot. Measured on
 * SY (uniform log, 2,000 fresh users, E[r] of the model on the TRUE trajectories of a fixed
 * action vs the truth, rounds 0 / 4 / 9): a pooled model is off by +14.5 / +7.4 / +6.6% for
 * no coupon with 30,000 training users (+17.7 / +8.5 / +8.0% with 8,000), per-arm models by
 * +2.0 / +1.2 / +2.2% (the $10 coupon: -4.0 / +4.5 / +5.7% pooled, -0.1 / +0.5 / -0.9% per arm).
 *
 * native/env_sim.h says how a round is simulated. One file holds it all: a versioned header
 * with the data's schema and fingerprint (a simulator is refused for data of another schema,
 * naming the fields that differ), then the outcome model's bytes.
 */
import { readFileSync } from 'node:fs';
import { ArgumentError, DataError } from '../errors.js';
import type { SyOptions } from '../data/synth.js';
import { resolveSyConfig } from '../data/synth.js';
import type { Trajectories } from '../data/trajectories.js';
import { writeFileAtomic } from '../data/atomic.js';
import { dataFingerprint } from '../model/artifact.js';
import { ModelFileError } from '../model/onnx.js';
import { native, type NativeSimEnv, type NativeSimSpec, type NativeSimTrace } from '../native/index.js';
import { buildFeatures, checkTrajectories, dynamicStates, featureLayout, historyWidth, jointActions, loggedJointActions, type FeatureLayout } from './features.js';
import { checkArmsChoice, choosePerArm, fitPerArm, jointCount, pooled, rowsByArm, type ArmsChoice } from './arm-outcomes.js';
import { fitOutcomeModel, loadOutcomeModel, OutcomeModel, validationUsers, VALIDATION_FRACTION, type OutcomeParams } from './outcome.js';

const MAGIC = 'SACOSIMU';
const VERSION = 1;
/** Quantiles of each noise table (at 0.1% … 99.9%). */
const NOISE_QUANTILES = 101;
/** Below this many held-out nonzero outcomes, the amount is its mean (no noise table). */
const NOISE_MIN_ROWS = 50;

type SchemaSide = Pick<Trajectories, 'stateNames' | 'actionEncodings' | 'categorical'>;

export interface SimulatorFitOptions extends OutcomeParams {
  /** Share of users held out for early stopping and the noise tables. Default 0.2. */
  validationFraction?: number;
  /** The control value index per action dimension; default: from the log (src/sim/features.ts). */
  control?: number[];
  /** State features to learn transitions for; default: those that change within a user and are not clocks. */
  dynamic?: number[];
  /**
   * 'per-arm': one outcome model per joint action; 'pooled': one model, the action one-hot;
   * 'auto' (default): per arm when there are at most 16 joint actions, each logged ≥ 500 times
   * (src/sim/arm-outcomes.ts).
   */
  arms?: ArmsChoice;
  /** Called when the outcome model starts and ends fitting. */
  onProgress?: (stage: 'fitting' | 'measuring' | 'done') => void;
}

/** Everything in a simulator file besides the outcome model (JSON). */
export interface SimulatorHeader {
  format: 'saco-simulator';
  version: number;
  /** sha256 of the state names and encodings (src/model/artifact.ts `dataFingerprint`). */
  fingerprint: string;
  schema: { stateNames: string[]; actionEncodings: Trajectories['actionEncodings']; categorical: Trajectories['categorical'] };
  layout: FeatureLayout;
  /** Which outcome model (index into the file's models) answers each joint action. */
  armModel: number[];
  dynamic: number[];
  dynamicMin: number[];
  dynamicMax: number[];
  clock: number[];
  /** [rounds, clock] */
  clockValues: number[];
  rewardNoise: number[];
  costNoise: number[];
  /** [joint actions] (src/sim/features.ts `jointActions` order) */
  maxCost: number[];
  /** Design rows of the log (float32 little-endian, base64): the compiled trees must equal XGBoost on them when loaded. */
  checkRows: string;
  /** Per outcome model: every logged row of its actions had a cost exactly when it had a reward, so P(c≠0) is P(r≠0). */
  sameHurdle: boolean[];
  fit: { source: string; users: number; rows: number; seconds: number; validationFraction: number; arms: 'per-arm' | 'pooled'; params: OutcomeParams; xgboost: string };
}

const disposeOnGc = new FinalizationRegistry<number>((id) => {
  native().simDispose(id);
});

/** A fitted or loaded simulator, held by the native core (shared read-only by threads). */
export class Simulator {
  /** The native simulator id (rollout specs take it). */
  readonly id: number;
  /** The outcome models; `header.armModel[k]` answers joint action k. */
  readonly outcomes: OutcomeModel[];
  readonly header: SimulatorHeader;
  private disposed = false;

  /** @internal use fitSimulator or loadSimulator */
  constructor(outcomes: OutcomeModel[], header: SimulatorHeader) {
    this.outcomes = outcomes;
    this.header = header;
    this.id = native().simCreate(nativeSpec(outcomes, header));
    disposeOnGc.register(this, this.id, this);
  }

  get layout(): FeatureLayout {
    return this.header.layout;
  }

  /** Rounds of the log it was fitted on (the most a rollout can run). */
  get rounds(): number {
    return this.header.layout.rounds;
  }

  get stateDim(): number {
    return this.header.layout.stateDim;
  }

  get fingerprint(): string {
    return this.header.fingerprint;
  }

  /** The environment spec of a rollout in this simulator. */
  nativeEnv(options: { seed?: number; startRound?: number; expectedFrom?: SyOptions } = {}): NativeSimEnv {
    this.check();
    const seed = options.seed ?? 1;
    if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) throw new ArgumentError('env.seed', `must be an integer in [0, 2^53), got ${String(seed)}`);
    const startRound = options.startRound ?? 0;
    if (!Number.isInteger(startRound) || startRound < 0 || startRound >= this.rounds) throw new ArgumentError('env.startRound', `must be an integer in [0, ${this.rounds - 1}], got ${String(startRound)}`);
    const env: NativeSimEnv = { kind: 'sim', simulator: this.id, seed, startRound };
    if (options.expectedFrom) env.expectedFrom = resolveSyConfig({ ...options.expectedFrom, users: 1 });
    return env;
  }

  /**
   * Refuses data of another schema than the one it was fitted on, naming what differs.
   * @throws {DataError} code `SIMULATOR_DATA_MISMATCH`.
   */
  checkData(data: SchemaSide & { source?: string }): void {
    checkDataMatchesSimulator(this.header, data);
  }

  /** The simulator as one file's bytes. */
  save(): Uint8Array {
    this.check();
    return encodeSimulator(this.header, this.outcomes.map((m) => m.save()));
  }

  /** Frees the native simulator and its outcome models; later calls throw. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeOnGc.unregister(this);
    native().simDispose(this.id);
    for (const m of this.outcomes) m.dispose();
  }

  /** Per head, summed over the outcome models: the share of total gain on the history columns (0..1), and the top ones. */
  historyImportance(): Array<{ head: string; share: number; top: Array<{ feature: string; gain: number }> }> {
    const names = [...new Set(this.outcomes.flatMap((m) => m.heads.filter((h) => h.present && !h.constant).map((h) => h.name)))];
    return names.map((head) => {
      const gain = new Map<string, number>();
      for (const m of this.outcomes) {
        const h = m.head(head);
        if (!h || h.constant) continue;
        for (const f of m.importance(head)) gain.set(f.feature, (gain.get(f.feature) ?? 0) + f.gain);
      }
      const ranked = [...gain].map(([feature, g]) => ({ feature, gain: g })).sort((a, b) => b.gain - a.gain);
      const total = ranked.reduce((t, f) => t + f.gain, 0);
      const hist = ranked.filter((f) => f.feature.startsWith('hist:'));
      return { head, share: total > 0 ? hist.reduce((t, f) => t + f.gain, 0) / total : 0, top: hist.slice(0, 3) };
    });
  }

  /** The outcome models' heads (trees kept, validation metric, residual sd), per model. */
  heads(): Array<{ model: number; arm: string; heads: OutcomeModel['heads'] }> {
    const L = this.layout;
    const joint = jointActions(L.actionSizes);
    const A = L.actionSizes.length;
    return this.outcomes.map((m, k) => {
      const arms = this.header.armModel.flatMap((mk, a) => (mk === k ? [a] : []));
      const label = arms.length === this.header.armModel.length ? 'all actions' : arms.map((a) => L.actionColumns.map((col, j) => `${col}=${String(this.header.schema.actionEncodings[j].values[joint[a * A + j]])}`).join(',')).join(' ');
      return { model: k, arm: label, heads: m.heads };
    });
  }

  private check(): void {
    if (this.disposed) throw new ArgumentError('simulator', 'the simulator was disposed');
  }
}

function nativeSpec(outcomes: OutcomeModel[], h: SimulatorHeader): NativeSimSpec {
  const L = h.layout;
  return {
    outcomes: outcomes.map((m) => m.id),
    armModel: h.armModel,
    layout: { stateDim: L.stateDim, actionSizes: L.actionSizes, control: L.control, rounds: L.rounds },
    dynamic: h.dynamic,
    dynamicMin: h.dynamicMin,
    dynamicMax: h.dynamicMax,
    clock: h.clock,
    clockValues: h.clockValues,
    rewardNoise: h.rewardNoise,
    costNoise: h.costNoise,
    maxCost: h.maxCost,
    checkRows: decodeRows(h.checkRows),
    sameHurdle: (h.sameHurdle ?? []).map((v) => (v ? 1 : 0)),
  };
}

const CHECK_ROWS = 128;

function encodeRows(x: Float32Array): string {
  const le = new Uint8Array(x.length * 4);
  const view = new DataView(le.buffer);
  x.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return Buffer.from(le).toString('base64');
}

function decodeRows(text: string | undefined): Float32Array | undefined {
  if (!text) return undefined;
  const bytes = Buffer.from(text, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: Math.floor(bytes.length / 4) }, (_, i) => view.getFloat32(i * 4, true));
}

/**
 * The fields where `data` differs from what the simulator was fitted on.
 * @throws {DataError} code `SIMULATOR_DATA_MISMATCH`, naming the state features, action columns or encodings that differ.
 */
export function checkDataMatchesSimulator(header: SimulatorHeader, data: SchemaSide & { source?: string }): void {
  const file = data.source ?? 'data';
  const want = header.schema;
  const diffs: string[] = [];
  const missing = want.stateNames.filter((n) => !data.stateNames.includes(n));
  const extra = data.stateNames.filter((n) => !want.stateNames.includes(n));
  if (missing.length) diffs.push(`state features missing from the data: ${missing.join(', ')}`);
  if (extra.length) diffs.push(`state features the simulator does not know: ${extra.join(', ')}`);
  if (!missing.length && !extra.length && want.stateNames.some((n, j) => data.stateNames[j] !== n)) {
    diffs.push(`state features in another order: simulator ${want.stateNames.join(', ')}; data ${data.stateNames.join(', ')}`);
  }
  if (data.actionEncodings.length !== want.actionEncodings.length) {
    diffs.push(`${data.actionEncodings.length} action dimension(s), the simulator ${want.actionEncodings.length}`);
  } else {
    want.actionEncodings.forEach((enc, j) => {
      const got = data.actionEncodings[j];
      if (got.column !== enc.column) diffs.push(`action column ${j + 1} is "${got.column}", the simulator's "${enc.column}"`);
      else if (got.values.length !== enc.values.length || got.values.some((v, k) => String(v) !== String(enc.values[k]))) {
        diffs.push(`action column "${enc.column}" has values [${got.values.join(', ')}], the simulator [${enc.values.join(', ')}]`);
      }
    });
  }
  const cats = new Map(want.categorical.map((c) => [c.column, c]));
  for (const c of data.categorical) {
    const w = cats.get(c.column);
    if (w && (w.kind !== c.kind || w.levels.join('\u0000') !== c.levels.join('\u0000'))) diffs.push(`categorical ${c.column} is encoded with other levels or kind`);
  }
  if (!diffs.length && dataFingerprint(data) !== header.fingerprint) diffs.push('categorical encodings differ');
  if (diffs.length) throw new DataError('SIMULATOR_DATA_MISMATCH', `the simulator was fitted on data of another schema: ${diffs.join('; ')}`, { file });
}

// ---------------------------------------------------------------------------------------
// Fitting.

/** State features (among `candidates`) that hold one value per round for every user, and those values [T, clock]. */
export function clockFeatures(traj: Trajectories, candidates: number[]): { clock: number[]; values: number[] } {
  const { users: N, rounds: T, stateDim: d } = traj;
  const clock: number[] = [];
  const columns: Float64Array[] = [];
  for (const s of candidates) {
    const byRound = new Float64Array(T).fill(NaN);
    let same = true;
    for (let c = 0; c < N * T && same; c++) {
      if (!traj.mask[c]) continue;
      const t = c % T;
      const v = traj.states[c * d + s];
      if (Number.isNaN(byRound[t])) byRound[t] = v;
      else if (byRound[t] !== v) same = false;
    }
    if (!same) continue;
    // a round nobody reached: the last known value
    for (let t = 0; t < T; t++) if (Number.isNaN(byRound[t])) byRound[t] = t > 0 ? byRound[t - 1] : 0;
    clock.push(s);
    columns.push(byRound);
  }
  const values: number[] = [];
  for (let t = 0; t < T; t++) for (const col of columns) values.push(col[t]);
  return { clock, values };
}

/** Quantiles of y / ŷ (both > 0) at 0.1% … 99.9%, rescaled so the sampled ratio has mean 1; [] with too few rows. */
export function ratioQuantiles(y: ArrayLike<number>, yHat: ArrayLike<number>, count = NOISE_QUANTILES): number[] {
  const ratios: number[] = [];
  for (let r = 0; r < y.length; r++) if (y[r] > 0 && yHat[r] > 0) ratios.push(y[r] / yHat[r]);
  if (ratios.length < NOISE_MIN_ROWS) return [];
  ratios.sort((a, b) => a - b);
  const at = (p: number) => {
    const pos = p * (ratios.length - 1);
    const k = Math.floor(pos);
    return k + 1 < ratios.length ? ratios[k] + (pos - k) * (ratios[k + 1] - ratios[k]) : ratios[k];
  };
  const q = Array.from({ length: count }, (_, k) => at(0.001 + (0.998 * k) / (count - 1)));
  // the mean of the piecewise-linear quantile function the native side samples
  let mean = 0;
  for (let k = 0; k + 1 < count; k++) mean += (q[k] + q[k + 1]) / 2 / (count - 1);
  return mean > 0 ? q.map((v) => v / mean) : [];
}

/**
 * Fits a simulator on logged trajectories: the outcome model(s) on every real (user, round)
 * cell (early stopping on a seeded share of users), then the noise tables on those held-out
 * users, the clock features, the per-action cost caps and the dynamic features' ranges.
 *
 * @throws {ArgumentError} for bad options or trajectories (sizes, action indices, non-finite values).
 * @example
 * const { trajectories } = await readTrajectories('logs.parquet', { schema });
 * const sim = await fitSimulator(trajectories, { seed: 1 });
 * writeSimulator(sim, 'sim.bin');
 */
export async function fitSimulator(traj: Trajectories, options: SimulatorFitOptions = {}): Promise<Simulator> {
  const t0 = performance.now();
  checkTrajectories(traj);
  const fraction = options.validationFraction ?? VALIDATION_FRACTION;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) throw new ArgumentError('validationFraction', `must be in [0, 1), got ${String(fraction)}`);
  checkArmsChoice(options.arms ?? 'auto');
  const changing = dynamicStates(traj);
  const { clock, values: clockValues } = clockFeatures(traj, changing);
  const dynamic = options.dynamic ?? changing.filter((s) => !clock.includes(s));
  const layout = featureLayout(traj, { control: options.control, dynamic });
  if (clock.some((s) => layout.dynamic.includes(s))) throw new ArgumentError('dynamic', `state ${traj.stateNames[clock.find((s) => layout.dynamic.includes(s))!]} is a clock (one value per round for every user): it is replayed, not learned`);
  const params: OutcomeParams = {};
  for (const k of ['rounds', 'depth', 'eta', 'subsample', 'minChildWeight', 'lambda', 'maxBin', 'earlyStopping', 'tolerance', 'seed', 'threads'] as const) {
    if (options[k] !== undefined) params[k] = options[k];
  }
  const seed = params.seed ?? 0;
  const K = jointCount(layout);
  const joint = loggedJointActions(traj);
  const m = buildFeatures(traj, layout);
  if (m.rows === 0) throw new ArgumentError('trajectories', 'have no real (user, round) cell to fit on');
  const rowsOf = rowsByArm(joint, m, K);
  const perArm = choosePerArm(options.arms ?? 'auto', rowsOf);
  const held = fraction > 0 ? validationUsers(traj.users, fraction, seed) : new Uint8Array(traj.users);
  options.onProgress?.('fitting');
  const { outcomes, armModel } = perArm ? await fitPerArm(traj, m, rowsOf, layout, { held, params }) : pooled(await fitOutcomeModel(traj, { ...params, layout, validationFraction: fraction }));
  try {
    options.onProgress?.('measuring');
    const T = traj.rounds;
    const d = traj.stateDim;
    const p = m.cols;
    // the amounts' ratios y / ŷ on held-out rows (every row without a validation share), each row scored by its action's model
    const noiseOf = async (values: Float32Array, head: 'eReward' | 'eCost'): Promise<number[]> => {
      const ys: number[] = [];
      const preds: number[] = [];
      for (let mk = 0; mk < outcomes.length; mk++) {
        const rows: number[] = [];
        for (let k = 0; k < K; k++) {
          if (armModel[k] !== mk) continue;
          for (const r of rowsOf[k]) if ((fraction === 0 || held[Math.floor(m.cells[r] / T)]) && values[m.cells[r]] > 0) rows.push(r);
        }
        if (!rows.length) continue;
        const x = new Float32Array(rows.length * p);
        rows.forEach((r, q) => x.set(m.x.subarray(r * p, (r + 1) * p), q * p));
        const pred = (await outcomes[mk].predictRows(x, { threads: params.threads }))[head] as Float32Array;
        rows.forEach((r, q) => {
          ys.push(values[m.cells[r]]);
          preds.push(pred[q]);
        });
      }
      return ratioQuantiles(ys, preds);
    };
    const rewardNoise = await noiseOf(traj.rewards, 'eReward');
    const costNoise = await noiseOf(traj.costs, 'eCost');
    // cost caps per joint action; a joint action never logged gets the largest logged cost
    const maxCost = new Array<number>(K).fill(-1);
    let overall = 0;
    for (let c = 0; c < joint.length; c++) {
      if (joint[c] < 0) continue;
      const cost = traj.costs[c];
      if (cost > maxCost[joint[c]]) maxCost[joint[c]] = cost;
      if (cost > overall) overall = cost;
    }
    for (let k = 0; k < K; k++) if (maxCost[k] < 0) maxCost[k] = overall;
    // one hurdle where the log never had a cost without a reward or a reward without a cost
    const sameHurdle = outcomes.map((_, mk) => {
      let nonzero = 0;
      for (let k = 0; k < K; k++) {
        if (armModel[k] !== mk) continue;
        for (const r of rowsOf[k]) {
          const c = m.cells[r];
          if ((traj.costs[c] !== 0) !== (traj.rewards[c] !== 0)) return false;
          if (traj.costs[c] !== 0) nonzero++;
        }
      }
      return nonzero > 0;
    });
    const dynamicMin = layout.dynamic.map(() => Infinity);
    const dynamicMax = layout.dynamic.map(() => -Infinity);
    for (let c = 0; c < traj.users * T; c++) {
      if (!traj.mask[c]) continue;
      layout.dynamic.forEach((s, j) => {
        const v = traj.states[c * d + s];
        if (v < dynamicMin[j]) dynamicMin[j] = v;
        if (v > dynamicMax[j]) dynamicMax[j] = v;
      });
    }
    const header: SimulatorHeader = {
      format: 'saco-simulator',
      version: VERSION,
      fingerprint: dataFingerprint(traj),
      schema: { stateNames: [...traj.stateNames], actionEncodings: traj.actionEncodings, categorical: traj.categorical },
      layout,
      armModel,
      dynamic: layout.dynamic,
      dynamicMin,
      dynamicMax,
      clock,
      clockValues,
      rewardNoise,
      costNoise,
      maxCost,
      sameHurdle,
      checkRows: encodeRows(Float32Array.from({ length: Math.min(CHECK_ROWS, m.rows) * p }, (_, q) => m.x[Math.floor((Math.floor(q / p) * m.rows) / Math.min(CHECK_ROWS, m.rows)) * p + (q % p)])),
      fit: { source: traj.source, users: traj.users, rows: m.rows, seconds: (performance.now() - t0) / 1000, validationFraction: fraction, arms: perArm ? 'per-arm' : 'pooled', params, xgboost: outcomes[0].xgboost },
    };
    const sim = new Simulator(outcomes, header);
    options.onProgress?.('done');
    return sim;
  } catch (e) {
    for (const o of outcomes) o.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// The file: MAGIC, u32 version, u32 header length, header JSON (UTF-8), u32 model count, then
// per model u64 length and its bytes (src/sim/outcome.ts `OutcomeModel.save`).

function encodeSimulator(header: SimulatorHeader, models: Uint8Array[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const size = 16 + json.length + 4 + models.reduce((t, b) => t + 8 + b.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, json.length, true);
  out.set(json, 16);
  let at = 16 + json.length;
  view.setUint32(at, models.length, true);
  at += 4;
  for (const b of models) {
    view.setBigUint64(at, BigInt(b.length), true);
    out.set(b, at + 8);
    at += 8 + b.length;
  }
  return out;
}

/**
 * A simulator from the bytes of `Simulator.save()` / a file written by `writeSimulator`.
 * @throws {ModelFileError} code `SIMULATOR_FILE_INVALID` for bytes that are not a saco simulator, of a newer version, or truncated.
 */
export function loadSimulator(bytes: Uint8Array, file = 'simulator'): Simulator {
  const bad = (detail: string) => new ModelFileError(file, detail, 'SIMULATOR_FILE_INVALID');
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError('bytes', 'must be a Uint8Array');
  if (bytes.length < 20 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw bad('not a saco simulator file (bad magic); write one with `saco fit-sim`');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version > VERSION) throw bad(`simulator format version ${version}; this saco reads up to ${VERSION}`);
  const length = view.getUint32(12, true);
  if (16 + length + 4 > bytes.length) throw bad('truncated (the header runs past the end)');
  let header: SimulatorHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + length))) as SimulatorHeader;
  } catch {
    throw bad('the header is not JSON (corrupt file)');
  }
  if (header?.format !== 'saco-simulator' || !header.layout || !header.schema || !Array.isArray(header.armModel)) throw bad('the header is not a saco simulator header');
  let at = 16 + length;
  const count = view.getUint32(at, true);
  at += 4;
  const outcomes: OutcomeModel[] = [];
  try {
    for (let k = 0; k < count; k++) {
      if (at + 8 > bytes.length) throw bad(`truncated: outcome model ${k + 1} of ${count} is missing`);
      const n = Number(view.getBigUint64(at, true));
      if (at + 8 + n > bytes.length) throw bad(`truncated: outcome model ${k + 1} of ${count} needs ${n} bytes, ${bytes.length - at - 8} are there`);
      try {
        outcomes.push(loadOutcomeModel(bytes.subarray(at + 8, at + 8 + n)));
      } catch (e) {
        throw bad(`outcome model ${k + 1} of ${count} is unreadable: ${(e as Error).message}`);
      }
      at += 8 + n;
    }
    if (at !== bytes.length) throw bad(`${bytes.length - at} bytes after the last outcome model (corrupt file)`);
    if (outcomes.some((o) => JSON.stringify(o.layout.names) !== JSON.stringify(header.layout.names))) throw bad('an outcome model inside was fitted on other columns than the header names');
    return new Simulator(outcomes, header);
  } catch (e) {
    for (const o of outcomes) o.dispose();
    if (e instanceof ModelFileError) throw e;
    throw bad((e as Error).message);
  }
}

/** Reads a simulator file. @throws {ModelFileError} when missing or invalid. */
export function readSimulator(file: string): Simulator {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ModelFileError(file, `cannot read the simulator: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, 'SIMULATOR_FILE_INVALID');
  }
  return loadSimulator(bytes, file);
}

/** Writes a simulator as one file (through a temporary file: a failed write leaves nothing). @throws {ModelFileError} code `SIMULATOR_WRITE_FAILED`. */
export function writeSimulator(sim: Simulator, file: string): void {
  const bytes = sim.save();
  try {
    writeFileAtomic(file, bytes);
  } catch (e) {
    throw new ModelFileError(file, `cannot write the simulator: ${(e as Error).message}`, 'SIMULATOR_WRITE_FAILED');
  }
}

/** Number of simulators alive in the native core (tests, diagnostics). */
export function simulatorCount(): number {
  return native().simCount();
}

// ---------------------------------------------------------------------------------------
// Users.

/** Users as a rollout in the simulator takes them: ids (key of every draw), starting states (and history), the start round. */
export interface SimUsers {
  userIds: Uint32Array;
  /** [users, stateDim] at round 0; [users, stateDim + history columns] from a later round. */
  features: Float64Array;
  startRound: number;
}

/**
 * A log's users as the simulator's starting users: their state at round `round` (default 0,
 * their first logged round) and, from a later round, their history columns up to it (the
 * simulation then starts there: "from their logged history on"). Ids are the log's user ids
 * where all are integers in [0, 2^32) (SY logs), else the users' positions in the log.
 *
 * @throws {DataError} `SIMULATOR_DATA_MISMATCH` for another schema; {ArgumentError} when a user has no logged round `round`.
 */
export function simUsers(sim: Simulator, traj: Trajectories, options: { round?: number } = {}): SimUsers {
  sim.checkData(traj);
  checkTrajectories(traj, 'users');
  const round = options.round ?? 0;
  if (!Number.isInteger(round) || round < 0 || round >= Math.min(sim.rounds, traj.rounds)) {
    const why = Number.isInteger(round) && round >= traj.rounds && round < sim.rounds ? `: the log has rounds 0..${traj.rounds - 1}, and a plan starts from a round whose states it holds` : '';
    throw new ArgumentError('round', `must be an integer in [0, ${Math.min(sim.rounds, traj.rounds) - 1}], got ${String(round)}${why}`);
  }
  const { users: N, rounds: T, stateDim: d } = traj;
  const numeric = traj.userIds.every((u) => /^\d+$/.test(u) && Number(u) <= 0xffffffff);
  const userIds = Uint32Array.from({ length: N }, (_, i) => (numeric ? Number(traj.userIds[i]) : i));
  const hw = round > 0 ? historyWidth(sim.layout) : 0;
  const w = d + hw;
  const features = new Float64Array(N * w);
  const absent: string[] = [];
  for (let i = 0; i < N; i++) {
    const c = i * T + round;
    if (!traj.mask[c]) absent.push(traj.userIds[i]);
    for (let j = 0; j < d; j++) features[i * w + j] = traj.states[c * d + j];
  }
  if (absent.length) throw new ArgumentError('users', `${absent.length} user(s) have no logged round ${round} (first: "${absent[0]}"); start at an earlier round or leave them out`);
  if (hw > 0) {
    const m = buildFeatures(traj, sim.layout);
    const h = sim.layout.offsets.history;
    for (let r = 0; r < m.rows; r++) {
      const c = m.cells[r];
      if (c % T !== round) continue;
      const i = Math.floor(c / T);
      for (let j = 0; j < hw; j++) features[i * w + d + j] = m.x[r * m.cols + h + j];
    }
  }
  return { userIds, features, startRound: round };
}

/** The design matrix of `traj` as the native mirror of buildFeatures computes it (tests hold the two equal). */
export async function nativeDesignMatrix(traj: Trajectories, layout: FeatureLayout): Promise<Float32Array> {
  checkTrajectories(traj);
  return native().simDesign({
    layout: { stateDim: layout.stateDim, actionSizes: layout.actionSizes, control: layout.control, rounds: layout.rounds },
    users: traj.users,
    rounds: traj.rounds,
    states: traj.states,
    actions: traj.actions,
    rewards: traj.rewards,
    costs: traj.costs,
    mask: traj.mask,
  });
}

/**
 * Simulates `users` for `rounds` rounds under uniformly random actions (the Random policy's
 * draws) and records everything the simulator saw: states, the design rows it scored, actions,
 * rewards and costs ([users, rounds, …]). For tests and diagnostics.
 */
export async function traceSimulator(sim: Simulator, users: SimUsers, rounds: number, seed = 1): Promise<NativeSimTrace> {
  return native().simTrace(sim.nativeEnv({ seed, startRound: users.startRound }), users.userIds, users.features, rounds);
}
