/**
 * The sharded solve's vocabulary: what a coordinator sends a worker (one rollout of one shard
 * of users), what comes back, and the options of `solveSharded()`. A job and its result are
 * plain JSON (numbers round-trip exactly through JSON), so a shard's sums are the same bits
 * whether the shard ran in this process or on a worker behind Redis.
 */
import { SacoError } from '../errors.js';
import type { SyConfig } from '../data/synth.js';
import type { DataSchema } from '../data/schema.js';
import type { SolveOptions, SolveResult, SolveUsers } from '../solve/index.js';

/**
 * A failure of the sharded solve itself: `CLUSTER_REDIS_UNREACHABLE` (no Redis at the URL),
 * `CLUSTER_REDIS_LOST` (Redis went away or lost its data mid-solve: no plan is returned),
 * `CLUSTER_JOB_FAILED` (a worker failed a shard after its retries; `workerCode` holds the
 * worker's error code when it was a SacoError), `CLUSTER_TIMEOUT` (no worker finished a probe in
 * time), `CLUSTER_ABORTED` (the caller's signal), `CLUSTER_RESULT_INVALID` (a shard's result
 * that does not belong to the probe: never summed), `CLUSTER_QUEUE_ERROR` (Redis refused a
 * probe's jobs), `CLUSTER_REDIS_URL` (not a redis:// URL).
 */
export class ClusterError extends SacoError {
  /** The code of the error a worker raised, e.g. `DATA_FILE_MISSING` (CLUSTER_JOB_FAILED only). */
  readonly workerCode?: string;
  constructor(code: string, message: string, workerCode?: string) {
    super(code, message);
    this.workerCode = workerCode;
  }
}

/** Which users a shard holds. */
export type ShardUsers =
  /** SY users begin..end-1 (features drawn from the environment's seed by id). */
  | { kind: 'range'; begin: number; end: number }
  /** Explicit SY user ids and optionally their static features ([users, env.features]). */
  | { kind: 'ids'; ids: Uint32Array; features?: Float64Array }
  /** A Parquet (or CSV) file of logged users, read with `schema`: a file written by `saco shard`. */
  | { kind: 'file'; file: string; schema?: DataSchema };

/** The same, as JSON travels: typed arrays as base64 of their bytes (little-endian, exact). */
export type WireShardUsers = Exclude<ShardUsers, { kind: 'ids' }> | { kind: 'ids'; ids: string; features?: string };

/** One job: one rollout of one shard. Its id is `<solve>.<probe>.<shard>`. */
export interface ShardJob<U = ShardUsers> {
  /** Format version of the job. */
  v: 1;
  /** The solve it belongs to (unique per solve). */
  solve: string;
  /** 0 the reference rollout, then one number per rollout of the search, in order. */
  probe: number;
  shard: number;
  /** Unbudgeted sums of the λ search (and the reference), or a budget-enforced plan. */
  kind: 'probe' | 'plan';
  policy: string;
  /** Absolute path of the model file (policies that need one); workers load it once. */
  model?: string;
  env: SyConfig;
  rounds: number;
  lambda: number;
  /** This shard's share of the budget; null: no budget. */
  budget: number | null;
  users: U;
  /** Return the plan (kind 'plan'). */
  returnPlan: boolean;
  /** Write the plan here (kind 'plan'), a Parquet file: user_id, round, one column per action dimension. */
  planFile?: string;
  /** Native threads on the worker (0: all its cores); results do not depend on it. */
  threads: number;
}

/** What a shard's rollout sums to. */
export interface ShardResult<P = Int32Array> {
  solve: string;
  probe: number;
  shard: number;
  lambda: number;
  users: number;
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  revenueByRound: number[];
  costByRound: number[];
  /** [users, rounds, action dims] (kind 'plan' with returnPlan). */
  plan?: P;
  planFile?: string;
  /** Who computed it (a worker's name, or 'local'), and how long the rollout took. */
  worker: string;
  ms: number;
}

export type WireShardResult = ShardResult<string>;

/** The Redis side of a sharded solve. */
export interface ClusterOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  redis: string;
  /** BullMQ key prefix (default 'saco'): coordinator and workers must agree. */
  prefix?: string;
  /** The queue the workers take shard jobs from (default 'saco-shards'). */
  queue?: string;
  /** Tries per shard job when a worker fails it with an unexpected error (default 3); bad input fails at once. */
  attempts?: number;
  /** How long Redis may be unreachable mid-solve before the solve fails with CLUSTER_REDIS_LOST (default 5000 ms). */
  reconnectMs?: number;
  /** How long to wait for Redis at the start (default 5000 ms): CLUSTER_REDIS_UNREACHABLE after it. */
  connectTimeoutMs?: number;
  /** How long one probe may take before CLUSTER_TIMEOUT (default 30 min; it waits for workers to show up). */
  probeTimeoutMs?: number;
}

/** A population already split into files by `saco shard` (one shard per file). */
export interface ShardFiles {
  shardFiles: string[];
  /** How to read them (default: the column names saco synth writes). */
  schema?: DataSchema;
  /** Write each shard's plan next to its file (`<name>.plan.parquet`); default true. */
  writePlans?: boolean;
}

export interface ShardedSolveOptions extends Omit<SolveOptions, 'users' | 'engine' | 'ort'> {
  users: SolveUsers | ShardFiles;
  /** Shards of users (default: the number of files, else 16 on Redis and 1 in process). Users are split into contiguous ranges in their order. */
  shards?: number;
  /** Run the shards on workers behind this Redis; absent: in this process, one shard after another. */
  cluster?: ClusterOptions;
  /** Return the whole plan in the result (default true; false: only plan files, for populations too large for one process). */
  collectPlan?: boolean;
  /** Stops the solve: pending jobs are removed, the promise rejects with CLUSTER_ABORTED. */
  signal?: AbortSignal;
}

/** One shard of the plan. */
export interface ShardSummary {
  shard: number;
  users: number;
  /** Its share of the budget. */
  budget: number;
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  planFile?: string;
}

export interface ShardedSolveResult extends SolveResult {
  engine: 'native';
  shards: ShardSummary[];
  /** How the budget was split across shards. */
  budgetSplit: 'natural-spend';
  /** 'local' (in process) or the Redis URL (password removed). */
  runner: string;
  /** Solve id (job ids are `<solve>.<probe>.<shard>`). */
  solveId: string;
  /** Time the shards' rollouts took, summed over every job (wherever they ran): wallMs minus this, with one worker, is the queue's cost. */
  computeMs: number;
}
