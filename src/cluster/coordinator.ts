/**
 * The Redis side of the coordinator: each probe of the search is one BullMQ flow, a parent job
 * with one child job per shard. Workers (`saco worker`) take the children from the shared queue
 * ('saco-shards'); when the last child is done, BullMQ hands the parent to this coordinator's
 * own worker on a queue of its own ('saco-probes-<solve>'), which reads the children's sums.
 *
 * Ids: a child is `<solve>.<probe>.<shard>` and the parent `<solve>.<probe>`. BullMQ keeps one
 * value per child key in the parent, and a worker whose lock expired (its job was handed to
 * another worker) cannot complete it, so a retried or duplicated job is counted once; the sums
 * are checked again (one result per shard, of this probe) before they are added.
 *
 * Faults: a worker that dies mid-job stops renewing its lock; BullMQ's stalled-job check (run by
 * every live worker) puts the job back and another worker runs it: same inputs, same bits.
 * Redis unreachable for longer than `reconnectMs`, or back without this solve's keys (a
 * restart that lost its data), fails the solve with CLUSTER_REDIS_LOST: no plan is returned
 * from a half-lost search.
 */
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import type { ClusterOptions, ShardJob, ShardResult, WireShardResult } from './types.js';
import { ClusterError } from './types.js';
import { resultFromWire, usersToWire } from './split.js';
import { connectionOf, DEFAULT_PREFIX, DEFAULT_QUEUE, redactUrl } from './redis.js';
import type { ShardRunner } from './index.js';

interface Pending {
  jobs: ShardJob[];
  resolve: (results: ShardResult[]) => void;
  reject: (e: unknown) => void;
}

type RedisClientLike = { on(event: string, fn: (...args: unknown[]) => void): unknown; exists(key: string): Promise<number>; status?: string };

/** Waits for `p`, or fails with `error` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const quietly = async (p: Promise<unknown> | undefined): Promise<void> => {
  try {
    await p;
  } catch {
    // cleanup is best effort
  }
};

/** Waits for `p` at most `ms`, ignoring its outcome (closing connections to a Redis that is gone can hang). */
const bounded = (p: Promise<unknown> | undefined, ms: number): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    quietly(p).then(() => {
      clearTimeout(t);
      resolve();
    });
  });

/** A workerCode and a readable reason from BullMQ's failedReason ("CODE: message"). */
function workerFailure(reason: string): { code?: string; message: string } {
  const m = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(reason);
  return m ? { code: m[1], message: m[2] } : { message: reason };
}

export class RedisRunner implements ShardRunner {
  readonly name: string;
  private readonly pending = new Map<string, Pending>();
  /** Parents of probes that did not finish (removed with their children on close). */
  private readonly outstanding = new Set<string>();
  private failure: ClusterError | undefined;
  private lostTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly sentinel: string;

  private constructor(
    private readonly options: Required<Pick<ClusterOptions, 'prefix' | 'queue' | 'attempts' | 'reconnectMs' | 'probeTimeoutMs'>> & { redis: string },
    private readonly solveId: string,
    private readonly shardQueue: Queue,
    private readonly flow: FlowProducer,
    private readonly probeQueue: Queue,
    private probeWorker: Worker | undefined,
    private readonly client: RedisClientLike,
    private readonly signal?: AbortSignal,
  ) {
    this.name = redactUrl(options.redis);
    this.sentinel = `${options.prefix}:saco-solve:${solveId}`;
  }

  /**
   * Connects to Redis (CLUSTER_REDIS_UNREACHABLE after `connectTimeoutMs`) and starts the
   * coordinator's worker for this solve's parent jobs.
   */
  static async open(o: ClusterOptions, solveId: string, signal?: AbortSignal): Promise<RedisRunner> {
    const connection = connectionOf(o.redis);
    const options = {
      redis: o.redis,
      prefix: o.prefix ?? DEFAULT_PREFIX,
      queue: o.queue ?? DEFAULT_QUEUE,
      attempts: o.attempts ?? 3,
      reconnectMs: o.reconnectMs ?? 5000,
      probeTimeoutMs: o.probeTimeoutMs ?? 30 * 60_000,
    };
    const connectTimeout = o.connectTimeoutMs ?? 5000;
    const shardQueue = new Queue(options.queue, { connection, prefix: options.prefix });
    const flow = new FlowProducer({ connection, prefix: options.prefix });
    const probeQueue = new Queue(`saco-probes-${solveId}`, { connection, prefix: options.prefix });
    const noop = () => undefined;
    // errors surface through the watch on the connection below; unhandled 'error' events would crash the process
    shardQueue.on('error', noop);
    flow.on('error', noop);
    probeQueue.on('error', noop);
    let client: RedisClientLike;
    try {
      const ready = Promise.all([shardQueue.waitUntilReady(), flow.waitUntilReady(), probeQueue.waitUntilReady()]);
      ready.catch(() => undefined); // after a timeout it may still fail: nobody waits for it then
      await within(ready, connectTimeout, () =>
        new ClusterError('CLUSTER_REDIS_UNREACHABLE', `no Redis answered at ${redactUrl(o.redis)} within ${connectTimeout} ms (is redis-server running? start one with: redis-server --port 6379)`),
      );
      client = (await shardQueue.client) as unknown as RedisClientLike;
      await (client as unknown as { set(k: string, v: string, ex: 'EX', s: number): Promise<unknown> }).set(`${options.prefix}:saco-solve:${solveId}`, String(Date.now()), 'EX', 7 * 24 * 3600);
    } catch (e) {
      await Promise.all([shardQueue.disconnect(), flow.disconnect(), probeQueue.disconnect()].map((p) => bounded(p, 1000)));
      await Promise.all([shardQueue.close(), flow.close(), probeQueue.close()].map((p) => bounded(p, 1000)));
      throw e;
    }
    const runner = new RedisRunner(options, solveId, shardQueue, flow, probeQueue, undefined, client, signal);
    runner.watch();
    runner.probeWorker = new Worker(probeQueue.name, (job) => runner.collect(job), { connection, prefix: options.prefix, concurrency: 1, autorun: true });
    runner.probeWorker.on('error', noop);
    return runner;
  }

  /** Redis going away: a grace of reconnectMs, then CLUSTER_REDIS_LOST; back without our keys: lost at once. */
  private watch(): void {
    this.client.on('close', () => {
      if (this.closed || this.failure || this.lostTimer) return;
      this.lostTimer = setTimeout(() => {
        this.fail(new ClusterError('CLUSTER_REDIS_LOST', `Redis at ${this.name} went away mid-solve and did not come back within ${this.options.reconnectMs} ms: the solve stopped without a plan`));
      }, this.options.reconnectMs);
    });
    this.client.on('ready', () => {
      if (!this.lostTimer) return;
      clearTimeout(this.lostTimer);
      this.lostTimer = undefined;
      this.client.exists(this.sentinel).then(
        (n) => {
          if (n === 0) this.fail(new ClusterError('CLUSTER_REDIS_LOST', `Redis at ${this.name} came back without this solve's jobs (restarted without persistence?): the solve stopped without a plan`));
        },
        () => undefined,
      );
    });
    this.signal?.addEventListener('abort', () => this.fail(new ClusterError('CLUSTER_ABORTED', 'the sharded solve was stopped')), { once: true });
  }

  private fail(e: ClusterError): void {
    if (this.failure) return;
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
  }

  /** The parent job of a probe: all its children are done (or one failed for good). */
  private async collect(job: Job): Promise<number> {
    const pending = this.pending.get(job.id as string);
    const failed = await job.getIgnoredChildrenFailures();
    const failedKeys = Object.keys(failed);
    if (failedKeys.length > 0) {
      const key = failedKeys[0];
      const shard = key.slice(key.lastIndexOf('.') + 1);
      const { code, message } = workerFailure(failed[key]);
      pending?.reject(new ClusterError('CLUSTER_JOB_FAILED', `shard ${shard} failed on a worker: ${message}`, code));
      return 0;
    }
    const values = await job.getChildrenValues<WireShardResult>();
    pending?.resolve(Object.values(values).map(resultFromWire));
    return Object.keys(values).length;
  }

  async run(jobs: ShardJob[]): Promise<ShardResult[]> {
    if (this.failure) throw this.failure;
    const probe = jobs[0].probe;
    const parentId = `${this.solveId}.${probe}`;
    let timer: NodeJS.Timeout | undefined;
    this.outstanding.add(parentId);
    const done = new Promise<ShardResult[]>((resolve, reject) => {
      this.pending.set(parentId, { jobs, resolve, reject });
      timer = setTimeout(
        () => reject(new ClusterError('CLUSTER_TIMEOUT', `probe ${probe} did not finish within ${this.options.probeTimeoutMs} ms: are workers running on queue '${this.options.queue}' (saco worker --redis ${this.name})?`)),
        this.options.probeTimeoutMs,
      );
    });
    try {
      const added = this.flow.add({
        name: 'probe',
        queueName: this.probeQueue.name,
        data: { solve: this.solveId, probe, shards: jobs.length },
        opts: { jobId: parentId, removeOnComplete: true, removeOnFail: true },
        children: jobs.map((job) => ({
          name: job.kind,
          queueName: this.options.queue,
          data: { ...job, users: usersToWire(job.users) },
          opts: {
            jobId: `${parentId}.${job.shard}`,
            attempts: this.options.attempts,
            backoff: { type: 'fixed', delay: 200 },
            // the parent runs as soon as a child fails for good: the solve stops with its reason
            continueParentOnFailure: true,
            removeOnComplete: true,
            removeOnFail: { age: 3600, count: 1000 },
          },
        })),
      });
      // a flow that cannot be added (Redis gone, or refusing it) is a typed error too; its late failure is nobody's
      const addedOrFailed = added.then(
        () => undefined,
        (e: unknown) => {
          throw this.failure ?? new ClusterError('CLUSTER_QUEUE_ERROR', `probe ${probe} could not be queued on ${this.name}: ${(e as Error)?.message ?? String(e)}`);
        },
      );
      addedOrFailed.catch(() => undefined);
      await Promise.race([addedOrFailed, done]);
      const results = await done;
      this.outstanding.delete(parentId);
      return results;
    } finally {
      clearTimeout(timer);
      this.pending.delete(parentId);
    }
  }

  /**
   * Stops the coordinator's worker and removes what this solve left in Redis (pending jobs of
   * an aborted probe, its parent queue, its sentinel). After a lost Redis it only disconnects.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lostTimer);
    const lost = this.failure?.code === 'CLUSTER_REDIS_LOST';
    if (lost) {
      await Promise.all([this.probeWorker?.disconnect(), this.shardQueue.disconnect(), this.flow.disconnect(), this.probeQueue.disconnect()].map((p) => bounded(p, 1000)));
      await Promise.all([this.probeWorker?.close(true), this.shardQueue.close(), this.flow.close(), this.probeQueue.close()].map((p) => bounded(p, 1000)));
      return;
    }
    const cleanup = async () => {
      // an unfinished probe: its children still waiting are removed, then its parent (a child in
      // flight cannot be removed: it finishes, finds no parent, and is dropped on completion)
      for (const parentId of this.outstanding) {
        const parent = await this.probeQueue.getJob(parentId);
        if (!parent) continue;
        const deps = await parent.getDependencies({ unprocessed: { count: 100_000 } }).catch(() => ({ unprocessed: [] as string[] }));
        for (const key of deps.unprocessed ?? []) await quietly(this.shardQueue.remove(key.slice(key.lastIndexOf(':') + 1)));
        await quietly(this.probeQueue.remove(parentId, { removeChildren: false }));
      }
      await quietly(this.probeWorker?.close(true));
      await quietly(this.probeQueue.obliterate({ force: true }));
      await quietly((this.client as unknown as { del(k: string): Promise<number> }).del(this.sentinel));
      await Promise.all([this.shardQueue.close(), this.flow.close(), this.probeQueue.close()].map(quietly));
    };
    try {
      await within(cleanup(), 10_000, () => new Error('cleanup timed out'));
    } catch {
      await Promise.all([this.probeWorker?.disconnect(), this.shardQueue.disconnect(), this.flow.disconnect(), this.probeQueue.disconnect()].map((p) => bounded(p, 1000)));
    }
  }
}
