/**
 * solve(): plan a campaign. Finds the dual price λ* whose simulated spend meets the budget
 * (bisection by default, or the paper's Algorithm 2 with SLSQP) and returns the per-user,
 * per-round coupon plan with revenue, cost, ROI and BARate. decide(): one user's coupon now.
 *
 * The environment is SY's ground truth (`env: { kind: 'sy', … }`) or the learned simulator of
 * a log (`env: { kind: 'sim', simulator }`, src/sim/simulator.ts), both behind the same native
 * Environment seam: the same λ search, budget rule and policies run in either. Policies come from
 * src/policy/registry.ts. Every native call of solve() is asynchronous (the event loop stays free).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { ArgumentError, SacoError } from '../errors.js';
import { resolveSyConfig, type SyConfig, type SyOptions } from '../data/synth.js';
import type { Trajectories } from '../data/trajectories.js';
import type { CodtModel } from '../model/artifact.js';
import { actionWidth, emptyForwardInputs } from '../model/config.js';
import { readOnnx } from '../model/onnx.js';
import type { ForwardInputs } from '../model/types.js';
import { OrtPool, type OrtSession } from '../infer/ort.js';
import { tsBisection, tsRollout } from './ts-rollout.js';
import { targetsAt } from '../model/stats.js';
import { greedyRow, softmaxPerDimension } from '../model/greedy.js';
import { checkStatesInRange, stateRowInRange, validateModel } from '../model/validate.js';
import { loadNativeModel, nativeDecisionCache, nativeForward, nativeForwardSync, nativeRollout, nativeSearchLambda, type DecisionCacheStats, type NativeModel, type NativePlanDetails, type NativeRolloutResult, type NativeRolloutSpec } from '../native/index.js';
import { policyByName, type PolicyName } from '../policy/registry.js';
import type { CausalForest } from '../policy/forest.js';
import type { BanditPrior } from '../policy/bandit.js';
import type { DfclCorrection } from '../policy/dfcl.js';
import { nativeScoredSpec, type ScoredArtifact } from '../policy/scored.js';
import { checkFixedArm, type FixedArm } from '../policy/fixed-arm.js';
import { historyWidth } from '../sim/features.js';
import { Simulator, simUsers } from '../sim/simulator.js';

export type { PolicyName } from '../policy/registry.js';
export type SearchMethodName = 'bisection' | 'slsqp';

/** The learned offline simulator (src/sim/simulator.ts) as the world a plan is simulated in. */
export interface SimEnvChoice {
  kind: 'sim';
  simulator: Simulator;
  /** Keys the simulator's draws (and the Random policy's), with the user id and round. Default 1. */
  seed?: number;
  /** The round users start at: their state then, and their history up to it (trajectories as `users`). Default 0. */
  startRound?: number;
  /** Validation on SY only: the Oracle reads SY's true expectations of the simulated states. */
  expectedFrom?: SyOptions;
}

/** The world a plan is simulated in: SY's ground truth (its options), or the learned simulator. */
export type EnvChoice = (SyOptions & { kind?: 'sy' }) | SimEnvChoice;

/** The environment of a rollout spec, its rounds, and how users are read for it. */
interface World {
  native: NativeRolloutSpec['env'];
  rounds: number;
  sy?: SyConfig;
  sim?: SimEnvChoice;
}

function resolveWorld(choice: EnvChoice | undefined): World {
  if (choice?.kind === 'sim') {
    const sim = choice.simulator;
    if (!(sim instanceof Simulator)) throw new ArgumentError('env.simulator', 'must be a Simulator (fitSimulator, loadSimulator or readSimulator)');
    const native = sim.nativeEnv({ seed: choice.seed, startRound: choice.startRound, expectedFrom: choice.expectedFrom });
    return { native, rounds: sim.rounds - (native.startRound ?? 0), sim: choice };
  }
  const { kind = 'sy', ...syOptions } = (choice ?? {}) as SyOptions & { kind?: string };
  if (kind !== 'sy') throw new ArgumentError('env.kind', `must be 'sy' or 'sim', got ${String(kind)}`);
  const sy = resolveSyConfig({ ...syOptions, users: 1 });
  return { native: sy, rounds: sy.rounds, sy };
}

/** The user ids and starting states (and history) `users` stands for in the simulator. */
function simUsersSpec(users: SolveUsers, choice: SimEnvChoice): { userIds: Uint32Array; features: Float64Array } {
  const sim = choice.simulator;
  if (typeof users === 'number') throw new ArgumentError('users', 'the simulator needs starting states: give a log\'s users (trajectories) or { ids, features }, not a count');
  if ('ids' in users) {
    const d = sim.stateDim;
    const w = d + historyWidth(sim.layout);
    if (!(users.ids instanceof Uint32Array) || users.ids.length === 0) throw new ArgumentError('users.ids', 'must be a non-empty Uint32Array');
    const f = users.features;
    const width = (choice.startRound ?? 0) > 0 ? w : d;
    if (!(f instanceof Float64Array) || f.length !== users.ids.length * width) {
      throw new ArgumentError('users.features', `the simulator needs each user's starting state: users x ${width} values (${width === d ? 'the state' : 'the state, then the history columns at the start round'})`);
    }
    if (!f.every(Number.isFinite)) throw new ArgumentError('users.features', 'holds NaN or infinite values');
    return { userIds: users.ids, features: f };
  }
  const u = simUsers(sim, users, { round: choice.startRound ?? 0 });
  return { userIds: u.userIds, features: u.features };
}

/** Where a solve is: the reference rollout, each λ probe of the search, the final plan. */
export interface SolveProgress {
  phase: 'reference' | 'search' | 'plan' | 'done';
  /** Rollouts run so far. */
  rollouts: number;
  lambda?: number;
  /** Natural (unbudgeted) spend at that λ. */
  cost?: number;
  budget?: number;
}

/** A budget in currency, or a multiple of what the uniform logging policy spends on the same users ("0.5x"). */
export type Budget = number | `${number}x`;

/** Which users to simulate: a count of fresh SY users, explicit ids (and features), or trajectories read from a file. */
export type SolveUsers = number | { ids: Uint32Array; features?: Float64Array } | Trajectories;

export interface SolveOptions {
  /** A trained model: in memory, a path to its .onnx file, or one already loaded natively. */
  model?: CodtModel | string | NativeModel;
  users: SolveUsers;
  budget: Budget;
  /** Rounds to plan (default: the environment's rounds, at most the model's context). */
  rounds?: number;
  /** The environment: SY's ground truth (seed, dynamics, action dims); default SY. */
  env?: EnvChoice;
  method?: SearchMethodName;
  policy?: PolicyName;
  /** The 'forest' policy's fitted forest (fitForest / loadForest of src/policy/forest.ts). */
  forest?: CausalForest;
  /** The 'bandit' policy's prior (fitBanditPrior of src/policy/bandit.ts). */
  bandit?: BanditPrior;
  /**
   * The 'scored' and 'scored-fixed' policies' outcome model (DFCL's response model, CMDP's Q; src/policy/scored.ts), how its action indices map to the environment's,
   * and DFCL's decision-focused correction of its scores (fitDfcl(trajectories).correction; absent or null: the model's scores).
   */
  scored?: ScoredArtifact & { correction?: DfclCorrection | null };
  /** The 'fixed-arm' policy's arm (environment indices) and keep probability (src/policy/fixed-arm.ts). */
  fixedArm?: FixedArm;
  /** Tolerance below the budget (default 2% of it). */
  epsilon?: number;
  /** λ range for policies without a model (Oracle); default 10. */
  lambdaMax?: number;
  maxRollouts?: number;
  threads?: number;
  /** Which engine computes the CODT decisions: the native one (default), or onnxruntime. */
  engine?: 'native' | 'ort';
  /** For engine 'ort': a session or pool to use (default: a pool created and destroyed here). */
  ort?: OrtSession | OrtPool;
  /** Called as the solve goes (on the main thread): e.g. to print progress. */
  onProgress?: (progress: SolveProgress) => void;
  /** Bisection: find the bracket on a seeded random subsample of users, then probe every user (native/dual.h). Default true; false: every probe on every user. */
  subsample?: boolean;
  /** CODT: compute a block's round-0 target tokens once per λ instead of per user. Default true (the same plan, bit for bit). */
  sharedPrefix?: boolean;
  /** Arrival order of the budget-enforced plan: waves of this many users in id order, round by round within a wave, so memory is bounded by a wave. 0: round-major over all users. Default 16384 (smaller populations arrive round-major). */
  waveUsers?: number;
  /** Bytes one rollout may hold (default: what the system has available); beyond: NativeError `NATIVE_OUT_OF_MEMORY`, which says how many users fit. */
  memoryLimit?: number;
  /**
   * Also return {@link SolveResult.planDetails}: per (user, round) the policy's probability of
   * the issued action, the environment's expected revenue and cost of it, and whether the
   * budget withheld a coupon (what `writePlan` writes). Native engine only. Default false:
   * it costs 25 bytes per user and round, and one more rollout after a λ search (the plan at
   * λ*, run again with the details recorded; `rollouts` counts it).
   */
  planDetails?: boolean;
}

/**
 * What a plan says of each (user, round) besides the issued action: each array is
 * [users, rounds], users in the order of `SolveResult.plan`, round r at index
 * user × rounds + r (the campaign's round `startRound + r`).
 */
export interface PlanDetails {
  /** The campaign round of index 0: `env.startRound` in the simulator, else 0. */
  startRound: number;
  /**
   * The policy's probability of the issued action under its own decision distribution
   * (native/policy.h `Policy::probability`): CODT, the softmax of the model's scores at that
   * round's state per action dimension, evaluated at the issued index (the control where the
   * budget withheld the greedy coupon), multiplied over dimensions; Random, 1 / (number of
   * action combinations); the Oracle and Forest (deterministic), 1 for their proposal and 0 for
   * a control the budget issued instead; NaN where the policy defines none (the bandit's
   * Thompson sampling).
   */
  probability: Float64Array;
  /**
   * The environment's expected revenue and cost of the issued action for the user's state at
   * that round (SY: its ground truth; the simulator: its predicted P(r≠0)·E[r | r≠0], or SY's
   * truth with `expectedFrom`). NaN where the environment does not know them.
   */
  expectedRevenue: Float64Array;
  expectedCost: Float64Array;
  /** 1: the budget withheld the policy's coupon and issued the control action instead. */
  withheld: Uint8Array;
}

export interface SolveResult {
  engine: 'native' | 'ort';
  policy: PolicyName;
  method: SearchMethodName | 'none';
  lambda: number;
  budget: number;
  /** What the uniform logging policy spends on the same users (the "1x" budget). */
  referenceSpend: number;
  revenue: number;
  cost: number;
  roi: number;
  baRate: number;
  rollouts: number;
  /** Rollouts of the λ search on its subsample of users (subsampled bracketing), and the subsample's size; 0 without. */
  sampleRollouts?: number;
  sampleUsers?: number;
  coupons: number;
  /** Coupons the environment withheld because they could have taken spend over the budget. */
  blocked: number;
  feasible: boolean;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  trace: Array<{ lambda: number; revenue: number; cost: number }>;
  /** [users, rounds, action dims] issued action indices. */
  plan: Int32Array;
  /** With `planDetails: true`: what the plan says of each (user, round) besides the action. */
  planDetails?: PlanDetails;
  users: number;
  rounds: number;
  wallMs: number;
}

/**
 * The SY environment a model trained on `saco synth` data plans in: its rounds, and action
 * dimensions rebuilt from the model's action encodings (column `action_discount` is a discount,
 * every other column cash).
 */
export function syEnvForModel(meta: CodtModel['meta'], seed: number): SyOptions {
  const actionDims = meta.actionEncodings.map((enc) => {
    const name = enc.column === 'action' ? 'coupon' : enc.column.replace(/^action_/, '');
    const values = enc.values.map(Number);
    if (!values.every(Number.isFinite)) throw new ArgumentError('model', `action column ${enc.column} has non-numeric values: it was not trained on SY data`);
    return { name, kind: name === 'discount' ? ('discount' as const) : ('cash' as const), values };
  });
  return { seed, rounds: meta.config.context, features: meta.config.stateDim - 3, actionDims };
}

/** The weights onnxruntime needs (a natively loaded model keeps only its id). */
function ortModelOf(model: SolveOptions['model']): CodtModel {
  if (model === undefined || isNativeModel(model)) throw new ArgumentError('model', "engine 'ort' needs the model itself (or its path), or an `ort` session/pool");
  return typeof model === 'string' ? readOnnx(model) : model;
}

function isNativeModel(m: unknown): m is NativeModel {
  return typeof m === 'object' && m !== null && typeof (m as NativeModel).id === 'number' && typeof (m as NativeModel).unload === 'function';
}

/** Loads the model natively if needed; returns it and whether we own (must unload) it. */
function nativeModelOf(model: SolveOptions['model']): { handle: NativeModel; owned: boolean } {
  if (model === undefined) throw new ArgumentError('model', 'the codt policy needs a model');
  if (isNativeModel(model)) return { handle: model, owned: false };
  const loaded = typeof model === 'string' ? readOnnx(model) : model;
  validateModel(loaded);
  return { handle: loadNativeModel(loaded), owned: true };
}

/** The user ids (and static features) `users` stands for in the environment `env`, checked. */
export function usersSpec(users: SolveUsers, env: SyConfig): { userIds: Uint32Array; features?: Float64Array } {
  if (typeof users === 'number') {
    if (!Number.isInteger(users) || users < 1 || users > 1e8) throw new ArgumentError('users', `must be an integer in [1, 1e8], got ${users}`);
    return { userIds: Uint32Array.from({ length: users }, (_, i) => i) };
  }
  if ('ids' in users) {
    if (!(users.ids instanceof Uint32Array) || users.ids.length === 0) throw new ArgumentError('users.ids', 'must be a non-empty Uint32Array');
    if (users.features && users.features.length !== users.ids.length * env.features) throw new ArgumentError('users.features', `must hold users x ${env.features} values`);
    if (users.features && !users.features.every(Number.isFinite)) throw new ArgumentError('users.features', 'holds NaN or infinite values');
    return { userIds: users.ids, features: users.features };
  }
  // Trajectories from a log written by `saco synth`: ids are the user ids, features the first state columns at t = 0.
  const t = users;
  if (typeof t !== 'object' || t === null || !(t.states instanceof Float32Array) || !Number.isInteger(t.users) || !Number.isInteger(t.stateDim)) {
    throw new ArgumentError('users', 'must be a count of fresh SY users, { ids, features? }, or trajectories (readTrajectories / buildTrajectories)');
  }
  if (t.stateDim < env.features) throw new ArgumentError('users', `trajectories have ${t.stateDim} state features, the environment needs ${env.features} static ones first`);
  const ids = new Uint32Array(t.users);
  const features = new Float64Array(t.users * env.features);
  for (let i = 0; i < t.users; i++) {
    const id = Number(t.userIds[i]);
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new ArgumentError('users', `user id "${t.userIds[i]}" is not an SY user number`);
    ids[i] = id;
    for (let j = 0; j < env.features; j++) features[i * env.features + j] = t.states[i * t.rounds * t.stateDim + j];
  }
  return { userIds: ids, features };
}

/**
 * The budget in currency: `budget` itself, or its multiple of `referenceSpend` ("0.5x").
 * @throws {ArgumentError} for a malformed or non-positive budget, or a multiple of a zero reference spend.
 */
export function resolveBudget(budget: Budget, referenceSpend: number): number {
  let value: number;
  if (typeof budget === 'string') {
    const m = /^([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)x$/i.exec(budget.trim());
    if (!m) throw new ArgumentError('budget', `"${budget}" is neither a number nor a multiple like "0.5x"`);
    if (!(referenceSpend > 0)) {
      throw new ArgumentError('budget', `"${budget}" is a multiple of what the uniform logging policy spends on these users, and it spends ${referenceSpend} on them (no redeemed coupon in the reference rollout): give the budget in currency instead`);
    }
    value = Number(m[1]) * referenceSpend;
  } else value = budget;
  if (!Number.isFinite(value) || value <= 0) throw new ArgumentError('budget', `must be a finite number > 0, got ${String(budget)}${typeof budget === 'string' ? ` (= ${value})` : ''}`);
  return value;
}

/** The engine options of solve() (subsample, sharedPrefix, waveUsers, memoryLimit), checked, as the native rollout spec takes them. */
function solveEngineOptions(o: SolveOptions): Pick<NativeRolloutSpec, 'sharedPrefix' | 'waveUsers' | 'memoryLimit'> {
  for (const key of ['subsample', 'sharedPrefix'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new ArgumentError(key, `must be a boolean, got ${String(o[key])}`);
  }
  if (o.waveUsers !== undefined && !(Number.isInteger(o.waveUsers) && o.waveUsers >= 0 && o.waveUsers <= 0xffffffff)) throw new ArgumentError('waveUsers', `must be an integer >= 0 (0: round-major), got ${String(o.waveUsers)}`);
  if (o.memoryLimit !== undefined && !(Number.isInteger(o.memoryLimit) && o.memoryLimit >= 0)) throw new ArgumentError('memoryLimit', `must be a whole number of bytes >= 0, got ${String(o.memoryLimit)}`);
  const out: Pick<NativeRolloutSpec, 'sharedPrefix' | 'waveUsers' | 'memoryLimit'> = {};
  if (o.sharedPrefix !== undefined) out.sharedPrefix = o.sharedPrefix;
  if (o.waveUsers !== undefined) out.waveUsers = o.waveUsers;
  if (o.memoryLimit !== undefined) out.memoryLimit = o.memoryLimit;
  return out;
}

/**
 * Plans a campaign: searches the λ that spends the budget on the given users (bisection by
 * default, or SLSQP), then rolls out the plan at that λ with the budget enforced.
 *
 * @throws {ArgumentError} for a bad option (budget, users, rounds, policy, method, engine, epsilon) or a model that does not fit the environment.
 * @throws {ModelFileError} when `model` is a path to a file that is not a saco model.
 * @throws {SacoError} code `NATIVE_MISSING` when the native engine is needed and not built; {@link NativeError} when the native core refuses or fails (e.g. `NATIVE_FAILURE`: a non-finite outcome); `INFERENCE_FAILED` from the onnxruntime engine.
 * @example
 * const model = loadNativeModel(readOnnx('codt.onnx'));
 * const plan = await solve({ model, users: 10000, budget: '0.5x', env: { seed: 1 } });
 * console.log(plan.lambda, plan.revenue, plan.cost);
 * model.unload();
 */
export async function solve(options: SolveOptions): Promise<SolveResult> {
  const t0 = performance.now();
  const policy = options.policy ?? 'codt';
  const definition = policyByName(String(policy));
  if (policy === 'forest' && !options.forest) throw new ArgumentError('forest', 'the forest policy needs a fitted forest: fitForest(trajectories) or loadForest(bytes)');
  if (policy === 'bandit' && !options.bandit) throw new ArgumentError('bandit', 'the bandit policy needs a prior: fitBanditPrior(trajectories)');
  if ((policy === 'scored' || policy === 'scored-fixed') && !options.scored) throw new ArgumentError('scored', `the ${policy} policy needs an outcome model: { scored: { model, correction? } } (fitDfcl(trajectories)'s model and correction, fitCmdp(trajectories, { lambda }).q)`);
  if (policy === 'fixed-arm') checkFixedArm(options.fixedArm);
  const method = options.method ?? 'bisection';
  if (!['bisection', 'slsqp'].includes(method)) throw new ArgumentError('method', `must be bisection or slsqp, got ${String(method)}`);
  const useOrt = options.engine === 'ort';
  if (useOrt && (policy !== 'codt' || method !== 'bisection')) throw new ArgumentError('engine', "'ort' runs the codt policy with the bisection search; SLSQP and the baselines run natively");
  const world = resolveWorld(options.env);
  if (useOrt && world.sim) throw new ArgumentError('engine', "'ort' runs in SY only; plans in the simulator run natively");
  if (options.planDetails !== undefined && typeof options.planDetails !== 'boolean') throw new ArgumentError('planDetails', `must be a boolean, got ${String(options.planDetails)}`);
  if (useOrt && options.planDetails) throw new ArgumentError('planDetails', "plan details come from the native engine: drop engine 'ort'");
  const recordDetails = !!options.planDetails;
  const detailsOf = (d: NativePlanDetails | undefined): { planDetails?: PlanDetails } =>
    recordDetails && d ? { planDetails: { startRound: world.sim?.startRound ?? 0, ...d } } : {};
  const progress = options.onProgress ?? (() => undefined);
  // the ORT engine needs the weights, not a native copy of them
  const model = definition.needsModel && !useOrt ? nativeModelOf(options.model) : undefined;
  const ortModel = useOrt && !options.ort ? ortModelOf(options.model) : undefined;
  const meta = model?.handle.meta ?? options.ort?.meta ?? ortModel?.meta;
  try {
    const context = meta ? meta.config.context : world.rounds;
    const rounds = options.rounds ?? Math.min(world.rounds, context);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > world.rounds) throw new ArgumentError('rounds', `must be an integer in [1, ${world.rounds}] (the environment's rounds), got ${rounds}`);
    if (rounds > context) throw new ArgumentError('rounds', `${rounds} rounds is beyond the model's context of ${context}`);
    const users = world.sim ? simUsersSpec(options.users, world.sim) : usersSpec(options.users, world.sy!);
    if (meta && users.features) checkStatesInRange({ meta }, startStates(users.features, users.userIds.length, world), world.sim ? world.sim.simulator.stateDim : world.sy!.features, 'users.features');
    const env = world.native;
    const engineOptions = solveEngineOptions(options);
    const base: NativeRolloutSpec = { env, rounds, budget: Infinity, policy: 'random', lambda: 0, ...users, threads: options.threads ?? 0, ...engineOptions };
    // what the policy acts from besides a CODT model: passed to its rollouts (not the reference's)
    const artifacts: Partial<NativeRolloutSpec> = {
      forest: options.forest?.id,
      bandit: options.bandit,
      ...(options.scored ? { scored: { ...nativeScoredSpec(options.scored), ...(options.scored.correction ? { correction: options.scored.correction } : {}) } } : {}),
      ...(options.fixedArm ? { fixedArm: options.fixedArm } : {}),
    };
    progress({ phase: 'reference', rollouts: 0 });
    const reference = await nativeRollout(base);
    const budget = resolveBudget(options.budget, reference.cost);
    const epsilon = options.epsilon ?? 0.02 * budget;
    if (!Number.isFinite(epsilon) || epsilon < 0 || epsilon >= budget) throw new ArgumentError('epsilon', `must be in [0, budget), got ${epsilon}`);
    const common = { engine: (options.engine ?? 'native') as 'native' | 'ort', policy, budget, referenceSpend: reference.cost, users: users.userIds.length, rounds };
    if (!definition.searched) {
      progress({ phase: 'plan', rollouts: 1, budget });
      const r = await nativeRollout({ ...base, ...artifacts, policy, budget, recordPlan: true, recordDetails });
      progress({ phase: 'done', rollouts: 2, cost: r.cost, budget });
      return {
        ...common, engine: 'native', method: 'none', lambda: 0, revenue: r.revenue, cost: r.cost, roi: r.revenue / Math.max(r.cost, 1e-12), baRate: r.cost / budget, rollouts: 2, sampleRollouts: 0, sampleUsers: 0,
        coupons: r.coupons, blocked: r.blocked, feasible: true, budgetNotBinding: reference.cost <= budget, needsMoreThanLambdaMax: false, trace: [],
        plan: r.plan as Int32Array, ...detailsOf(r.details), wallMs: performance.now() - t0,
      };
    }
    const lambdaMax = meta ? meta.normalization.lambdaMax : options.lambdaMax ?? 10;
    if (useOrt && meta) {
      const ortEngine = options.ort ?? (await OrtPool.create(ortModel as CodtModel));
      try {
        const logits = (inputs: ForwardInputs) => ortEngine.logits(inputs);
        let rollouts = 1;
        const s = await tsBisection(
          async (lambda, b) => {
            const r = await tsRollout(meta, logits, world.sy!, users.userIds, users.features, rounds, lambda, b);
            progress({ phase: Number.isFinite(b) ? 'plan' : 'search', rollouts: ++rollouts, lambda, cost: r.cost, budget });
            return r;
          },
          budget, epsilon, lambdaMax, options.maxRollouts ?? 40,
        );
        const r = s.plan;
        return {
          ...common, method, lambda: s.lambda, revenue: r.revenue, cost: r.cost, roi: r.revenue / Math.max(r.cost, 1e-12), baRate: r.cost / budget,
          rollouts: s.rollouts + 1, sampleRollouts: 0, sampleUsers: 0, coupons: r.coupons, blocked: r.blocked, feasible: s.feasible, budgetNotBinding: s.budgetNotBinding,
          needsMoreThanLambdaMax: s.needsMoreThanLambdaMax, trace: s.trace, plan: r.plan, wallMs: performance.now() - t0,
        };
      } finally {
        if (!options.ort) await (ortEngine as OrtPool).destroy();
      }
    }
    const searched: NativeRolloutSpec = { ...base, ...artifacts, policy, model: model?.handle.id };
    const s = await nativeSearchLambda(
      searched,
      { method, budget, epsilon, lambdaMax, maxRollouts: options.maxRollouts ?? (method === 'slsqp' ? 60 : 40), subsample: options.subsample ?? true },
      (p) => progress({ phase: 'search', rollouts: p.rollouts + 1, lambda: p.lambda, cost: p.cost, budget }),
    );
    const r = s.plan;
    let rollouts = s.rollouts + 1;
    let details: NativePlanDetails | undefined;
    if (recordDetails) {
      // The plan is the budget-enforced rollout at (λ*, B), whichever of the search's rollouts
      // it came from (native/dual.cc), and every draw is keyed by user and round: running it
      // once more with details costs one rollout, where recording them in the search would
      // cost them on each of its probes on every user.
      progress({ phase: 'plan', rollouts, lambda: s.lambda, budget });
      const again = await nativeRollout({ ...searched, lambda: s.lambda, budget, recordPlan: true, recordDetails: true });
      rollouts++;
      if (again.revenue !== r.revenue || again.cost !== r.cost || again.blocked !== r.blocked) {
        throw new SacoError('PLAN_NOT_REPRODUCED', `the plan at λ ${s.lambda} did not reproduce (revenue ${again.revenue} vs ${r.revenue}, cost ${again.cost} vs ${r.cost}): a bug, please report it`);
      }
      details = again.details;
    }
    progress({ phase: 'done', rollouts, lambda: s.lambda, cost: r.cost, budget });
    return {
      ...common, method, lambda: s.lambda, revenue: r.revenue, cost: r.cost, roi: r.revenue / Math.max(r.cost, 1e-12), baRate: r.cost / budget,
      rollouts, sampleRollouts: s.sampleRollouts, sampleUsers: s.sampleUsers, coupons: r.coupons, blocked: r.blocked, feasible: s.feasible,
      budgetNotBinding: s.budgetNotBinding, needsMoreThanLambdaMax: s.needsMoreThanLambdaMax, trace: s.trace, plan: r.plan as Int32Array, ...detailsOf(details),
      wallMs: performance.now() - t0,
    };
  } finally {
    if (model?.owned) model.handle.unload();
  }
}

export { tsBisection, type TsRolloutResult, type TsSearchResult } from './ts-rollout.js';
export type { PlanLabels } from './plan-file.js';

/**
 * Writes a plan solved with `planDetails: true` as CSV, CSV.gz or Parquet (by extension), one
 * row per (user, round): user_id, round, the action label per dimension, probability,
 * expected_revenue, expected_cost, withheld, lambda (empty without λ) (src/solve/plan-file.ts; DuckDB loads on
 * the first call). Returns the number of rows written.
 *
 * @throws {ArgumentError} for a result without plan details, labels that do not fit the plan, or an unknown extension.
 * @example
 * const plan = await solve({ model, users: trajectories, budget: '0.5x', env: { kind: 'sim', simulator }, planDetails: true });
 * await writePlan(plan, trajectories, 'plan.parquet');
 */
export async function writePlan(result: import('./plan-file.js').PlanSource, labels: import('./plan-file.js').PlanLabels, file: string): Promise<number> {
  return (await import('./plan-file.js')).writePlan(result, labels, file);
}

/** The starting states of `features` (SY: static features; simulator: states, without history columns). */
function startStates(features: Float64Array, n: number, world: World): Float64Array {
  if (!world.sim) return features;
  const d = world.sim.simulator.stateDim;
  const w = features.length / n;
  if (w === d) return features;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) out.set(features.subarray(i * w, i * w + d), i * d);
  return out;
}

/** One rollout of some users at a given λ and budget: the unit of work of a sharded solve (src/cluster). */
export interface SliceRolloutOptions {
  /** As in solve(); a path is loaded for this call only (load it once with loadNativeModel to reuse it). */
  model?: CodtModel | string | NativeModel;
  policy?: PolicyName;
  env?: EnvChoice;
  rounds: number;
  users: SolveUsers;
  lambda: number;
  /** Infinity: no budget (a probe of the λ search); a number: enforced as solve() enforces it. */
  budget: number;
  recordPlan?: boolean;
  threads?: number;
}

export interface SliceRolloutResult extends Omit<NativeRolloutResult, 'details'> {
  users: number;
}

/**
 * One rollout of `users` under `policy` at `lambda` with `budget` enforced (Infinity: none),
 * checked as solve() checks its options. Users are independent given λ and every draw is
 * keyed by user id, so unbudgeted rollouts of disjoint slices sum to the rollout of their union.
 *
 * @throws {ArgumentError} / {NativeError} as solve() does.
 */
export async function rolloutSlice(options: SliceRolloutOptions): Promise<SliceRolloutResult> {
  const policy = options.policy ?? 'codt';
  const definition = policyByName(String(policy));
  const { kind = 'sy', ...syOptions } = (options.env ?? {}) as SyOptions & { kind?: string };
  if (kind !== 'sy') throw new ArgumentError('env.kind', `must be 'sy' (slices run in SY), got ${String(kind)}`);
  const env = resolveSyConfig({ ...syOptions, users: 1 });
  if (typeof options.lambda !== 'number' || !Number.isFinite(options.lambda) || options.lambda < 0) throw new ArgumentError('lambda', `must be finite and >= 0, got ${String(options.lambda)}`);
  if (typeof options.budget !== 'number' || Number.isNaN(options.budget) || options.budget <= 0) throw new ArgumentError('budget', `must be > 0 (Infinity: none), got ${String(options.budget)}`);
  const model = definition.needsModel ? nativeModelOf(options.model) : undefined;
  try {
    const context = model ? model.handle.meta.config.context : env.rounds;
    const rounds = options.rounds;
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > Math.min(env.rounds, context)) throw new ArgumentError('rounds', `must be an integer in [1, ${Math.min(env.rounds, context)}], got ${rounds}`);
    const users = usersSpec(options.users, env);
    if (model && users.features) checkStatesInRange({ meta: model.handle.meta }, users.features, env.features, 'users.features');
    const r = await nativeRollout({ env, rounds, budget: options.budget, policy, lambda: options.lambda, model: model?.handle.id, ...users, threads: options.threads ?? 0, recordPlan: !!options.recordPlan });
    return { users: users.userIds.length, ...r };
  } finally {
    if (model?.owned) model.handle.unload();
  }
}

/** What happened to a user before now: one entry per past round. */
export interface DecisionHistory {
  /** [rounds, stateDim] raw states of the past rounds. */
  states: number[][] | Float32Array;
  /** [rounds][action dims] action indices issued. */
  actions: number[][];
  rewards: number[];
  costs: number[];
}

export interface DecideOptions {
  /**
   * The model: loaded natively (`loadNativeModel`), in memory, or the path of its .onnx file.
   * The last two are loaded once and kept for later calls (a file is reread when it changes).
   */
  model: CodtModel | NativeModel | string;
  lambda: number;
  /** The user's current raw state (stateDim values). */
  state: ArrayLike<number>;
  history?: DecisionHistory;
}

export interface Decision {
  /** Index per action dimension. */
  action: number[];
  /** The labels of those indices (e.g. face values). */
  labels: Array<number | string>;
  /** Softmax per action dimension. */
  probabilities: number[][];
}

/** Models decide() loaded itself: a service calling it per request must not reload weights. */
const decisionModels = new WeakMap<CodtModel, NativeModel>();
const decisionFiles = new Map<string, { mtimeMs: number; size: number; handle: NativeModel }>();
const DECISION_FILES_KEPT = 8;

/** The natively loaded model of a decision: as given, or loaded once and kept (a file is reread when it changes). */
export function decisionModel(model: DecideOptions['model']): NativeModel {
  if (isNativeModel(model)) return model;
  if (typeof model === 'string') {
    const file = path.resolve(model);
    let stat;
    try {
      stat = statSync(file);
    } catch {
      throw new ArgumentError('model', `${model}: no such model file`);
    }
    const cached = decisionFiles.get(file);
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.handle;
    const handle = loadNativeModel(readOnnx(file));
    cached?.handle.unload();
    decisionFiles.delete(file);
    decisionFiles.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, handle });
    if (decisionFiles.size > DECISION_FILES_KEPT) {
      const [oldest, entry] = decisionFiles.entries().next().value as [string, { handle: NativeModel }];
      entry.handle.unload();
      decisionFiles.delete(oldest);
    }
    return handle;
  }
  if (typeof model !== 'object' || model === null || !(model.params instanceof Map) || !model.meta) {
    throw new ArgumentError('model', 'must be a loaded model, a model read by readOnnx, or the path of an .onnx file');
  }
  let handle = decisionModels.get(model);
  if (!handle) {
    handle = loadNativeModel(model);
    decisionModels.set(model, handle);
  }
  return handle;
}

/** A decision's inputs, checked: one user's history and current state as the model reads them. */
interface DecisionQuery {
  handle: NativeModel;
  inputs: ForwardInputs;
  past: number;
  /** decideSync's reused logits array (decide() gets a fresh one). */
  logits?: Float32Array;
}

/**
 * decideSync's input arrays and logits, kept per model and length: the binding reads a typed
 * array in place, and a fresh small one must first be moved off V8's heap (measured: ~10 µs of
 * a 35 µs decision went to five fresh arrays), and a fresh result array costs an ArrayBuffer
 * and its finalizer. Safe to reuse: the call is synchronous, every value it reads is rewritten
 * (the one-hot actions are zeroed first), and the decision returned holds no view of the logits.
 */
const syncInputs = new WeakMap<NativeModel, Map<number, { inputs: ForwardInputs; logits: Float32Array }>>();

function reusableInputs(handle: NativeModel, T: number): { inputs: ForwardInputs; logits: Float32Array } {
  let byLength = syncInputs.get(handle);
  if (!byLength) syncInputs.set(handle, (byLength = new Map()));
  let kept = byLength.get(T);
  if (!kept) {
    kept = { inputs: emptyForwardInputs(handle.meta.config, 1, T), logits: new Float32Array(T * actionWidth(handle.meta.config)) };
    byLength.set(T, kept);
  } else kept.inputs.actionsOneHot.fill(0);
  return kept;
}

function decisionQuery(options: DecideOptions, reuse = false): DecisionQuery {
  const handle = decisionModel(options.model);
  const meta = handle.meta;
  const c = meta.config;
  const d = c.stateDim;
  const lambda = options.lambda;
  checkDecisionLambda(meta, lambda);
  const state = options.state;
  if (typeof state !== 'object' || state === null || typeof state.length !== 'number') throw new ArgumentError('state', `must be an array of ${d} numbers`);
  if (state.length !== d) throw new ArgumentError('state', `has ${state.length} values, the model expects ${d} (${meta.stateNames.join(', ')})`);
  if (!allFinite(state)) throw new ArgumentError('state', 'holds NaN or infinite values');
  const h = options.history ?? NO_HISTORY;
  const past = h.rewards.length;
  if (h.states instanceof Float32Array && h.states.length !== past * d) {
    throw new ArgumentError('history.states', `holds ${h.states.length} values: ${past} past rounds of ${d} state values need ${past * d}`);
  }
  const pastStates = h.states instanceof Float32Array ? Array.from({ length: past }, (_, i) => (h.states as Float32Array).subarray(i * d, i * d + d)) : h.states;
  if (pastStates.length !== past || h.actions.length !== past || h.costs.length !== past) throw new ArgumentError('history', 'states, actions, rewards and costs must have one entry per past round');
  if (past + 1 > c.context) throw new ArgumentError('history', `${past + 1} rounds is beyond the model's context of ${c.context}`);
  const T = past + 1;
  const kept = reuse ? reusableInputs(handle, T) : undefined;
  const inputs = kept?.inputs ?? emptyForwardInputs(c, 1, T);
  inputs.lambda[0] = lambda;
  writeDecisionTokens(handle, lambda, new HistoryTokens(past, pastStates, state, h), inputs, 0);
  return { handle, past, inputs, logits: kept?.logits };
}

const NO_HISTORY: DecisionHistory = Object.freeze({ states: [], actions: [], rewards: [], costs: [] });

/** One decide() call's rounds as writeDecisionTokens reads them (methods, not closures made per call). */
class HistoryTokens implements DecisionTokenSource {
  constructor(
    readonly past: number,
    private readonly pastStates: ArrayLike<ArrayLike<number>>,
    private readonly current: ArrayLike<number>,
    private readonly history: DecisionHistory,
  ) {}

  state(t: number): ArrayLike<number> {
    return t < this.past ? this.pastStates[t] : this.current;
  }

  action(t: number, j: number): number {
    return this.history.actions[t][j];
  }

  reward(t: number): number {
    return this.history.rewards[t];
  }

  cost(t: number): number {
    return this.history.costs[t];
  }
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

/** λ in the model's range, or an ArgumentError. */
export function checkDecisionLambda(meta: CodtModel['meta'], lambda: unknown): asserts lambda is number {
  if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0 || lambda > meta.normalization.lambdaMax) {
    throw new ArgumentError('lambda', `must be in [0, ${meta.normalization.lambdaMax}] (the model's λ range), got ${String(lambda)}`);
  }
}

/** One user's rounds as a decision reads them: `past` earlier rounds, then the current state at round `past`. */
export interface DecisionTokenSource {
  past: number;
  /** The raw state of round t (t = past: the current state). */
  state(t: number): ArrayLike<number>;
  /** Action index of dimension j in past round t. */
  action(t: number, j: number): number;
  reward(t: number): number;
  cost(t: number): number;
  /** Prefix of the names in errors (e.g. "user 17: "); default none. */
  label?: string;
}

/**
 * Writes one user's decision inputs into row `b` of a batch laid out [batch, rounds, ·]
 * (`inputs.rounds` ≥ past + 1; later positions are left as they are: causal attention never
 * lets the decision at `past` see them): the raw states of rounds 0..past, the to-go tokens —
 * the model's targets at λ (a table of zeros for the outcome-relabelled recipes) minus the
 * reward and cost realised in each earlier round — and the past actions one-hot. decide() and
 * decideBatch() both build their tokens here, so they feed the model the same numbers.
 *
 * @throws {ArgumentError} naming the round for a state of the wrong size, non-finite or out of
 *   the training range, a non-finite reward, a negative cost, or an action index out of range.
 */
export function writeDecisionTokens(handle: Pick<NativeModel, 'meta'>, lambda: number, src: DecisionTokenSource, inputs: ForwardInputs, b: number): void {
  const meta = handle.meta;
  const c = meta.config;
  const d = c.stateDim;
  const K = actionWidth(c);
  const T = inputs.rounds;
  const past = src.past;
  const label = src.label ?? '';
  const target = targetsAt(meta.targets, lambda);
  let r = target.rtg;
  let cst = target.ctg;
  for (let t = 0; t <= past; t++) {
    const s = src.state(t);
    // (the argument's name is built only for an error: a decision checks six rounds)
    if (s.length !== d || !allFinite(s)) throw new ArgumentError(stateArgument(label, t, past), `must hold ${d} finite numbers, got ${s.length} values`);
    if (!stateRowInRange(handle, s)) checkStatesInRange(handle, s, d, stateArgument(label, t, past));
    const cell = b * T + t;
    for (let j = 0; j < d; j++) inputs.states[cell * d + j] = s[j]; // (TypedArray.set costs more than the copy at these sizes)
    inputs.rtg[cell] = r;
    inputs.ctg[cell] = cst;
    if (t < past) {
      const reward = src.reward(t);
      const cost = src.cost(t);
      if (!Number.isFinite(reward) || !Number.isFinite(cost) || cost < 0) throw new ArgumentError(`${label}history round ${t}`, 'reward and cost must be finite, cost >= 0');
      r -= reward;
      cst -= cost;
      let off = 0;
      for (let j = 0; j < c.actionSizes.length; j++) {
        const k = c.actionSizes[j];
        const a = src.action(t, j);
        if (!Number.isInteger(a) || a < 0 || a >= k) throw new ArgumentError(`${label}history.actions[${t}][${j}]`, `must be an index in [0, ${k})`);
        inputs.actionsOneHot[cell * K + off + a] = 1;
        off += k;
      }
    }
  }
  if (!Number.isFinite(r) || !Number.isFinite(cst) || Math.abs(r) > 3e38 || Math.abs(cst) > 3e38) throw new ArgumentError(`${label}history`, 'the rewards and costs so far overflow the decision targets');
}

function stateArgument(label: string, t: number, past: number): string {
  return t < past ? `${label}history.states[${t}]` : `${label}state`;
}

function decisionFrom(q: DecisionQuery, logits: Float32Array): Decision {
  const meta = q.handle.meta;
  const sizes = meta.config.actionSizes;
  const K = actionWidth(meta.config);
  const row = logits.subarray(q.past * K, q.past * K + K);
  if (!allFinite(row)) throw new SacoError('DECISION_NOT_FINITE', "the model's scores for this user are not finite: the state or history lies far outside the training data");
  const chosen = new Int32Array(sizes.length);
  greedyRow(row, 0, sizes, chosen);
  const action = Array.from(chosen);
  return { action, labels: action.map((a, j) => meta.actionEncodings[j]?.values[a] ?? a), probabilities: softmaxPerDimension(row, 0, sizes) };
}

/**
 * One user's coupon now: the model's action at the plan's λ given the user's current state and
 * what happened to them so far (one entry per past round).
 *
 * The model runs on a thread of the pool, so the event loop stays free; `decideSync` computes
 * the same on the calling thread, in microseconds. A model object or path is loaded once and
 * kept for later calls.
 *
 * @throws {ArgumentError} for a λ outside the model's range, a state of the wrong size, with NaN or
 *   beyond 1000 training standard deviations (`INPUT_OUT_OF_RANGE`), or an inconsistent history.
 * @throws {SacoError} code `DECISION_NOT_FINITE` when the model's scores are not finite.
 * @throws {SacoError} code `NATIVE_MISSING` when the native engine is not built.
 * @example
 * const now = await decide({ model, lambda: plan.lambda, state: [0.3, 1.2, 0, 5], history });
 * console.log(now.labels); // e.g. [10]: a 10-off coupon
 */
export async function decide(options: DecideOptions): Promise<Decision> {
  const q = decisionQuery(options);
  return decisionFrom(q, await nativeForward(q.handle, q.inputs, 'incremental'));
}

/**
 * The decision cache of a model decide(), decideSync() and decideBatch() use: each decision
 * keeps the user's computed sequence (its keys and values, native/decision_cache.h), so that
 * the user's next round, whose history extends it by one round, computes only that round's
 * tokens (per-round serving: a round-5 decision then costs about what a round-1 one does). An
 * entry is found only by the exact inputs it was computed from, so a changed history or λ
 * recomputes; decisions are the same with the cache or without it. Least recently used entries
 * are dropped beyond the capacity. `capacityBytes` sets it (default 32 MiB per model; 0 turns
 * it off); returns its size and its hits and misses so far.
 *
 * @throws {ArgumentError} for a capacity that is not an integer >= 0.
 * @example
 * decisionCache(model, 512 << 20); // a service deciding ~10,000 users per round at round 5
 */
export function decisionCache(model: DecideOptions['model'], capacityBytes?: number): DecisionCacheStats {
  if (capacityBytes !== undefined && !(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0)) {
    throw new ArgumentError('capacityBytes', `must be an integer >= 0, got ${String(capacityBytes)}`);
  }
  return nativeDecisionCache(decisionModel(model), capacityBytes);
}

/**
 * decide() on the calling thread: no thread hop, for per-request serving (it blocks the event
 * loop for the microseconds the model takes).
 *
 * @throws {ArgumentError} / {SacoError} as decide() does.
 * @example
 * app.get('/coupon/:user', (req, res) => res.json(decideSync({ model, lambda, state: stateOf(req.params.user) }).labels));
 */
export function decideSync(options: DecideOptions): Decision {
  const q = decisionQuery(options, true);
  return decisionFrom(q, nativeForwardSync(q.handle, q.inputs, q.logits));
}
