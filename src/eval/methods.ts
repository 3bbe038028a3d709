/**
 * The methods `saco eval` compares, one entry each: how a method is prepared (trained or
 * fitted on the training users, cached on disk by the runner's key) and how it runs at one
 * budget on the test users (a `solve()` with its policy and fitted artifact, or a rollout of
 * its own). The runner (run.ts) and the report (report.ts) know nothing else about a method.
 *
 * Adding a baseline is one entry in METHODS below (see the slot for forest, bandit, cmdp25/50/75
 * and dfcl): `policyMethod({ name, label, policy, fit, solveOptions })` for a policy of the
 * policy registry (src/policy/registry.ts) run through solve()'s λ search, or an `EvalMethod`
 * written out for anything else.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { ArgumentError, SacoError } from '../errors.js';
import type { SyConfig } from '../data/synth.js';
import type { Trajectories } from '../data/trajectories.js';
import { CODT_DEFAULTS, type CodtVariant } from '../model/config.js';
import { readOnnx, writeOnnx } from '../model/onnx.js';
import { LAMBDA_MARGIN, TRAIN_DEFAULTS, type TrainOptions } from '../model/train.js';
import { EXPECTED_OUTCOME_MODEL } from '../policy/train.js';
import { loadNativeModel, type NativeModel } from '../native/index.js';
import { solve, type EnvChoice, type SolveOptions, type SolveResult } from '../solve/index.js';
import type { PlanSource } from '../solve/plan-file.js';
import { chooseKeep, envArm, envControl } from './fixed-arm.js';
import { writeJsonAtomic } from './files.js';
import { writeFileAtomic } from '../data/atomic.js';
import { roundZeroCheck, type RoundZeroCheck, type RoundZeroLog } from './round-zero.js';
import { scoredMethods } from './scored-methods.js';
import { fitForest, loadForest, type CausalForest } from '../policy/forest.js';
import { fitBanditPrior, type BanditPrior } from '../policy/bandit.js';

/** What a method is in the comparison. */
export type MethodRole =
  /** SACO itself: the method every baseline is compared with. */
  | 'saco'
  /** A variant of SACO with a part removed (paper Fig. 5); compared, but not a baseline. */
  | 'ablation'
  /** A method SACO must beat. */
  | 'baseline'
  /** An upper reference that knows what no method can (the Oracle): never a baseline to beat. */
  | 'reference';

/**
 * One seed's data: the training users (what methods learn from) and the test users (where they
 * are compared). SY: a world, its uniformly logged training users and fresh test users. A log:
 * its users split by a seeded test fraction, the world the learned simulator fitted on the
 * training users, the test users starting from their first logged state.
 */
export interface EvalDataset {
  /** The SY preset name (`sy`, `sy-static`, `sy-strong`), or the log's file name. */
  preset: string;
  seed: number;
  kind: 'sy' | 'log';
  /** The environment, as solve() takes it: SY's options ({ seed, rounds, sequential, … }) or the simulator ({ kind: 'sim', simulator, seed }). */
  env: EnvChoice;
  /** SY: its options, every field resolved; absent for a log. */
  config?: SyConfig;
  rounds: number;
  /** The logged trajectories of the training users. */
  train: Trajectories;
  /** The test users' ids: SY, fresh users (ids after the training users'), features drawn from the env seed by id; a log, the simulator's ids of its test users. */
  testIds: Uint32Array;
  /** A log: the test users' starting states in the simulator [users × state], read from their trajectories once (simUsers). */
  testStates?: Float64Array;
  /** A log: the test users' ids in the log, in the order of `testIds` (plan files name them); SY: absent (the ids are `testIds`). */
  testUserIds?: readonly string[];
  /** What the uniform logging policy spends on the test users: the "1x" budget. */
  referenceSpend: number;
  /** A log: the test users' logged round 0, which every plan's round 0 is checked against (src/eval/round-zero.ts). */
  roundZero?: RoundZeroLog;
}

/** Settings every method may read (the runner's options). */
export interface MethodSettings {
  /** A small, fast run (tests, smoke checks): methods may train smaller models. */
  quick: boolean;
  /** Native threads (0: every core). */
  threads: number;
  /** Options for every CODT training (merged over the method's own). */
  training: Partial<TrainOptions>;
  /** The λ range of the Oracle's search. */
  oracleLambdaMax: number;
  /** Keep every run's plan (solve() with plan details) for the runner to write as a plan file; default false. */
  plans?: boolean;
}

/** Where a method keeps what it fitted: a folder of the run's cache, keyed by data, config and seed. */
export interface MethodCache {
  dir: string;
  file(name: string): string;
}

export interface PrepareContext {
  data: EvalDataset;
  settings: MethodSettings;
  cache: MethodCache;
  /** A line of progress ("epoch 3/30 loss 1.23"). */
  progress(detail: string): void;
}

export interface Prepared<A = unknown> {
  artifact: A;
  /** Whether the fit ran in this call (false: read back from the cache). */
  fitted: boolean;
  /** What the report says about the fit (epochs, validation loss, the chosen arm, …). */
  info?: Record<string, unknown>;
  /** Frees what the artifact holds (a native model). */
  release?(): void;
}

export interface RunContext {
  data: EvalDataset;
  settings: MethodSettings;
  /** The budget in currency. */
  budget: number;
  progress(detail: string): void;
}

/** What a method did at one budget on the test users. */
export interface MethodOutcome {
  revenue: number;
  cost: number;
  /** λ* of the search; null for a method without λ. */
  lambda: number | null;
  coupons: number;
  blocked: number;
  rollouts: number;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  /** The λ search's probes: natural (unbudgeted) revenue and spend at each λ. */
  trace: Array<{ lambda: number; revenue: number; cost: number }>;
  /** Method-specific numbers for report.json (the keep probability of the thinned arm, …). */
  extra?: Record<string, number | string | boolean | null>;
  /** A log: the plan's round 0 scored on the test users' logged round 0, without the simulator. */
  offPolicy?: RoundZeroCheck;
  /** With `settings.plans`: the solve's plan and its details; the runner writes it as a plan file and never stores it with the result. */
  solved?: PlanSource;
}


export interface EvalMethod<A = unknown> {
  /** The name on the command line and in report.json. */
  readonly name: string;
  /** The name in tables and charts ("SACO", "Best arm"). */
  readonly label: string;
  readonly role: MethodRole;
  /** One line for --help and the report. */
  readonly description: string;
  /** Whether it runs a λ search (its C(λ) goes into the chart). */
  readonly lambdaSearched: boolean;
  /** Whether what it does does not depend on the budget (no coupon): run once per seed, reported at every budget. */
  readonly budgetFree?: boolean;
  /** Why it cannot run on this kind of data (undefined: it can). */
  unavailable?(data: Pick<EvalDataset, 'kind'>): string | undefined;
  /** What its fitted artifact depends on besides the data and seed (a cache key part). */
  config?(settings: MethodSettings): unknown;
  /** Trains or fits on data.train, reading and writing `cache`; absent: nothing to fit. */
  prepare?(ctx: PrepareContext): Promise<Prepared<A>>;
  run(ctx: RunContext, artifact: A | undefined): Promise<MethodOutcome>;
}

/** A method's outcome from a solve() result (on a log, with the off-policy check of its round 0). */
export function outcomeOf(r: SolveResult, ctx: Pick<RunContext, 'data'>, extra?: MethodOutcome['extra']): MethodOutcome {
  const roundZero = ctx.data.roundZero;
  return {
    revenue: r.revenue,
    cost: r.cost,
    lambda: r.method === 'none' ? null : r.lambda,
    coupons: r.coupons,
    blocked: r.blocked,
    rollouts: r.rollouts,
    budgetNotBinding: r.budgetNotBinding,
    needsMoreThanLambdaMax: r.needsMoreThanLambdaMax,
    trace: r.trace,
    extra,
    ...(roundZero ? { offPolicy: roundZeroCheck(roundZero, r.plan, r.rounds) } : {}),
    ...(r.planDetails ? { solved: { plan: r.plan, planDetails: r.planDetails, users: r.users, rounds: r.rounds, lambda: r.lambda, method: r.method } } : {}),
  };
}

/** The test users as solve() takes them: ids, with their starting states in a log's simulator. */
export function testUsers(data: Pick<EvalDataset, 'testIds' | 'testStates'>): { ids: Uint32Array; features?: Float64Array } {
  return data.testStates ? { ids: data.testIds, features: data.testStates } : { ids: data.testIds };
}

/** The solve() options every method shares: the test users, the budget in currency, the environment, plan details when the plans are kept. */
export function solveBase(ctx: RunContext): Pick<SolveOptions, 'users' | 'budget' | 'env' | 'rounds' | 'threads' | 'planDetails' | 'onProgress'> {
  return {
    users: testUsers(ctx.data),
    budget: ctx.budget,
    env: ctx.data.env,
    rounds: ctx.data.rounds,
    threads: ctx.settings.threads,
    planDetails: ctx.settings.plans === true,
    onProgress: (p) => {
      if (p.phase === 'search' && p.lambda !== undefined) ctx.progress(`λ ${p.lambda.toPrecision(3)}, spend ${Math.round(p.cost ?? 0)} / ${Math.round(ctx.budget)}`);
    },
  };
}

// ---------------------------------------------------------------------------------------
// A policy of the policy registry run through solve(): Oracle, Random, and the baselines to come.

export interface PolicyMethodSpec<A> {
  name: string;
  label: string;
  role?: MethodRole;
  description: string;
  /** The policy registry's name (src/policy/registry.ts). */
  policy: string;
  /** Whether solve() searches λ for it (the policy definition's `searched`). */
  lambdaSearched: boolean;
  unavailable?: EvalMethod<A>['unavailable'];
  config?: EvalMethod<A>['config'];
  /** Fits the artifact the policy needs (a forest, a prior, a Q function), reading and writing ctx.cache. */
  fit?: (ctx: PrepareContext) => Promise<Prepared<A>>;
  /** What solve() needs besides the shared options: the fitted artifact, a λ range. */
  solveOptions?: (artifact: A | undefined, ctx: RunContext) => Partial<SolveOptions>;
}

/** An EvalMethod that runs `policy` through solve() at each budget (with its λ search where it has one). */
export function policyMethod<A = unknown>(spec: PolicyMethodSpec<A>): EvalMethod<A> {
  return {
    name: spec.name,
    label: spec.label,
    role: spec.role ?? 'baseline',
    description: spec.description,
    lambdaSearched: spec.lambdaSearched,
    unavailable: spec.unavailable,
    config: spec.config,
    prepare: spec.fit,
    async run(ctx, artifact) {
      const r = await solve({ ...solveBase(ctx), policy: spec.policy as SolveOptions['policy'], ...(spec.solveOptions?.(artifact, ctx) ?? {}) });
      return outcomeOf(r, ctx);
    },
  };
}

const syOnly = (data: Pick<EvalDataset, 'kind'>): string | undefined => (data.kind === 'sy' ? undefined : 'knows the true response: SY only');

// ---------------------------------------------------------------------------------------
// SACO and its ablations: a CODT trained on the training users, cached as its .onnx file.

interface FitRecord {
  seconds: number;
  epochs: number;
  bestValLoss: number;
  lambdaMax: number;
  stoppedEarly: boolean;
  trainer: string;
  variant: string;
}

/** What a CODT method's training takes from the library's defaults (part of its cache key). */
const CODT_RECIPE_DEFAULTS = { train: TRAIN_DEFAULTS, model: CODT_DEFAULTS, lambdaMargin: LAMBDA_MARGIN, outcome: EXPECTED_OUTCOME_MODEL };

/** A CODT method: `variant` (undefined: the library's default recipe) trained with `trainCodt` from saco's main entry. */
export function codtMethod(spec: { name: string; label: string; role: MethodRole; description: string; variant?: CodtVariant; training?: Partial<TrainOptions> }): EvalMethod<NativeModel> {
  return {
    name: spec.name,
    label: spec.label,
    role: spec.role,
    description: spec.description,
    lambdaSearched: true,
    // the library's defaults too, so a model cached by an older saco with other defaults is trained again
    config: (settings) => ({ variant: spec.variant ?? 'default', ...spec.training, ...settings.training, defaults: CODT_RECIPE_DEFAULTS }),
    async prepare(ctx) {
      const file = ctx.cache.file('model.onnx');
      const fitFile = ctx.cache.file('fit.json');
      if (existsSync(file) && existsSync(fitFile)) {
        const handle = loadNativeModel(readOnnx(file));
        return { artifact: handle, fitted: false, info: JSON.parse(readFileSync(fitFile, 'utf8')) as Record<string, unknown>, release: () => handle.unload() };
      }
      // the main entry's trainCodt: the default recipe (with its outcome model) wherever it lives;
      // imported on first use (the main entry re-exports this folder: no import cycle at load)
      const { trainCodt } = (await import('../index.js')) as { trainCodt: (t: Trajectories, o: TrainOptions) => Promise<import('../model/train.js').TrainResult> };
      const checkpoint = ctx.cache.file('train.ckpt');
      const t0 = performance.now();
      const options: TrainOptions = {
        seed: ctx.data.seed,
        threads: ctx.settings.threads,
        ...(spec.variant ? { variant: spec.variant } : {}),
        ...spec.training,
        ...ctx.settings.training,
        checkpoint,
        resume: existsSync(checkpoint),
        source: `${ctx.data.preset} seed ${ctx.data.seed}`,
        onProgress: (p) => ctx.progress(`epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}, loss ${p.loss.toFixed(3)}`),
      };
      let result;
      try {
        result = await trainCodt(ctx.data.train, options);
      } catch (e) {
        // a checkpoint of an older run of this key that cannot be resumed: train from the start
        if (!options.resume || !(e instanceof SacoError) || e.code.indexOf('CHECKPOINT') < 0) throw e;
        rmSync(checkpoint, { force: true });
        result = await trainCodt(ctx.data.train, { ...options, resume: false });
      }
      writeOnnx(result.model, file);
      const m = result.model.meta;
      const info: FitRecord = {
        seconds: (performance.now() - t0) / 1000,
        epochs: m.training.epochs,
        bestValLoss: m.training.bestValLoss,
        lambdaMax: m.normalization.lambdaMax,
        stoppedEarly: result.stoppedEarly,
        trainer: result.trainer.engine,
        variant: m.config.variant,
      };
      writeJsonAtomic(fitFile, info);
      rmSync(checkpoint, { force: true });
      const handle = loadNativeModel(result.model);
      return { artifact: handle, fitted: true, info: info as unknown as Record<string, unknown>, release: () => handle.unload() };
    },
    async run(ctx, model) {
      if (!model) throw new ArgumentError('model', `${spec.name}: not trained`);
      return outcomeOf(await solve({ ...solveBase(ctx), policy: 'codt', model }), ctx);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Best single arm, thinned at random to the budget; no coupon.

interface ArmStats {
  arm: number[];
  label: string;
  rows: number;
  meanReward: number;
  meanCost: number;
}

interface BestArm {
  arm: number[];
  label: string;
  arms: ArmStats[];
}

/** Mean logged reward and cost of every action (tuple of indices) in the training trajectories. */
export function armStatistics(train: Trajectories): ArmStats[] {
  const A = train.actionDims;
  const byKey = new Map<string, ArmStats & { sumR: number; sumC: number }>();
  for (let i = 0; i < train.users; i++) {
    for (let t = 0; t < train.rounds; t++) {
      if (!train.mask[i * train.rounds + t]) continue;
      const arm = Array.from(train.actions.subarray((i * train.rounds + t) * A, (i * train.rounds + t + 1) * A));
      const key = arm.join(',');
      let s = byKey.get(key);
      if (!s) {
        const label = arm.map((a, j) => `${train.actionEncodings[j].column}=${train.actionEncodings[j].values[a]}`).join(' + ');
        s = { arm, label, rows: 0, meanReward: 0, meanCost: 0, sumR: 0, sumC: 0 };
        byKey.set(key, s);
      }
      s.rows++;
      s.sumR += train.rewards[i * train.rounds + t];
      s.sumC += train.costs[i * train.rounds + t];
    }
  }
  return [...byKey.values()]
    .map(({ sumR, sumC, ...s }) => ({ ...s, meanReward: sumR / s.rows, meanCost: sumC / s.rows }))
    .sort((a, b) => a.arm.join(',').localeCompare(b.arm.join(','), 'en', { numeric: true }));
}

/** The arm with the highest mean logged revenue (ties: the cheaper one). */
export function bestArmOf(train: Trajectories): BestArm {
  const arms = armStatistics(train);
  if (arms.length === 0) throw new ArgumentError('train', 'has no logged rounds');
  const best = arms.reduce((b, a) => (a.meanReward > b.meanReward || (a.meanReward === b.meanReward && a.meanCost < b.meanCost) ? a : b));
  return { arm: best.arm, label: best.label, arms };
}

/** The seed of a method's own coins in a dataset (apart from the environment's streams by THINNING_STREAM). */
const coinSeed = (data: EvalDataset) => data.seed;

export const bestArmMethod: EvalMethod<BestArm> = {
  name: 'best-arm',
  label: 'Best arm',
  role: 'baseline',
  description: 'every user gets the arm with the highest mean revenue in the training log, each coupon kept with probability p (seeded) so that the expected spend meets the budget',
  lambdaSearched: false,
  config: () => ({ rule: 'max mean logged revenue; p from expected spend' }),
  async prepare(ctx) {
    const file = ctx.cache.file('best-arm.json');
    if (existsSync(file)) return { artifact: JSON.parse(readFileSync(file, 'utf8')) as BestArm, fitted: false };
    const best = bestArmOf(ctx.data.train);
    writeJsonAtomic(file, best);
    return { artifact: best, fitted: true, info: { arm: best.label } };
  },
  async run(ctx, best) {
    if (!best) throw new ArgumentError('best-arm', 'not fitted');
    const base = solveBase(ctx);
    const arm = envArm(ctx.data, best.arm);
    const choice = await chooseKeep({ ...base, onProgress: undefined }, { arm, seed: coinSeed(ctx.data) }, ctx.budget);
    const r = await solve({ ...base, policy: 'fixed-arm', fixedArm: { arm, keep: choice.keep, seed: coinSeed(ctx.data) } });
    return {
      ...outcomeOf(r, ctx, { arm: best.label, keep: choice.keep, expectedSpend: choice.expectedSpend, expectedSpendAll: choice.expectedSpendAll }),
      rollouts: choice.rollouts + 1,
      budgetNotBinding: choice.budgetNotBinding,
    };
  },
};

/**
 * No coupon: the control action for every user and round, in the same environment (the
 * fixed-arm policy with keep 0). It is what the Oracle does at λ → ∞ (no coupon has a positive
 * E[r] − λ·E[c]), but that needs no search; a budget of 0 is not one (solve() refuses budgets
 * ≤ 0). It is the base of every incremental figure; it does not depend on the budget, so it
 * runs once per seed.
 */
export const noCouponMethod: EvalMethod = {
  name: 'no-coupon',
  label: 'No coupon',
  role: 'baseline',
  description: 'the control action for every user and round (the base of incremental revenue)',
  lambdaSearched: false,
  budgetFree: true,
  async run(ctx) {
    const r = await solve({ ...solveBase(ctx), policy: 'fixed-arm', fixedArm: { arm: envControl(ctx.data), keep: 0 } });
    return { ...outcomeOf(r, ctx), budgetNotBinding: true };
  },
};

// ---------------------------------------------------------------------------------------
// The registry.

export const METHODS: readonly EvalMethod<any>[] = [
  codtMethod({ name: 'saco', label: 'SACO', role: 'saco', description: "the trained CODT (the library's default recipe), λ searched" }),
  // --- baselines: one entry each (issue 14) --------------------------------------------
  policyMethod<CausalForest>({
    name: 'forest',
    label: 'Forest',
    description: 'multi-arm honest causal forest (uplift in reward and cost per arm from state and history), argmax uplift_r − λ·uplift_c, λ searched',
    policy: 'forest',
    lambdaSearched: true,
    config: (settings) => ({ trees: settings.quick ? 20 : 100 }),
    fit: async (ctx) => {
      const file = ctx.cache.file('forest.bin');
      if (existsSync(file)) {
        const forest = await loadForest(new Uint8Array(readFileSync(file)));
        return { artifact: forest, fitted: false, info: { trees: forest.info.trees }, release: () => forest.unload() };
      }
      ctx.progress('growing the causal forest');
      const t0 = performance.now();
      const forest = await fitForest(ctx.data.train, { seed: ctx.data.seed, trees: ctx.settings.quick ? 20 : 100, threads: ctx.settings.threads });
      writeFileAtomic(file, await forest.save());
      return { artifact: forest, fitted: true, info: { trees: forest.info.trees, seconds: (performance.now() - t0) / 1000 }, release: () => forest.unload() };
    },
    solveOptions: (forest, ctx) => ({ forest, lambdaMax: ctx.settings.oracleLambdaMax }),
  }),
  policyMethod<BanditPrior>({
    name: 'bandit',
    label: 'Bandit',
    description: 'batched Thompson sampling over arms (non-contextual) on r − λ·c, prior from the training log, posterior updated after each round, λ searched',
    policy: 'bandit',
    lambdaSearched: true,
    fit: async (ctx) => {
      const file = ctx.cache.file('prior.json');
      if (existsSync(file)) return { artifact: JSON.parse(readFileSync(file, 'utf8')) as BanditPrior, fitted: false };
      const prior = fitBanditPrior(ctx.data.train, { seed: ctx.data.seed });
      writeJsonAtomic(file, prior);
      return { artifact: prior, fitted: true, info: { arms: prior.arms.length, weight: prior.weight } };
    },
    solveOptions: (bandit, ctx) => ({ bandit, lambdaMax: ctx.settings.oracleLambdaMax }),
  }),
  // CMDP25/50/75 and DFCL: greedy in XGBoost scores, the native scored policies (src/eval/scored-methods.ts)
  ...scoredMethods,
  policyMethod({ name: 'random', label: 'Random', description: 'the uniform logging policy, cut by the budget', policy: 'random', lambdaSearched: false }),
  bestArmMethod,
  noCouponMethod,
  // --- the upper reference -------------------------------------------------------------
  policyMethod({
    name: 'oracle',
    label: 'Oracle',
    role: 'reference',
    description: 'knows the true expected response (SY only; unavailable on a log): myopic argmax E[r] − λ·E[c], λ searched; an upper reference, not a baseline',
    policy: 'oracle',
    lambdaSearched: true,
    unavailable: syOnly,
    config: (settings) => ({ lambdaMax: settings.oracleLambdaMax }),
    solveOptions: (_a, ctx) => ({ lambdaMax: ctx.settings.oracleLambdaMax }),
  }),
  // --- ablations (paper Fig. 5) ----------------------------------------------------------
  codtMethod({ name: 'no-constraint', label: 'No-constraint', role: 'ablation', description: 'SACO without λ and the cost-to-go token', variant: 'no-constraint' }),
  codtMethod({ name: 'no-rtg', label: 'No-RTG', role: 'ablation', description: 'SACO without the return-to-go token', variant: 'no-rtg' }),
  codtMethod({ name: 'literal', label: 'Literal', role: 'ablation', description: "the paper's literal recipe: plain cross-entropy, λ ~ U(0, 1)", variant: 'literal' }),
];

/** Baselines of the issue not built yet: named in the unknown-method error instead of "unknown". */
export const PLANNED_METHODS: readonly string[] = ['forest', 'bandit', 'cmdp25', 'cmdp50', 'cmdp75', 'dfcl'].filter((n) => !METHODS.some((m) => m.name === n));

export const METHOD_NAMES: readonly string[] = METHODS.map((m) => m.name);

/**
 * The methods by name, in registry order.
 * @throws {ArgumentError} naming the known methods when a name is not one of them (and saying so when it is planned but not built yet).
 */
export function methodsByName(names: readonly string[]): EvalMethod[] {
  const unknown = names.filter((n) => !METHOD_NAMES.includes(n));
  if (unknown.length) {
    const planned = unknown.filter((n) => PLANNED_METHODS.includes(n));
    const why = planned.length ? ` (${planned.join(', ')}: not built yet)` : '';
    throw new ArgumentError('methods', `unknown method${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}${why}; known: ${METHOD_NAMES.join(', ')}`);
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ArgumentError('methods', `"${dup}" is named twice`);
  return METHODS.filter((m) => names.includes(m.name));
}
