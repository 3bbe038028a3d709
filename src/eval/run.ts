/**
 * evaluate(): the paper's comparison (Table 1, Fig. 4, Fig. 5), reproducible. For each seed it
 * builds the data (an SY world and its uniformly logged training users, plus fresh test users
 * of the same world; or a log's users split by a seeded test fraction, with the learned
 * simulator fitted on the training users as the world, cached like the models), prepares every method (trains or fits it on the training users, cached
 * on disk under <out>/cache/ by data, config and seed), runs every (method, budget) on the
 * test users through the same environment and budget rule, and writes each result to
 * <out>/results/ as soon as it exists (with `plans`, its plan to <out>/plans/), so an
 * interrupted run resumes where it stopped. Then it writes the report (report.ts) and its
 * charts (charts.ts).
 *
 * Budgets are "Nx": N times what the uniform logging policy spends on the same test users
 * (or a currency amount). The default is the paper's three levels × three amounts, 0.1x … 0.9x.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ArgumentError, SacoError } from '../errors.js';
import { syLogToInteractionLog } from '../data/log.js';
import { outcomeInputsNotice, readTrajectories } from '../data/ingest.js';
import { loadSchemaFile, type DataSchema } from '../data/schema.js';
import { resolveSyConfig, SY_DEFAULTS, type SyOptions } from '../data/synth.js';
import { buildTrajectories, sampleUsers, splitByUser, type Trajectories } from '../data/trajectories.js';
import type { TrainOptions } from '../model/train.js';
import { generateSy } from '../native/index.js';
import { fitSimulator, readSimulator, simUsers, writeSimulator, type Simulator } from '../sim/simulator.js';
import { resolveBudget, solve, writePlan, type Budget } from '../solve/index.js';
import { envControl } from './fixed-arm.js';
import { keyHash, writeJsonAtomic } from './files.js';
import { METHODS, methodsByName, testUsers, type EvalDataset, type EvalMethod, type MethodOutcome, type MethodSettings, type Prepared } from './methods.js';
import { buildReport, writeReport, type EvalRecord, type EvalReport, type ReportFiles } from './report.js';
import { roundZeroLog, type RoundZeroLog } from './round-zero.js';

// ---------------------------------------------------------------------------------------
// Data presets and budgets.

export interface DataPreset {
  name: string;
  description: string;
  env: SyOptions;
}

/** SY presets of the evaluation (DESIGN.md section 8). */
export const DATA_PRESETS: readonly DataPreset[] = [
  { name: 'sy', description: 'SY with its default sequential effects (engagement and fatigue)', env: {} },
  { name: 'sy-static', description: "SY without sequential effects (η = δ = 0: the paper's setting, where uplift baselines should match SACO)", env: { sequential: false } },
  {
    name: 'sy-strong',
    description: `SY with strong sequential effects: η and δ doubled (${SY_DEFAULTS.eta * 2}, ${SY_DEFAULTS.delta * 2}), fatigue decaying slower (φ ${SY_DEFAULTS.phi} → 0.85)`,
    env: { eta: SY_DEFAULTS.eta * 2, delta: SY_DEFAULTS.delta * 2, phi: 0.85 },
  },
];

export const DATA_PRESET_NAMES: readonly string[] = DATA_PRESETS.map((p) => p.name);

/** A budget of the comparison: its label, its multiple of the logging spend (for "Nx"), its level. */
export interface EvalBudget {
  /** "0.5x", or the currency amount as written. */
  label: string;
  /** N of "Nx"; undefined for a currency amount. */
  multiple?: number;
  /** A currency amount; undefined for "Nx". */
  amount?: number;
  /** Low, Medium or High (the paper's levels) for multiples; undefined for a currency amount. */
  level?: 'Low' | 'Medium' | 'High';
}

/** The paper's three levels × three amounts: 0.1x … 0.9x of the uniform logging policy's spend on the same users. */
export const DEFAULT_BUDGETS: readonly Budget[] = ['0.1x', '0.2x', '0.3x', '0.4x', '0.5x', '0.6x', '0.7x', '0.8x', '0.9x'];

/** The level of a multiple: up to 0.3x Low, up to 0.6x Medium, above High. */
export function budgetLevel(multiple: number): 'Low' | 'Medium' | 'High' {
  return multiple <= 0.35 ? 'Low' : multiple <= 0.65 ? 'Medium' : 'High';
}

/**
 * Parses the budgets: "Nx" or a currency amount, each > 0.
 * @throws {ArgumentError} for an empty list, a malformed budget, one ≤ 0, or one named twice.
 */
export function parseBudgets(budgets: readonly (Budget | string)[]): EvalBudget[] {
  if (!Array.isArray(budgets) || budgets.length === 0) throw new ArgumentError('budgets', 'must name at least one budget');
  const out = budgets.map((b): EvalBudget => {
    if (typeof b === 'number') {
      if (!Number.isFinite(b) || b <= 0) throw new ArgumentError('budgets', `every budget must be > 0, got ${b}`);
      return { label: String(b), amount: b };
    }
    const s = String(b).trim();
    const m = /^([-+]?[0-9]*\.?[0-9]+(?:e[-+]?\d+)?)(x?)$/i.exec(s);
    if (!m) throw new ArgumentError('budgets', `"${s}" is neither an amount nor a multiple like 0.5x`);
    const n = Number(m[1]);
    if (!Number.isFinite(n) || n <= 0) throw new ArgumentError('budgets', `every budget must be > 0, got ${s}`);
    return m[2] ? { label: `${n}x`, multiple: n, level: budgetLevel(n) } : { label: String(n), amount: n };
  });
  const dup = out.find((b, i) => out.findIndex((o) => o.label === b.label) !== i);
  if (dup) throw new ArgumentError('budgets', `${dup.label} is named twice`);
  return out;
}

// ---------------------------------------------------------------------------------------
// Options and progress.

export interface EvaluateOptions {
  /** Where report.json, report.md, the charts, cache/ and results/ go (created if missing). */
  out: string;
  /**
   * The data: an SY preset (`sy`, `sy-static`, `sy-strong`; default `sy`), or a log file read
   * with `schema`: its users split by a seeded `testFraction`, every method fitted on the
   * training users and run on the test users in the learned simulator fitted on the training
   * users (the Oracle, which needs the true response, is not run there).
   */
  data?: string;
  /** The schema that reads a log (`data`): a schema file or a parsed schema. Required for a log. */
  schema?: string | DataSchema;
  /** Method names (default: every method available on the data). */
  methods?: readonly string[];
  /** Default: 0.1x … 0.9x. */
  budgets?: readonly (Budget | string)[];
  /** A count (seeds 1..N) or the seeds themselves; default 3. Each seed is an SY world, its training users and fresh test users. */
  seeds?: number | readonly number[];
  /** SY users per seed, split into training and test users; default 10,000 (1,500 with quick). A log: at most this many of its users (a seeded subsample), default all. */
  users?: number;
  /** Share of the users that are test users (never seen in training); default 0.2. */
  testFraction?: number;
  /** Rounds per user; default 10 (5 with quick). A log: its rounds. */
  rounds?: number;
  /** A small, fast run: fewer users and rounds, small models trained for few epochs. */
  quick?: boolean;
  /** Native threads (0: every core). */
  threads?: number;
  /** Options for every CODT training (epochs, d_model, …), over the defaults. */
  training?: Partial<TrainOptions>;
  /** λ range of the Oracle's search (default 100). */
  oracleLambdaMax?: number;
  /** Write the charts (SVG and PNG); default true. */
  charts?: boolean;
  /**
   * Write every run's plan to `<out>/plans/<method>__<budget>__seed<seed>__<key>.csv.gz` (the
   * name of its result file; report.json's records name it as `planFile`) in `saco solve`'s
   * plan-file format (src/solve/plan-file.ts: one row per test user and round, the log's user
   * ids): to value the plans outside the simulator (an A/B test, a known response). A result
   * computed before without its plan file is computed again. The plan details cost a searched
   * method one more rollout (solve() replays its final plan to record them; `rollouts` counts
   * it). Default false.
   */
  plans?: boolean;
  onProgress?: (p: EvalProgress) => void;
  /** A notice worth a line (a method skipped, the cache reused). */
  onNotice?: (line: string) => void;
}

export interface EvalProgress {
  phase: 'data' | 'fit' | 'run' | 'report' | 'done';
  method?: string;
  seed?: number;
  budget?: string;
  /** Tasks (fits and runs) done and in all, this call. */
  done: number;
  total: number;
  elapsedSeconds: number;
  /** Seconds left, from the measured time of the tasks done so far; null before there is any. */
  etaSeconds: number | null;
  detail?: string;
}

export interface EvaluateResult {
  report: EvalReport;
  files: ReportFiles;
  /** What this call computed and what it reused from <out>. */
  work: { fits: number; fitsReused: number; runs: number; runsReused: number; seconds: number };
}

/** The run's settings, resolved and checked. */
interface Plan {
  out: string;
  preset: DataPreset;
  /** A log instead of an SY preset. */
  log?: LogSource;
  testFraction: number;
  methods: EvalMethod[];
  budgets: EvalBudget[];
  seeds: number[];
  users: number;
  trainUsers: number;
  testUsers: number;
  rounds: number;
  settings: MethodSettings;
  charts: boolean;
}

/** Where the plan of one (method, budget, seed) goes with `plans`: named as its result file (the same key hash), under plans/. */
function planFileOf(plan: Plan, method: EvalMethod, seed: number, budget: EvalBudget): string {
  return path.join(plan.out, 'plans', path.basename(resultFile(plan, method, seed, budget).file).replace(/\.json$/, '.csv.gz'));
}

/** A stored result that counts as done: with `plans`, only where its plan file is there too. */
function storedResult(plan: Plan, method: EvalMethod, seed: number, budget: EvalBudget): StoredResult | undefined {
  const { file, key } = resultFile(plan, method, seed, budget);
  const stored = readStored(file, key);
  return stored && (!plan.settings.plans || existsSync(planFileOf(plan, method, seed, budget))) ? stored : undefined;
}

/** A log to evaluate on: the file, its schema, and what identifies its contents in cache keys. */
interface LogSource {
  file: string;
  schema: DataSchema;
  /** Size and modification time of the file, and the schema: a changed log or schema is new data. */
  identity: Record<string, unknown>;
  /** At most this many users (a seeded subsample); undefined: all. */
  users?: number;
}

const QUICK_TRAINING: Partial<TrainOptions> = { epochs: 4, dModel: 32, layers: 2, heads: 2, patience: 4, lr: 2e-3, dropout: 0 };

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ArgumentError(name, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** Makes `out` (and cache/, results/, plans/ with `plans`) and proves it writable: before any data is built or model trained. */
function prepareOut(out: string, plans: boolean): void {
  if (typeof out !== 'string' || out.trim() === '') throw new ArgumentError('out', 'must name a folder', 'ARGUMENT_OUTPUT');
  if (existsSync(out) && !statSync(out).isDirectory()) throw new ArgumentError('out', `${out} is a file, not a folder`, 'ARGUMENT_OUTPUT');
  try {
    for (const dir of [out, path.join(out, 'cache'), path.join(out, 'results'), ...(plans ? [path.join(out, 'plans')] : [])]) {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
    }
    const probe = path.join(out, 'results', `.write-probe-${process.pid}`);
    writeFileSync(probe, 'probe');
    rmSync(probe);
  } catch (e) {
    throw new ArgumentError('out', `${out} is not writable: ${(e as Error).message}`, 'ARGUMENT_OUTPUT');
  }
}

function resolvePlan(o: EvaluateOptions): Plan {
  if (typeof o !== 'object' || o === null) throw new ArgumentError('options', 'must be an object with at least `out`');
  const quick = !!o.quick;
  const presetName = o.data ?? 'sy';
  const found = DATA_PRESETS.find((p) => p.name === presetName);
  const log = found && o.schema === undefined ? undefined : logSource(presetName, o);
  const preset = found && !log ? found : { name: path.basename(presetName), description: `the log ${presetName}: the world is the learned simulator fitted on the training users of each seed`, env: {} };
  const budgets = parseBudgets(o.budgets ?? DEFAULT_BUDGETS);
  const seedList = o.seeds === undefined ? [1, 2, 3] : typeof o.seeds === 'number' ? Array.from({ length: checkInt('seeds', o.seeds, 1, 1000) }, (_, i) => i + 1) : [...o.seeds];
  if (seedList.length === 0) throw new ArgumentError('seeds', 'must name at least one seed');
  seedList.forEach((s) => checkInt('seeds', s, 0, 2 ** 31));
  if (new Set(seedList).size !== seedList.length) throw new ArgumentError('seeds', 'a seed is named twice');
  const users = log ? (o.users === undefined ? 0 : checkInt('users', o.users, 20, 1e9)) : checkInt('users', o.users ?? (quick ? 1500 : 10000), 20, 1e7);
  if (log && o.users !== undefined) log.users = users;
  const testFraction = o.testFraction ?? 0.2;
  if (typeof testFraction !== 'number' || !(testFraction > 0 && testFraction < 1)) throw new ArgumentError('testFraction', `must be in (0, 1), got ${String(testFraction)}`);
  const testUsers = Math.max(1, Math.round(users * testFraction));
  const trainUsers = users - testUsers;
  if (!log && trainUsers < 10) throw new ArgumentError('users', `${users} users leave ${trainUsers} to train on: at least 10 are needed`);
  if (log && o.rounds !== undefined) throw new ArgumentError('rounds', "a log's rounds are its own: drop rounds");
  const rounds = log ? 0 : checkInt('rounds', o.rounds ?? (quick ? 5 : SY_DEFAULTS.rounds), 1, 1000);
  const threads = checkInt('threads', o.threads ?? 0, 0, 1024);
  const oracleLambdaMax = o.oracleLambdaMax ?? 100;
  if (typeof oracleLambdaMax !== 'number' || !(oracleLambdaMax > 0) || !Number.isFinite(oracleLambdaMax)) throw new ArgumentError('oracleLambdaMax', `must be a finite number > 0, got ${String(oracleLambdaMax)}`);
  // methods last among the checks that need no data: an unknown name lists the known ones
  const requested = o.methods ? [...o.methods] : undefined;
  const methods = requested ? methodsByName(requested) : [...METHODS];
  if (methods.length === 0) throw new ArgumentError('methods', 'must name at least one method');
  if (log && requested) {
    // a method that cannot run on a log, named explicitly: refused before any work
    for (const m of methods) {
      const why = m.unavailable?.({ kind: 'log' });
      if (why) throw new ArgumentError('methods', `${m.name} cannot run on a log: ${why}`);
    }
  }
  if (o.plans !== undefined && typeof o.plans !== 'boolean') throw new ArgumentError('plans', `must be a boolean, got ${String(o.plans)}`);
  prepareOut(o.out, o.plans === true);
  return {
    out: o.out,
    preset,
    log,
    testFraction,
    methods,
    budgets,
    seeds: seedList,
    users,
    trainUsers,
    testUsers,
    rounds,
    settings: { quick, threads, training: { ...(quick ? QUICK_TRAINING : {}), ...(o.training ?? {}) }, oracleLambdaMax, plans: o.plans === true },
    charts: o.charts ?? true,
  };
}

/** A log named by `data` with its schema: checked to exist (the schema is read and checked against the log later, before any fit). */
function logSource(file: string, o: EvaluateOptions): LogSource {
  if (!existsSync(file) && DATA_PRESET_NAMES.includes(file)) {
    throw new ArgumentError('schema', `"${file}" is an SY preset, which needs no schema; a schema (--schema or the column flags) reads a log file`, 'ARGUMENT_CONFLICT');
  }
  if (!existsSync(file) || !statSync(file).isFile()) throw new ArgumentError('data', `unknown data "${file}": neither an SY preset (${DATA_PRESET_NAMES.join(', ')}) nor a log file`);
  if (o.schema === undefined) throw new ArgumentError('schema', `${file} is a log: name the schema that reads it (--schema schema.json, or the column flags: --action-cols, --reward-col, …)`);
  const schema = typeof o.schema === 'string' ? loadSchemaFile(o.schema) : o.schema;
  const st = statSync(file);
  return { file, schema, identity: { file: path.resolve(file), bytes: st.size, modified: st.mtimeMs, schema: keyHash(schema) } };
}

/** The key of a seed's data: everything that changes the training log or the test users. */
function dataKey(plan: Plan, seed: number): Record<string, unknown> {
  if (plan.log) return { log: plan.log.identity, users: plan.log.users ?? 'all', testFraction: plan.testFraction, seed };
  return { preset: plan.preset.name, env: plan.preset.env, users: plan.users, trainUsers: plan.trainUsers, testUsers: plan.testUsers, rounds: plan.rounds, seed };
}

type Dataset = EvalDataset & { noCouponRevenue: number };

/** What the uniform logging policy spends on the test users (the "1x" budget) and what no coupon earns: one solve of the no-coupon arm. */
async function referenceOf(data: EvalDataset, threads: number): Promise<Dataset> {
  const r = await solve({ users: testUsers(data), env: data.env, rounds: data.rounds, threads, budget: '1x', policy: 'fixed-arm', fixedArm: { arm: envControl(data), keep: 0 } });
  return { ...data, referenceSpend: r.referenceSpend, noCouponRevenue: r.revenue };
}

/** Builds one seed's data: the SY world `seed`, its logged training users and fresh test users. */
async function buildDataset(plan: Plan, seed: number): Promise<Dataset> {
  const env: SyOptions = { ...plan.preset.env, seed, rounds: plan.rounds };
  const config = resolveSyConfig({ ...env, users: plan.trainUsers, threads: plan.settings.threads });
  const log = await generateSy(config);
  const train = buildTrajectories(syLogToInteractionLog(log));
  train.source = `${plan.preset.name} seed ${seed}`;
  const testIds = Uint32Array.from({ length: plan.testUsers }, (_, i) => plan.trainUsers + i);
  return referenceOf({ preset: plan.preset.name, seed, kind: 'sy', env, config, rounds: plan.rounds, train, testIds, referenceSpend: 0 }, plan.settings.threads);
}

/** The options an eval fits its simulator with (beyond seed and threads): the fit's and the cache key's one source. */
const simulatorOptions = (plan: Plan): { rounds?: number } => (plan.settings.quick ? { rounds: 100 } : {});

/** Simulator fit settings of an eval (a cache key part). */
const simulatorConfig = (plan: Plan) => ({ simulator: 'fitSimulator defaults', ...simulatorOptions(plan) });

/**
 * One seed's data from a log: its users (a seeded subsample when `users` is set) split by the
 * seeded test fraction (splitByUser, as `saco train`), the learned simulator fitted on the
 * training users (cached in the run's cache by data, config and seed), the test users starting
 * from their first logged state in it.
 */
async function buildLogDataset(plan: Plan, all: Trajectories, seed: number, notice: (line: string) => void): Promise<Dataset> {
  const source = plan.log as LogSource;
  const users = source.users !== undefined ? sampleUsers(all, source.users, seed + 0x5eed) : all;
  const { train, test } = splitByUser(users, { testFraction: plan.testFraction, seed });
  if (train.users < 10 || test.users < 1) throw new ArgumentError('data', `${users.users} users of ${source.file} leave ${train.users} to train on and ${test.users} to test on: at least 10 and 1 are needed`);
  train.source = `${path.basename(source.file)} seed ${seed} (training users)`;
  const key = { data: dataKey(plan, seed), config: simulatorConfig(plan) };
  const dir = path.join(plan.out, 'cache', `simulator__seed${seed}__${keyHash(key, 10)}`);
  const file = path.join(dir, 'simulator.bin');
  let simulator: Simulator;
  if (existsSync(file)) {
    simulator = readSimulator(file);
    notice(`seed ${seed}: the simulator fitted on the training users is read back from ${file}`);
  } else {
    mkdirSync(dir, { recursive: true });
    writeJsonAtomic(path.join(dir, 'key.json'), key);
    simulator = await fitSimulator(train, { seed, threads: plan.settings.threads, ...simulatorOptions(plan) });
    writeSimulator(simulator, file);
  }
  // the test users' starting states, read once (every solve of every method starts from them)
  const start = simUsers(simulator, test, { round: 0 });
  let roundZero: RoundZeroLog | undefined;
  try {
    roundZero = roundZeroLog(test, train);
  } catch (e) {
    if (!(e instanceof ArgumentError)) throw e;
    roundZero = undefined;
    notice(`seed ${seed}: no off-policy check of the plans (${e.message})`);
  }
  return referenceOf({ preset: plan.preset.name, seed, kind: 'log', env: { kind: 'sim', simulator, seed }, rounds: simulator.rounds, train, testIds: start.userIds, testStates: start.features, testUserIds: test.userIds, referenceSpend: 0, roundZero }, plan.settings.threads);
}

// ---------------------------------------------------------------------------------------
// ETA: each task's time estimated from the tasks of the same kind done so far.

class Clock {
  private readonly start = performance.now();
  private readonly seen = new Map<string, { sum: number; n: number }>();

  constructor(private readonly trainUsers: number, private readonly quick: boolean) {}

  elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  record(kind: 'fit' | 'run', method: string, seconds: number): void {
    for (const key of [`${kind}:${method}`, kind]) {
      const s = this.seen.get(key) ?? { sum: 0, n: 0 };
      s.sum += seconds;
      s.n++;
      this.seen.set(key, s);
    }
  }

  /** The expected seconds of a task: the mean of its method's so far, else its kind's, else a prior. */
  estimate(kind: 'fit' | 'run', method: string, trains: boolean): number {
    const own = this.seen.get(`${kind}:${method}`);
    if (own) return own.sum / own.n;
    const any = this.seen.get(kind);
    if (kind === 'fit') {
      if (!trains) return 0.2;
      return any ? any.sum / any.n : (this.quick ? 5 : 60) * Math.max(this.trainUsers / 8000, 0.05);
    }
    return any ? any.sum / any.n : 1;
  }

  /** Whether any task has been timed (an ETA before that is a guess). */
  timed(): boolean {
    return this.seen.size > 0;
  }
}

interface Task {
  kind: 'fit' | 'run';
  method: EvalMethod;
  seed: number;
  budget?: EvalBudget;
}

/** The result file of one (method, budget, seed) (budget-free methods: one per seed). */
function resultFile(plan: Plan, method: EvalMethod, seed: number, budget: EvalBudget | undefined): { file: string; key: Record<string, unknown> } {
  // a log's results carry the off-policy check since its first version: older ones are computed again
  const key = { data: dataKey(plan, seed), method: method.name, config: method.config?.(plan.settings) ?? null, budget: method.budgetFree ? null : budget?.label, ...(plan.log ? { offPolicyCheck: 1 } : {}) };
  const name = `${method.name}__${method.budgetFree ? 'any' : budget?.label}__seed${seed}__${keyHash(key, 10)}.json`;
  return { file: path.join(plan.out, 'results', name), key };
}

function cacheDirOf(plan: Plan, method: EvalMethod, seed: number): { dir: string; key: Record<string, unknown> } {
  const key = { data: dataKey(plan, seed), method: method.name, config: method.config?.(plan.settings) ?? null };
  return { dir: path.join(plan.out, 'cache', `${method.name}__seed${seed}__${keyHash(key, 10)}`), key };
}

interface StoredResult {
  key: Record<string, unknown>;
  outcome: MethodOutcome;
  seconds: number;
  /** CPU seconds (every thread); absent in results of older runs. */
  cpuSeconds?: number;
  budgetAmount: number | null;
  referenceSpend: number;
}

function readStored(file: string, key: Record<string, unknown>): StoredResult | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as StoredResult;
    return keyHash(r.key) === keyHash(key) ? r : undefined;
  } catch {
    return undefined; // unreadable: computed again
  }
}

/**
 * Runs the comparison and writes the report; see the file comment.
 *
 * @throws {ArgumentError} before any work for an unknown data preset or method (listing the
 *   known ones), a budget ≤ 0 or malformed, bad seeds, users or rounds, or an `out` that cannot be written.
 * @throws {SacoError} from training or solving (a native failure, a diverged training).
 * @example
 * const { report, files } = await evaluate({ out: 'eval-sy', methods: ['saco', 'random', 'oracle'], budgets: ['0.3x', '0.6x'], seeds: 3 });
 * console.log(files.markdown, report.table1);
 */
export async function evaluate(options: EvaluateOptions): Promise<EvaluateResult> {
  const plan = resolvePlan(options);
  const notice = options.onNotice ?? (() => undefined);
  // a log is read (and its schema checked against it) before anything is fitted
  let logged: Trajectories | undefined;
  if (plan.log) {
    const read = await readTrajectories(plan.log.file, { schema: plan.log.schema });
    logged = read.trajectories;
    // what reading found (a control that costs, merged rows' actions) explains numbers in the report
    for (const warning of read.report.warnings) notice(`warning: ${warning}`);
    if (read.report.outcomeInputs.length) notice(outcomeInputsNotice(read.report.outcomeInputs));
    const n = plan.log.users !== undefined ? Math.min(plan.log.users, logged.users) : logged.users;
    plan.users = n;
    plan.testUsers = Math.round(plan.testFraction * n);
    plan.trainUsers = n - plan.testUsers;
    plan.rounds = logged.rounds;
  }
  const progressFn = options.onProgress ?? (() => undefined);
  const clock = new Clock(plan.trainUsers, plan.settings.quick);
  const work = { fits: 0, fitsReused: 0, runs: 0, runsReused: 0, seconds: 0 };
  const records: EvalRecord[] = [];
  const fits: EvalReport['fits'] = [];
  const datasets: EvalReport['datasets'] = [];

  // What is left to do, known before any data is built: the results already on disk are kept,
  // and a method that cannot run on this kind of data (the Oracle on a log) is no task.
  const runnable = plan.methods.filter((m) => !m.unavailable?.({ kind: plan.log ? 'log' : 'sy' }));
  const pending: Task[] = [];
  for (const seed of plan.seeds) {
    for (const method of runnable) {
      const budgets = method.budgetFree ? [plan.budgets[0]] : plan.budgets;
      const missing = budgets.filter((b) => !storedResult(plan, method, seed, b));
      if (missing.length === 0) continue;
      if (method.prepare) pending.push({ kind: 'fit', method, seed });
      for (const b of missing) pending.push({ kind: 'run', method, seed, budget: b });
    }
  }
  const total = pending.length;
  let done = 0;
  // fits whose model is not in the cache yet (the others only read it back: a fraction of a second)
  const trains = new Set(pending.filter((t) => t.kind === 'fit' && !existsSync(path.join(cacheDirOf(plan, t.method, t.seed).dir, 'done.json'))));
  const eta = (): number | null => {
    if (!clock.timed()) return null;
    return pending.slice(done).reduce((s, t) => s + clock.estimate(t.kind, t.method.name, trains.has(t)), 0);
  };
  const report = (p: Omit<EvalProgress, 'done' | 'total' | 'elapsedSeconds' | 'etaSeconds'>) => progressFn({ ...p, done, total, elapsedSeconds: clock.elapsed(), etaSeconds: eta() });
  if (total === 0) notice(`every result is already in ${path.join(plan.out, 'results')}: nothing to compute, writing the report`);
  else if (total < plan.seeds.length * runnable.reduce((s, m) => s + (m.prepare ? 1 : 0) + (m.budgetFree ? 1 : plan.budgets.length), 0)) notice(`resuming: results already in ${plan.out} are kept, ${total} task(s) left`);

  for (const seed of plan.seeds) {
    report({ phase: 'data', seed, detail: logged ? `${plan.preset.name}, seed ${seed}: ${plan.trainUsers} training users (the simulator is fitted on them), ${plan.testUsers} test users × ${plan.rounds} rounds` : `SY world ${seed}: ${plan.trainUsers} training users, ${plan.testUsers} test users × ${plan.rounds} rounds` });
    const data = logged ? await buildLogDataset(plan, logged, seed, notice) : await buildDataset(plan, seed);
    datasets.push({ seed, referenceSpend: data.referenceSpend, noCouponRevenue: data.noCouponRevenue, trainUsers: plan.trainUsers, testUsers: plan.testUsers });
    for (const method of plan.methods) {
      const why = method.unavailable?.(data);
      if (why) {
        if (options.methods) throw new ArgumentError('methods', `${method.name} cannot run on ${plan.preset.name}: ${why}`);
        notice(`${method.name} skipped: ${why}`);
        continue;
      }
      const budgets = method.budgetFree ? [plan.budgets[0]] : plan.budgets;
      const todo = budgets.map((b) => ({ b, ...resultFile(plan, method, seed, b), stored: storedResult(plan, method, seed, b) }));
      let prepared: Prepared | undefined;
      try {
        if (method.prepare && todo.some((x) => !x.stored)) {
          const cache = cacheDirOf(plan, method, seed);
          mkdirSync(cache.dir, { recursive: true });
          writeJsonAtomic(path.join(cache.dir, 'key.json'), cache.key);
          report({ phase: 'fit', method: method.name, seed });
          const t0 = performance.now();
          const cpu0 = process.cpuUsage();
          prepared = await method.prepare({
            data,
            settings: plan.settings,
            cache: { dir: cache.dir, file: (name) => path.join(cache.dir, name) },
            progress: (detail) => report({ phase: 'fit', method: method.name, seed, detail }),
          });
          const seconds = (performance.now() - t0) / 1000;
          const cpuSeconds = cpuSince(cpu0);
          // done.json keeps the time of the fit itself (a later read from the cache leaves it as it is)
          if (prepared.fitted || !existsSync(path.join(cache.dir, 'done.json'))) writeJsonAtomic(path.join(cache.dir, 'done.json'), { seconds, cpuSeconds, info: prepared.info ?? null });
          if (prepared.fitted) clock.record('fit', method.name, seconds);
          if (prepared.fitted) work.fits++;
          else work.fitsReused++;
          fits.push({ method: method.name, seed, fitted: prepared.fitted, ...(prepared.fitted ? { seconds, cpuSeconds } : fitTimeOf(cache.dir, seconds)), info: prepared.info ?? null });
          done++;
        }
        for (const x of todo) {
          let stored = x.stored;
          if (!stored) {
            report({ phase: 'run', method: method.name, seed, budget: method.budgetFree ? undefined : x.b.label });
            const budgetAmount = x.b.multiple !== undefined ? resolveBudget(`${x.b.multiple}x`, data.referenceSpend) : (x.b.amount as number);
            const t0 = performance.now();
            const cpu0 = process.cpuUsage();
            const { solved, ...outcome } = await method.run(
              { data, settings: plan.settings, budget: budgetAmount, progress: (detail) => report({ phase: 'run', method: method.name, seed, budget: x.b.label, detail }) },
              prepared?.artifact,
            );
            const seconds = (performance.now() - t0) / 1000;
            const cpuSeconds = cpuSince(cpu0);
            if (plan.settings.plans) {
              if (!solved) throw new SacoError('EVAL_NO_PLAN', `${method.name} returned no plan to write (its run must pass solveBase's planDetails to solve())`);
              await writePlan(solved, { userIds: data.testUserIds ?? data.testIds, actionEncodings: data.train.actionEncodings }, planFileOf(plan, method, seed, x.b));
            }
            stored = { key: x.key, outcome, seconds, cpuSeconds, budgetAmount: method.budgetFree ? null : budgetAmount, referenceSpend: data.referenceSpend };
            writeJsonAtomic(x.file, stored);
            clock.record('run', method.name, seconds);
            work.runs++;
            done++;
          } else work.runsReused++;
          const planFile = plan.settings.plans ? path.relative(plan.out, planFileOf(plan, method, seed, x.b)) : null;
          for (const b of method.budgetFree ? plan.budgets : [x.b]) records.push(recordOf(method, seed, b, stored, data, planFile));
        }
        if (method.prepare && !fits.some((f) => f.method === method.name && f.seed === seed)) {
          // every result was there: the fit's time is the one recorded when it ran
          const dir = cacheDirOf(plan, method, seed).dir;
          if (existsSync(path.join(dir, 'done.json'))) fits.push({ method: method.name, seed, fitted: false, ...fitTimeOf(dir, 0), info: null });
        }
      } finally {
        prepared?.release?.();
      }
    }
  }
  report({ phase: 'report' });
  const rep = buildReport({
    data: {
      preset: plan.preset.name,
      description: plan.preset.description,
      kind: plan.log ? 'log' : 'sy',
      world: plan.log
        ? `the learned simulator (fitSimulator) fitted on each seed's training users of ${plan.preset.name}; the test users start from their first logged state`
        : "SY's ground truth",
      env: plan.log
        ? { kind: 'sim', log: plan.log.file, users: plan.users, testFraction: plan.testFraction, simulator: simulatorConfig(plan) }
        : { ...resolveSyConfig({ ...plan.preset.env, rounds: plan.rounds }), seed: undefined, users: undefined, threads: undefined },
      users: plan.users,
      trainUsers: plan.trainUsers,
      testUsers: plan.testUsers,
      rounds: plan.rounds,
      unavailable: plan.methods.flatMap((m) => {
        const why = m.unavailable?.({ kind: plan.log ? 'log' : 'sy' });
        return why ? [{ method: m.name, label: m.label, why }] : [];
      }),
    },
    budgets: plan.budgets,
    seeds: plan.seeds,
    methods: plan.methods.filter((m) => records.some((r) => r.method === m.name)),
    records,
    datasets,
    fits,
    settings: { quick: plan.settings.quick, training: plan.settings.training, oracleLambdaMax: plan.settings.oracleLambdaMax, plans: plan.settings.plans ? 'plans/<method>__<budget>__seed<seed>__<key>.csv.gz' : null },
    seconds: clock.elapsed(),
  });
  const files = await writeReport(rep, plan.out, { charts: plan.charts });
  work.seconds = clock.elapsed();
  progressFn({ phase: 'done', done, total, elapsedSeconds: work.seconds, etaSeconds: 0 });
  return { report: rep, files, work };
}

/** CPU seconds of this process (every thread, user + system) since `start`. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}

/** The wall and CPU seconds the fit of a cache folder took when it ran (done.json), else `fallback` and null. */
function fitTimeOf(dir: string, fallback: number): { seconds: number; cpuSeconds: number | null } {
  try {
    const d = JSON.parse(readFileSync(path.join(dir, 'done.json'), 'utf8')) as { seconds?: unknown; cpuSeconds?: unknown };
    const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    return { seconds: finite(d.seconds) ? d.seconds : fallback, cpuSeconds: finite(d.cpuSeconds) ? d.cpuSeconds : null };
  } catch {
    return { seconds: fallback, cpuSeconds: null };
  }
}

function recordOf(method: EvalMethod, seed: number, budget: EvalBudget, stored: StoredResult, data: EvalDataset & { noCouponRevenue: number }, planFile: string | null): EvalRecord {
  const o = stored.outcome;
  const budgetAmount = budget.multiple !== undefined ? budget.multiple * data.referenceSpend : (budget.amount as number);
  return {
    method: method.name,
    seed,
    budget: budget.label,
    budgetAmount,
    referenceSpend: data.referenceSpend,
    revenue: o.revenue,
    cost: o.cost,
    roi: o.cost > 0 ? o.revenue / o.cost : null,
    baRate: o.cost / budgetAmount,
    incrementalRevenue: o.revenue - data.noCouponRevenue,
    incrementalRoi: o.cost > 0 ? (o.revenue - data.noCouponRevenue) / o.cost : null,
    lambda: o.lambda,
    coupons: o.coupons,
    blocked: o.blocked,
    rollouts: o.rollouts,
    budgetNotBinding: o.budgetNotBinding,
    needsMoreThanLambdaMax: o.needsMoreThanLambdaMax,
    trace: o.trace,
    extra: o.extra ?? null,
    offPolicy: o.offPolicy ?? null,
    seconds: stored.seconds,
    cpuSeconds: stored.cpuSeconds ?? null,
    planFile,
  };
}
