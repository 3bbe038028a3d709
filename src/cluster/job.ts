/**
 * Runs one shard job: the rollout of one shard of users at one λ, with or without its share of
 * the budget. The same function serves the in-process twin and the workers behind Redis, so a
 * shard's sums are the same bits wherever it runs. A worker keeps models and shard files
 * loaded between jobs (`JobCache`): the model is read once per process, not once per probe.
 */
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DataSchema } from '../data/schema.js';
import type { SyConfig } from '../data/synth.js';
import type { Trajectories } from '../data/trajectories.js';
import { ArgumentError } from '../errors.js';
import type { ModelMeta } from '../model/artifact.js';
import { readOnnx } from '../model/onnx.js';
import { loadNativeModel, type NativeModel } from '../native/index.js';
import { rolloutSlice, type SolveUsers } from '../solve/index.js';
import type { PolicyName } from '../policy/registry.js';
import type { ShardJob, ShardResult } from './types.js';

interface CachedFile<T> {
  mtimeMs: number;
  size: number;
  value: T;
}

/** Models and shard files a process keeps between jobs (a few of each, least recently used out). */
export class JobCache {
  private readonly models = new Map<string, CachedFile<NativeModel>>();
  private readonly files = new Map<string, CachedFile<Trajectories>>();

  constructor(
    private readonly maxModels = 4,
    private readonly maxFiles = 64,
  ) {}

  /** The model at `file`, loaded natively once (reloaded when the file changes). */
  model(file: string): NativeModel {
    const stat = statOf(file, 'model');
    const hit = this.models.get(file);
    if (hit && hit.mtimeMs === stat.mtimeMs && hit.size === stat.size) {
      this.models.delete(file);
      this.models.set(file, hit);
      return hit.value;
    }
    hit?.value.unload();
    this.models.delete(file);
    const value = loadNativeModel(readOnnx(file));
    this.models.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, value });
    while (this.models.size > this.maxModels) {
      const [oldest, entry] = this.models.entries().next().value as [string, CachedFile<NativeModel>];
      entry.value.unload();
      this.models.delete(oldest);
    }
    return value;
  }

  /**
   * The trajectories of a shard file, read once (reread when the file changes); read against
   * `meta` when a model decides (a category level the model knows but this shard's users lack
   * is a column of zeros, not another layout).
   */
  async trajectories(file: string, schema: DataSchema | undefined, meta?: ModelMeta): Promise<Trajectories> {
    const stat = statOf(file, 'users.file');
    const key = `${file}\0${JSON.stringify(schema ?? null)}\0${meta?.fingerprint ?? ''}`;
    const hit = this.files.get(key);
    if (hit && hit.mtimeMs === stat.mtimeMs && hit.size === stat.size) {
      this.files.delete(key);
      this.files.set(key, hit);
      return hit.value;
    }
    // DuckDB loads on first use
    const { trajectories } = meta ? await (await import('../solve/decide-batch.js')).readHistoryForModel(file, meta, { schema }) : await (await import('../data/ingest.js')).readTrajectories(file, { schema });
    this.files.delete(key);
    this.files.set(key, { mtimeMs: stat.mtimeMs, size: stat.size, value: trajectories });
    while (this.files.size > this.maxFiles) this.files.delete(this.files.keys().next().value as string);
    return trajectories;
  }

  /** Unloads every model (the process is done). */
  clear(): void {
    for (const m of this.models.values()) m.value.unload();
    this.models.clear();
    this.files.clear();
  }
}

function statOf(file: string, argument: string): { mtimeMs: number; size: number } {
  try {
    const s = statSync(file);
    return { mtimeMs: s.mtimeMs, size: s.size };
  } catch {
    throw new ArgumentError(argument, `${file}: no such file on this machine (workers read models and shard files by path: put them on a filesystem every worker sees)`);
  }
}

/** The users of a shard as solve() takes them. */
async function shardUsers(job: ShardJob, cache: JobCache, model: NativeModel | undefined): Promise<{ users: SolveUsers; ids: ArrayLike<number> | string[] } | undefined> {
  const u = job.users;
  if (u.kind === 'range') {
    if (!Number.isInteger(u.begin) || !Number.isInteger(u.end) || u.begin < 0 || u.end < u.begin || u.end > 0x100000000) throw new ArgumentError('users', `bad id range [${u.begin}, ${u.end})`);
    if (u.end === u.begin) return undefined;
    const ids = new Uint32Array(u.end - u.begin);
    for (let i = 0; i < ids.length; i++) ids[i] = u.begin + i;
    return { users: { ids }, ids };
  }
  if (u.kind === 'ids') {
    if (u.ids.length === 0) return undefined;
    return { users: { ids: u.ids, features: u.features }, ids: u.ids };
  }
  const t = await cache.trajectories(u.file, u.schema, model?.meta);
  if (t.users === 0) return undefined;
  return { users: t, ids: t.userIds };
}

/** Runs one shard job (a rollout of the shard) and returns its sums, and its plan when asked. */
export async function runShardJob(job: ShardJob, cache: JobCache, worker = 'local', preloaded?: NativeModel): Promise<ShardResult> {
  const t0 = performance.now();
  const model = preloaded ?? (job.model !== undefined ? cache.model(job.model) : undefined);
  const base: ShardResult = {
    solve: job.solve, probe: job.probe, shard: job.shard, lambda: job.lambda, users: 0, revenue: 0, cost: 0, coupons: 0, blocked: 0,
    revenueByRound: new Array<number>(job.rounds).fill(0), costByRound: new Array<number>(job.rounds).fill(0), worker, ms: 0,
  };
  const A = job.env.actionDims.length;
  const shard = await shardUsers(job, cache, model);
  if (!shard) {
    // an empty shard sums to zero and plans nothing
    if (job.kind === 'plan' && job.returnPlan) base.plan = new Int32Array(0);
    if (job.kind === 'plan' && job.planFile) base.planFile = await writePlanFile(job.planFile, [], new Int32Array(0), job.rounds, job.env);
    return { ...base, ms: performance.now() - t0 };
  }
  const budget = job.budget === null ? Infinity : job.budget > 0 ? job.budget : Number.MIN_VALUE;
  const r = await rolloutSlice({
    model, policy: job.policy as PolicyName, env: job.env, rounds: job.rounds, users: shard.users, lambda: job.lambda, budget,
    recordPlan: job.kind === 'plan' && (job.returnPlan || job.planFile !== undefined), threads: job.threads,
  });
  const result: ShardResult = {
    ...base, users: r.users, revenue: r.revenue, cost: r.cost, coupons: r.coupons, blocked: r.blocked,
    revenueByRound: Array.from(r.revenueByRound), costByRound: Array.from(r.costByRound),
  };
  if (job.kind === 'plan') {
    const plan = r.plan ?? new Int32Array(r.users * job.rounds * A);
    if (job.returnPlan) result.plan = plan;
    if (job.planFile) result.planFile = await writePlanFile(job.planFile, shard.ids, plan, job.rounds, job.env);
  }
  return { ...result, ms: performance.now() - t0 };
}

/**
 * A shard's plan as Parquet: one row per user and round, `user_id`, `round`, and the issued
 * coupon per action dimension (`action` for one dimension, `action_<name>` for several) as its
 * face value. Written to a temporary sibling and renamed, so a retried job never leaves half a file.
 */
export async function writePlanFile(file: string, ids: ArrayLike<number> | string[], plan: Int32Array, rounds: number, env: SyConfig): Promise<string> {
  const { INTEGER } = await import('@duckdb/node-api'); // on first use
  const { labelColumn, userIdColumn, writeColumns } = await import('../data/write.js');
  const A = env.actionDims.length;
  const cols = [
    userIdColumn(ids, (row) => ids[Math.floor(row / rounds)]),
    { name: 'round', type: INTEGER, sqlType: 'INTEGER', value: (row: number) => row % rounds },
    ...env.actionDims.map((d, j) => labelColumn(A === 1 ? 'action' : `action_${d.name}`, d.values, (row) => d.values[plan[row * A + j]])),
  ];
  await writeColumns(cols, ids.length * rounds, file, 1);
  return file;
}
