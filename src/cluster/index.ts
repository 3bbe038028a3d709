/**
 * The sharded solve (DESIGN.md section 9): the same λ search as solve(), with every rollout a
 * sum over shards of users. Users are independent given λ and every random draw is keyed by
 * user id, so an unbudgeted probe of the search is exactly the sum of its shards' probes. The
 * final, budget-enforced plan is not separable: each shard enforces its own share of the
 * budget (src/cluster/split.ts states the split). The shards run in this process one after
 * another (`shards: N`, the exact single-process twin) or on workers behind Redis
 * (`cluster: { redis }`, BullMQ): both call the same shard job and add the same sums in shard
 * order, so λ*, revenue, cost and the plan are the same bits.
 *
 * Arrows: cluster sits above solve; it calls solve's primitives (rolloutSlice, the bisection,
 * the budget and user checks) and never the other way round.
 */
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { removeQuietly } from '../data/atomic.js';
import { resolveSyConfig, type SyConfig } from '../data/synth.js';
import { ArgumentError } from '../errors.js';
import type { CodtModel, ModelMeta } from '../model/artifact.js';
import { readOnnx } from '../model/onnx.js';
import { validateModel } from '../model/validate.js';
import { loadNativeModel, type NativeModel } from '../native/index.js';
import { policyByName, type PolicyName } from '../policy/registry.js';
import { resolveBudget, tsBisection, usersSpec, type SolveProgress, type SolveUsers, type TsRolloutResult } from '../solve/index.js';
import { JobCache, runShardJob } from './job.js';
import type { ClusterWorker, ClusterWorkerOptions } from './worker.js';
import { budgetShares, combine, orderResults, shardRanges } from './split.js';
import { ClusterError, type ShardedSolveOptions, type ShardedSolveResult, type ShardFiles, type ShardJob, type ShardResult, type ShardSummary, type ShardUsers } from './types.js';

export { ClusterError } from './types.js';
export type { ClusterOptions, ShardedSolveOptions, ShardedSolveResult, ShardFiles, ShardJob, ShardResult, ShardSummary, ShardUsers } from './types.js';
export { budgetShares, shardRanges } from './split.js';
export { isShardSet, readShardManifest, shardFileName, shardLog, shardOfUser, SHARD_MANIFEST, type ShardManifest } from './shard-files.js';

export type { ClusterWorker, ClusterWorkerOptions, WorkerEvent } from './worker.js';

/**
 * Starts a worker of the sharded solve on the queue behind `redis` (what `saco worker` runs).
 * @throws {ClusterError} `CLUSTER_REDIS_UNREACHABLE` when no Redis answers within `connectTimeoutMs`.
 */
export async function startClusterWorker(options: ClusterWorkerOptions): Promise<ClusterWorker> {
  const { startClusterWorker: start } = await import('./worker.js'); // BullMQ loads only for a Redis run
  return start(options);
}

/** Runs the jobs of one probe, one per shard, and returns their results (any order). */
export interface ShardRunner {
  /** 'local' or the Redis URL (without password). */
  readonly name: string;
  run(jobs: ShardJob[]): Promise<ShardResult[]>;
  close(): Promise<void>;
}

/** The in-process runner: the shards one after another, on all cores each. */
class LocalRunner implements ShardRunner {
  readonly name = 'local';
  private readonly cache = new JobCache();
  constructor(
    private readonly model: NativeModel | undefined,
    private readonly signal?: AbortSignal,
  ) {}

  async run(jobs: ShardJob[]): Promise<ShardResult[]> {
    const out: ShardResult[] = [];
    for (const job of jobs) {
      if (this.signal?.aborted) throw new ClusterError('CLUSTER_ABORTED', 'the sharded solve was stopped');
      out.push(await runShardJob(job, this.cache, 'local', this.model));
    }
    return out;
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}

/** Shards of a Redis run when neither `shards` nor files say: a few per worker on a small cluster. */
const DEFAULT_REDIS_SHARDS = 16;

function isNativeModel(m: unknown): m is NativeModel {
  return typeof m === 'object' && m !== null && typeof (m as NativeModel).id === 'number' && typeof (m as NativeModel).unload === 'function';
}

function isShardFiles(u: unknown): u is ShardFiles {
  return typeof u === 'object' && u !== null && Array.isArray((u as ShardFiles).shardFiles);
}

/** The shards of the users: SY id ranges, slices of explicit ids, or files. */
function shardsOf(users: SolveUsers | ShardFiles, shards: number | undefined, env: SyConfig, onRedis: boolean): ShardUsers[] {
  if (isShardFiles(users)) {
    if (users.shardFiles.length === 0) throw new ArgumentError('users.shardFiles', 'is empty');
    if (shards !== undefined && shards !== users.shardFiles.length) throw new ArgumentError('shards', `${shards} shards, but the users come in ${users.shardFiles.length} shard files (one shard each)`);
    return users.shardFiles.map((f) => ({ kind: 'file', file: path.resolve(f), ...(users.schema ? { schema: users.schema } : {}) }));
  }
  const count = shards ?? (onRedis ? DEFAULT_REDIS_SHARDS : 1);
  if (typeof users === 'number') {
    usersSpec(users, env); // the same checks as solve()
    return shardRanges(users, count).map((r) => ({ kind: 'range', ...r }));
  }
  const spec = usersSpec(users, env);
  const d = env.features;
  return shardRanges(spec.userIds.length, count).map((r) => ({
    kind: 'ids',
    ids: spec.userIds.subarray(r.begin, r.end),
    ...(spec.features ? { features: spec.features.subarray(r.begin * d, r.end * d) } : {}),
  }));
}

function planFileOf(users: ShardUsers, probe: number): string | undefined {
  if (users.kind !== 'file') return undefined;
  const base = users.file.replace(/\.(parquet|pq|csv|tsv)(\.gz)?$/i, '');
  return probe < 0 ? `${base}.plan.parquet` : `${base}.plan-p${probe}.parquet`;
}

/**
 * Plans a campaign like solve(), with the users split into shards that run in this process
 * (`shards: N`) or on `saco worker` processes behind Redis (`cluster: { redis }`). With the same
 * shards, both give the same λ*, revenue, cost and plan, bit for bit; against the unsharded
 * solve the search is the same and only the budget enforcement of the final plan differs
 * (each shard enforces its share, see split.ts).
 *
 * Runs the bisection search (SLSQP is refused). Policies that share state across users are
 * refused. On Redis the model must be a path every worker can read; shard files likewise.
 *
 * @throws {ArgumentError} for bad options, a policy that shares state across users, SLSQP, or a model that is not a file with `cluster`.
 * @throws {ClusterError} `CLUSTER_REDIS_UNREACHABLE`, `CLUSTER_REDIS_LOST`, `CLUSTER_JOB_FAILED`, `CLUSTER_TIMEOUT`, `CLUSTER_ABORTED`.
 * @example
 * const twin = await solveSharded({ model: 'codt.onnx', users: 100000, budget: '0.5x', shards: 12 });
 * const plan = await solveSharded({ model: 'codt.onnx', users: 100000, budget: '0.5x', shards: 12, cluster: { redis: 'redis://127.0.0.1:6379' } });
 * // plan.lambda === twin.lambda, plan.revenue === twin.revenue
 */
export async function solveSharded(options: ShardedSolveOptions): Promise<ShardedSolveResult> {
  const t0 = performance.now();
  const policy = (options.policy ?? 'codt') as PolicyName;
  const definition = policyByName(String(policy));
  if (definition.sharesStateAcrossUsers) {
    throw new ArgumentError('policy', `${policy} shares state across users (what it learns from one user changes its decision for the next), so its rollout cannot be split into shards: solve it without --shards/--redis`, 'CLUSTER_POLICY_NOT_SHARDABLE');
  }
  const method = options.method ?? 'bisection';
  if (method !== 'bisection') throw new ArgumentError('method', `the sharded solve runs the bisection search, got ${String(method)} (SLSQP runs on one machine: solve without --shards/--redis)`);
  const { kind = 'sy', ...syOptions } = options.env ?? {};
  if (kind !== 'sy') throw new ArgumentError('env.kind', `must be 'sy' (the only environment so far), got ${String(kind)}`);
  const env = resolveSyConfig({ ...syOptions, users: 1 });
  const progress = options.onProgress ?? (() => undefined);
  const cluster = options.cluster;
  const signal = options.signal;
  if (signal?.aborted) throw new ClusterError('CLUSTER_ABORTED', 'the sharded solve was stopped before it started');

  // the model: workers load it by path; in process it is loaded once here
  let modelPath: string | undefined;
  let meta: ModelMeta | undefined;
  let handle: NativeModel | undefined;
  let ownedHandle = false;
  if (definition.needsModel) {
    const m = options.model;
    if (m === undefined) throw new ArgumentError('model', 'the codt policy needs a model');
    if (typeof m === 'string') {
      modelPath = path.resolve(m);
      const read = readOnnx(modelPath);
      validateModel(read);
      meta = read.meta;
      if (!cluster) {
        handle = loadNativeModel(read);
        ownedHandle = true;
      }
    } else if (cluster) {
      throw new ArgumentError('model', 'a sharded solve on Redis needs the model as a path every worker can read (workers load it once by path)');
    } else if (isNativeModel(m)) {
      handle = m;
      meta = m.meta;
    } else {
      validateModel(m as CodtModel);
      handle = loadNativeModel(m as CodtModel);
      ownedHandle = true;
      meta = (m as CodtModel).meta;
    }
  }
  const solveId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  let runner: ShardRunner | undefined;
  try {
    const context = meta ? meta.config.context : env.rounds;
    const rounds = options.rounds ?? Math.min(env.rounds, context);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > env.rounds) throw new ArgumentError('rounds', `must be an integer in [1, ${env.rounds}] (the environment's rounds), got ${rounds}`);
    if (rounds > context) throw new ArgumentError('rounds', `${rounds} rounds is beyond the model's context of ${context}`);
    const shardUsers = shardsOf(options.users, options.shards, env, cluster !== undefined);
    const collectPlan = options.collectPlan ?? true;
    const writePlans = isShardFiles(options.users) ? options.users.writePlans ?? true : false;
    const threads = options.threads ?? 0;
    if (cluster) {
      const { RedisRunner } = await import('./coordinator.js'); // BullMQ loads only for a Redis run
      runner = await RedisRunner.open(cluster, solveId, signal);
    } else runner = new LocalRunner(handle, signal);
    const active = runner;

    let probe = 0;
    let rollouts = 0;
    let computeMs = 0;
    const jobsFor = (kind: ShardJob['kind'], jobPolicy: string, lambda: number, budgets: Array<number | null>): ShardJob[] =>
      shardUsers.map((users, shard) => ({
        v: 1, solve: solveId, probe, shard, kind, policy: jobPolicy, ...(cluster && jobPolicy !== 'random' && modelPath ? { model: modelPath } : {}),
        env, rounds, lambda, budget: budgets[shard], users, returnPlan: kind === 'plan' && collectPlan,
        ...(kind === 'plan' && writePlans ? { planFile: planFileOf(users, probe) } : {}), threads,
      }));
    const runProbe = async (jobs: ShardJob[]): Promise<ShardResult[]> => {
      const results = orderResults(await active.run(jobs), jobs);
      probe++;
      rollouts++;
      for (const r of results) computeMs += r.ms;
      return results;
    };

    // the reference rollout (uniform logging, no budget), summed over shards: the "1x" budget
    progress({ phase: 'reference', rollouts: 0 });
    const reference = await runProbe(jobsFor('probe', 'random', 0, shardUsers.map(() => null)));
    const referenceCost = combine(reference).cost;
    const budget = resolveBudget(options.budget, referenceCost);
    const epsilon = options.epsilon ?? 0.02 * budget;
    if (!Number.isFinite(epsilon) || epsilon < 0 || epsilon >= budget) throw new ArgumentError('epsilon', `must be in [0, budget), got ${epsilon}`);

    // natural spend per shard at every λ probed: the budget split of a plan at that λ
    const naturalAt = new Map<number, number[]>();
    const users = reference.map((r) => r.users);
    interface PlanRun {
      results: ShardResult[];
      shares: number[];
      probe: number;
    }
    const planRuns = new WeakMap<TsRolloutResult, PlanRun>();
    const emptyPlan = new Int32Array(0);

    const planAt = async (planPolicy: PolicyName, lambda: number, weights: number[]): Promise<TsRolloutResult> => {
      const shares = budgetShares(budget, weights, users);
      const planProbe = probe;
      const results = await runProbe(jobsFor('plan', planPolicy, lambda, shares));
      const c = combine(results);
      const out: TsRolloutResult = { revenue: c.revenue, cost: c.cost, coupons: c.coupons, blocked: c.blocked, plan: emptyPlan };
      planRuns.set(out, { results, shares, probe: planProbe });
      return out;
    };

    let lambda = 0;
    let plan: TsRolloutResult;
    let search: { feasible: boolean; budgetNotBinding: boolean; needsMoreThanLambdaMax: boolean; trace: Array<{ lambda: number; revenue: number; cost: number }>; rollouts: number };
    let methodUsed: ShardedSolveResult['method'] = method;
    if (!definition.searched) {
      progress({ phase: 'plan', rollouts: 1, budget });
      plan = await planAt(policy, 0, reference.map((r) => r.cost));
      methodUsed = 'none';
      search = { feasible: true, budgetNotBinding: referenceCost <= budget, needsMoreThanLambdaMax: false, trace: [], rollouts: 1 };
    } else {
      const lambdaMax = meta ? meta.normalization.lambdaMax : options.lambdaMax ?? 10;
      const s = await tsBisection(
        async (l, b) => {
          if (Number.isFinite(b)) {
            progress({ phase: 'plan', rollouts, lambda: l, budget });
            const weights = naturalAt.get(l);
            if (!weights) throw new Error(`internal: the plan at λ ${l} was not probed first`);
            return planAt(policy, l, weights);
          }
          const results = await runProbe(jobsFor('probe', policy, l, shardUsers.map(() => null)));
          const c = combine(results);
          naturalAt.set(l, c.costs);
          progress({ phase: 'search', rollouts, lambda: l, cost: c.cost, budget });
          return { revenue: c.revenue, cost: c.cost, coupons: c.coupons, blocked: c.blocked, plan: emptyPlan };
        },
        budget, epsilon, lambdaMax, options.maxRollouts ?? 40,
      );
      lambda = s.lambda;
      plan = s.plan;
      search = s;
    }
    const chosen = planRuns.get(plan);
    if (!chosen) throw new Error('internal: the plan was not rolled out');
    progress({ phase: 'done', rollouts, lambda, cost: plan.cost, budget });

    // plan files: the kept plan's become <shard>.plan.parquet, the other candidate's are removed
    const planFiles: Array<string | undefined> = shardUsers.map(() => undefined);
    if (writePlans) {
      for (const [k, u] of shardUsers.entries()) {
        const written = chosen.results[k].planFile;
        const final = planFileOf(u, -1);
        if (written && final) {
          renameSync(written, final);
          planFiles[k] = final;
        }
      }
      for (let p = 0; p < probe; p++) if (p !== chosen.probe) for (const u of shardUsers) { const f = planFileOf(u, p); if (f) removeQuietly(f); }
    }
    let fullPlan: Int32Array = emptyPlan;
    if (collectPlan) {
      const total = chosen.results.reduce((n, r) => n + (r.plan?.length ?? 0), 0);
      fullPlan = new Int32Array(total);
      let off = 0;
      for (const r of chosen.results) {
        if (r.plan) fullPlan.set(r.plan, off);
        off += r.plan?.length ?? 0;
      }
    }
    const shards: ShardSummary[] = chosen.results.map((r, k) => ({
      shard: k, users: r.users, budget: chosen.shares[k], revenue: r.revenue, cost: r.cost, coupons: r.coupons, blocked: r.blocked, ...(planFiles[k] ? { planFile: planFiles[k] } : {}),
    }));
    return {
      engine: 'native', policy, method: methodUsed, lambda, budget, referenceSpend: referenceCost, revenue: plan.revenue, cost: plan.cost,
      roi: plan.revenue / Math.max(plan.cost, 1e-12), baRate: plan.cost / budget, rollouts, coupons: plan.coupons, blocked: plan.blocked,
      feasible: search.feasible, budgetNotBinding: search.budgetNotBinding, needsMoreThanLambdaMax: search.needsMoreThanLambdaMax, trace: search.trace,
      plan: fullPlan, users: users.reduce((a, b) => a + b, 0), rounds, wallMs: performance.now() - t0,
      shards, budgetSplit: 'natural-spend', runner: active.name, solveId, computeMs,
    };
  } finally {
    try {
      await runner?.close();
    } finally {
      if (ownedHandle) handle?.unload();
    }
  }
}

export type { SolveProgress };
