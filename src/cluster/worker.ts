/**
 * A worker of the sharded solve (`saco worker --redis URL`): takes shard jobs from the queue,
 * rolls the shard out (the model and shard files loaded once per process, see JobCache) and
 * returns the sums. One job at a time by default: a rollout already uses every core.
 *
 * Faults: bad input (any SacoError: a missing file, a model that does not fit) fails the job at
 * once, without retries, and the coordinator stops with the reason; anything else is retried.
 * A worker that dies mid-job is found by BullMQ's stalled check after `lockDurationMs` and its
 * job runs elsewhere. `close()` (SIGTERM in the CLI) takes no new job, finishes the ones in
 * flight, and returns; after `graceMs` it stops waiting, and the jobs still held are released
 * to the stalled check (run again elsewhere, never counted twice).
 */
import { hostname } from 'node:os';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import { SacoError } from '../errors.js';
import { connectionOf, DEFAULT_PREFIX, DEFAULT_QUEUE, redactUrl } from './redis.js';
import { JobCache, runShardJob } from './job.js';
import { resultToWire, usersFromWire } from './split.js';
import { ClusterError, type ShardJob, type WireShardResult, type WireShardUsers } from './types.js';

export interface ClusterWorkerOptions {
  redis: string;
  prefix?: string;
  queue?: string;
  /** Jobs at once (default 1). */
  concurrency?: number;
  /** Native threads per rollout (0: all cores). */
  threads?: number;
  /** A job whose worker stops renewing its lock for this long is taken back (default 30000 ms). */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (default 30000 ms). */
  stalledIntervalMs?: number;
  /** Times a job may stall before it fails (default 3). */
  maxStalledCount?: number;
  /** How long close() waits for jobs in flight (default 60000 ms). */
  graceMs?: number;
  /** How long to wait for Redis at the start (default 10000 ms): CLUSTER_REDIS_UNREACHABLE after it. */
  connectTimeoutMs?: number;
  /** Shown in Redis (CLIENT LIST) and in results (default host:pid). */
  name?: string;
  onEvent?: (event: WorkerEvent) => void;
  /**
   * For fault tests only: wait this long before each job (async: the lock is renewed), or block
   * the event loop this long before the first job (sync: the lock is not renewed, so the job
   * stalls, runs again elsewhere, and this worker's late completion is refused).
   */
  testDelayMs?: number;
  testBlockMs?: number;
}

export type WorkerEvent =
  | { type: 'start'; id: string; probe: number; shard: number; attempt: number }
  | { type: 'done'; id: string; probe: number; shard: number; users: number; ms: number }
  | { type: 'failed'; id: string; reason: string }
  | { type: 'redis'; state: 'lost' | 'back' };

export interface ClusterWorker {
  readonly name: string;
  /** Jobs completed so far. */
  readonly processed: number;
  /** Takes no new job, waits for the ones in flight (up to graceMs), disconnects. */
  close(): Promise<{ finished: boolean }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a worker on the shard queue; resolves once it is connected. */
export async function startClusterWorker(o: ClusterWorkerOptions): Promise<ClusterWorker> {
  const connection = connectionOf(o.redis);
  const name = o.name ?? `${hostname()}:${process.pid}`;
  const cache = new JobCache();
  const emit = o.onEvent ?? (() => undefined);
  let processed = 0;
  let blocked = false;
  const processor = async (job: Job<ShardJob<WireShardUsers>>): Promise<WireShardResult> => {
    const data = job.data;
    if (data?.v !== 1) throw new UnrecoverableError(`CLUSTER_JOB_INVALID: job ${job.id} is not a saco shard job of format 1 (a coordinator of another saco version?)`);
    emit({ type: 'start', id: String(job.id), probe: data.probe, shard: data.shard, attempt: job.attemptsMade + 1 });
    if (o.testDelayMs) await sleep(o.testDelayMs);
    if (o.testBlockMs && !blocked) {
      blocked = true;
      const until = Date.now() + o.testBlockMs;
      while (Date.now() < until) {
        // blocks the event loop: no lock renewal, as a hung or overloaded process would
      }
    }
    try {
      const r = await runShardJob({ ...data, users: usersFromWire(data.users) }, cache, name);
      processed++;
      emit({ type: 'done', id: String(job.id), probe: data.probe, shard: data.shard, users: r.users, ms: r.ms });
      return resultToWire(r);
    } catch (e) {
      // bad input fails the same way on every worker: no retry
      if (e instanceof SacoError) throw new UnrecoverableError(`${e.code}: ${e.message}`);
      throw e;
    }
  };
  const worker = new Worker<ShardJob<WireShardUsers>, WireShardResult>(o.queue ?? DEFAULT_QUEUE, processor, {
    connection,
    prefix: o.prefix ?? DEFAULT_PREFIX,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockDurationMs ?? 30_000,
    stalledInterval: o.stalledIntervalMs ?? 30_000,
    maxStalledCount: o.maxStalledCount ?? 3,
    name,
    autorun: false,
  });
  worker.on('error', () => undefined); // connection errors: reported through 'redis' events below
  worker.on('failed', (job, err) => emit({ type: 'failed', id: String(job?.id), reason: err.message }));
  const timeout = o.connectTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const ready = worker.waitUntilReady();
    ready.catch(() => undefined); // after a timeout it may still fail: nobody waits for it then
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ClusterError('CLUSTER_REDIS_UNREACHABLE', `no Redis answered at ${redactUrl(o.redis)} within ${timeout} ms (is redis-server running?)`)), timeout))),
    ]);
  } catch (e) {
    await Promise.race([worker.close(true).catch(() => undefined), sleep(1000)]);
    await Promise.race([worker.disconnect().catch(() => undefined), sleep(1000)]);
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const client = (await worker.client) as unknown as { on(event: string, fn: () => void): void };
  let lost = false;
  let stopping = false;
  client.on('close', () => {
    if (!lost && !stopping) emit({ type: 'redis', state: 'lost' });
    lost = true;
  });
  client.on('ready', () => {
    if (lost) emit({ type: 'redis', state: 'back' });
    lost = false;
  });
  const running = worker.run().catch(() => undefined);
  let closing: Promise<{ finished: boolean }> | undefined;
  return {
    name,
    get processed() {
      return processed;
    },
    close() {
      closing ??= (async () => {
        stopping = true;
        const grace = o.graceMs ?? 60_000;
        let graceTimer: NodeJS.Timeout | undefined;
        // with Redis away there is nothing to hand back: just stop
        const finished = lost
          ? false
          : await Promise.race([worker.close().then(() => true), new Promise<boolean>((resolve) => (graceTimer = setTimeout(() => resolve(false), grace)))]);
        clearTimeout(graceTimer);
        if (!finished) {
          await Promise.race([worker.close(true).catch(() => undefined), sleep(2000)]);
          await Promise.race([worker.disconnect().catch(() => undefined), sleep(1000)]);
        }
        await Promise.race([running, sleep(2000)]);
        cache.clear();
        return { finished };
      })();
      return closing;
    },
  };
}
