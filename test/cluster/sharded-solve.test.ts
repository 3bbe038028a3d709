/**
 * The sharded solve on BullMQ + Redis (issue 16): three `saco worker` processes on twelve
 * shards give the in-process twin's λ*, revenue, cost and plan bit for bit, also with a worker
 * SIGKILLed mid-probe and with a job delivered twice; Redis going away is a typed error; the
 * coordinator and the workers stop cleanly on SIGTERM. Each test starts its own redis-server on
 * a free 127.0.0.1 port (nothing else is reached) and kills it after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterError, readShardManifest, shardLog, solveSharded, startClusterWorker, type ShardedSolveResult } from '../../src/cluster/index.js';
import { budgetShares, orderResults } from '../../src/cluster/split.js';
import type { ShardJob, ShardResult } from '../../src/cluster/types.js';
import { readTrajectories } from '../../src/data/ingest.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { writeLog } from '../../src/data/write.js';
import { readOnnx } from '../../src/model/onnx.js';
import { generateSy } from '../../src/native/index.js';
import { solve, syEnvForModel, type SolveResult } from '../../src/solve/index.js';
import { tempDir } from '../helpers/fixtures.js';
import { SHARED_MODEL_TIMEOUT, sharedModel } from '../helpers/shared-model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = ['--import', 'tsx', path.join(root, 'src', 'cli.ts')];
const haveRedis = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].some(existsSync);
const USERS = 6000;
const SHARDS = 12;
// small locks so a killed worker's job comes back within a second
const FAST_LOCKS = ['--lock-ms', '1000', '--stalled-ms', '300'];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line matching `re` (already seen or to come). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function track(child: ChildProcess, name: string): Proc {
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let buf = '';
  const onData = (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stderr?.on('data', onData);
  child.stdout?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    lines,
    exited,
    waitFor(re, ms = 30_000) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: no line ${re} within ${ms} ms; got:\n${lines.join('\n')}`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    },
  };
}

async function startRedis(): Promise<{ url: string; proc: Proc; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = track(child, `redis:${port}`);
  await proc.waitFor(/Ready to accept connections/, 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    proc,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await proc.exited;
    },
  };
}

async function startWorker(url: string, name: string, env: Record<string, string> = {}, queue = 'saco-shards'): Promise<Proc> {
  const child = spawn(process.execPath, [...cli, 'worker', '--redis', url, '--name', name, '--queue', queue, '--verbose', ...FAST_LOCKS], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = track(child, name);
  await p.waitFor(/ready, taking jobs/, 60_000);
  return p;
}

async function stopWorker(p: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return p.exited;
}

const planOf = (r: SolveResult) => Buffer.from(r.plan.buffer, r.plan.byteOffset, r.plan.byteLength);

function expectSameBits(a: ShardedSolveResult, b: ShardedSolveResult): void {
  expect(b.lambda).toBe(a.lambda);
  expect(b.revenue).toBe(a.revenue);
  expect(b.cost).toBe(a.cost);
  expect(b.trace).toEqual(a.trace);
  expect(b.shards.map((s) => [s.budget, s.revenue, s.cost])).toEqual(a.shards.map((s) => [s.budget, s.revenue, s.cost]));
  expect(planOf(b).equals(planOf(a))).toBe(true);
}

describe.skipIf(!haveRedis)('sharded solve on BullMQ + Redis', () => {
  let modelPath = '';
  let env: ReturnType<typeof syEnvForModel>;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const workers: Proc[] = [];
  const faultWorkers: Proc[] = [];
  const healthyLines: string[][] = [];
  let twin: ShardedSolveResult;
  const base = () => ({ model: modelPath, users: USERS, budget: '0.5x' as const, env, shards: SHARDS });

  beforeAll(async () => {
    const [model, r] = await Promise.all([sharedModel('native'), startRedis()]);
    modelPath = model.path;
    env = syEnvForModel(readOnnx(modelPath).meta, 1);
    redis = r;
    const started = await Promise.all([
      ...['w1', 'w2', 'w3'].map((n) => startWorker(redis.url, n)),
      startWorker(redis.url, 'victim', { SACO_WORKER_TEST_DELAY_MS: '1500' }, 'faults'),
      startWorker(redis.url, 'hung', { SACO_WORKER_TEST_BLOCK_MS: '2500' }, 'faults'),
      startWorker(redis.url, 'leaving', { SACO_WORKER_TEST_DELAY_MS: '800' }, 'faults'),
    ]);
    workers.push(...started.slice(0, 3));
    faultWorkers.push(...started.slice(3));
    twin = await solveSharded(base());
  }, SHARED_MODEL_TIMEOUT);

  afterAll(async () => {
    await Promise.all([...workers, ...faultWorkers].map(stopWorker));
    await redis?.stop();
  }, 30_000);

  it('3 workers on 12 shards: λ*, revenue, cost and plan equal the in-process twin bit for bit, within 0.5% of the unsharded solve', async () => {
    const onRedis = await solveSharded({ ...base(), cluster: { redis: redis.url } });
    expectSameBits(twin, onRedis);
    expect(onRedis.runner).toBe(redis.url);
    expect(onRedis.shards).toHaveLength(SHARDS);
    expect(onRedis.cost).toBeLessThanOrEqual(onRedis.budget);
    expect(onRedis.baRate).toBeGreaterThanOrEqual(0.98);
    const plain = await solve({ model: modelPath, users: USERS, budget: '0.5x', env });
    expect(Math.abs(onRedis.revenue - plain.revenue) / plain.revenue).toBeLessThan(0.005);
    expect(onRedis.referenceSpend).toBeCloseTo(plain.referenceSpend, 6);
    // every worker took part
    for (const w of workers) expect(w.lines.some((l) => / done: /.test(l))).toBe(true);
    // the Oracle needs no model: the same on its own
    const oracle = { users: USERS, budget: '0.5x' as const, env, policy: 'oracle' as const, shards: SHARDS };
    expectSameBits(await solveSharded(oracle), await solveSharded({ ...oracle, cluster: { redis: redis.url } }));
  });

  it('faults: a worker SIGKILLed from the second probe on, a job delivered twice, a worker stopped by SIGTERM mid-job: the result is unchanged', async () => {
    // on a queue of their own, beside two healthy in-process workers: a slow worker (each job
    // held 1.5 s) SIGKILLed while it holds a job of probe 2 or later; a worker that hangs 2.5 s on
    // its first job (its 1 s lock expires: the job runs again elsewhere and its own late
    // completion is refused); a worker sent SIGTERM while it holds a job (it finishes it, exits 143)
    const queue = 'faults';
    const healthy = await Promise.all(
      ['h1', 'h2'].map((name) => {
        const lines: string[] = [];
        healthyLines.push(lines);
        return startClusterWorker({ redis: redis.url, queue, name, lockDurationMs: 1000, stalledIntervalMs: 300, onEvent: (e) => void (e.type === 'done' && lines.push(`job ${e.id} done`)) });
      }),
    );
    try {
      const [victim, hung, leaving] = faultWorkers;
      const solving = solveSharded({ ...base(), cluster: { redis: redis.url, queue } });
      const outcome = solving.then((r) => r, (e: unknown) => e);
      const leavingLine = await leaving.waitFor(/job \S+\.([1-9]\d*)\.\d+ started/, 60_000);
      leaving.child.kill('SIGTERM');
      const killedLine = await victim.waitFor(/job \S+\.([2-9]|\d\d+)\.\d+ started/, 60_000);
      victim.child.kill('SIGKILL');
      const result = await outcome;
      if (!(result instanceof Object) || !('lambda' in result)) throw result;
      expectSameBits(twin, result as ShardedSolveResult);
      const jobOf = (line: string) => /job (\S+) started/.exec(line)?.[1] as string;
      const doneBy = (job: string) => [...faultWorkers.map((w) => w.lines), ...healthyLines].filter((lines) => lines.some((l) => l.includes(`job ${job} done`))).length;
      // the killed worker's job: done by someone else, once
      expect((await victim.exited).signal).toBe('SIGKILL');
      const killedJob = jobOf(killedLine);
      expect(victim.lines.some((l) => l.includes(`job ${killedJob} done`))).toBe(false);
      expect(doneBy(killedJob)).toBe(1);
      // the hung worker's job ran twice: on it and elsewhere
      const hungJob = jobOf(await hung.waitFor(/job \S+ started/));
      expect(healthyLines.some((lines) => lines.some((l) => l.includes(`job ${hungJob} done`)))).toBe(true);
      // the worker stopped by SIGTERM finished its job first
      expect((await leaving.exited).code).toBe(143);
      expect(leaving.lines.some((l) => l.includes(`job ${jobOf(leavingLine)} done`))).toBe(true);
      expect((await stopWorker(hung)).code).toBe(143);
    } finally {
      await Promise.all(healthy.map((w) => w.close()));
    }
    // the checks that keep any duplicate out of the sums
    const jobs = [0, 1].map((shard) => ({ solve: 's', probe: 3, shard, lambda: 0.5 })) as ShardJob[];
    const r = (shard: number) => ({ solve: 's', probe: 3, shard, lambda: 0.5, revenue: 1, cost: 1 }) as ShardResult;
    expect(orderResults([r(1), r(0)], jobs).map((x) => x.shard)).toEqual([0, 1]);
    expect(() => orderResults([r(0), r(1), r(1)], jobs)).toThrow(/came back twice/);
    expect(() => orderResults([r(0), { ...r(1), probe: 2 }], jobs)).toThrow(/does not belong/);
  });

  it('the coordinator stops on SIGTERM and leaves no job behind; Redis killed mid-solve is a typed error, never a plan', async () => {
    const own = await startRedis();
    // one slow in-process worker on a Redis of this test's own
    const slow = await startClusterWorker({ redis: own.url, name: 'slow', testDelayMs: 300, lockDurationMs: 1000, stalledIntervalMs: 300 });
    const queue = new Queue('saco-shards', { connection: { url: own.url, maxRetriesPerRequest: null }, prefix: 'saco' });
    queue.on('error', () => undefined);
    try {
      const child = spawn(process.execPath, [...cli, 'solve', '--model', modelPath, '--users', String(USERS), '--budget', '0.5x', '--shards', String(SHARDS), '--redis', own.url], {
        cwd: root, env: { ...process.env, SACO_PROGRESS: 'lines' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      const coordinator = track(child, 'coordinator');
      // wait until its first probe is queued, then stop it
      const deadline = Date.now() + 60_000;
      while ((await queue.getJobCounts('waiting', 'active')).waiting === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGTERM');
      const exit = await coordinator.exited;
      expect(exit.code, coordinator.lines.join('\n')).toBe(143);
      await new Promise((r) => setTimeout(r, 1000)); // the job in flight finishes (its parent is gone)
      const counts = await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'waiting-children');
      expect(counts).toMatchObject({ waiting: 0, delayed: 0, prioritized: 0, 'waiting-children': 0 });
      const client = (await queue.client) as unknown as { keys(pattern: string): Promise<string[]> };
      expect(await client.keys('saco:saco-probes-*')).toEqual([]);
      expect(await client.keys('saco:saco-solve:*')).toEqual([]);
      await queue.close();

      // Redis killed during the second probe: CLUSTER_REDIS_LOST, no plan
      let probes = 0;
      const solving = solveSharded({ ...base(), shards: 2, policy: 'oracle', model: undefined, cluster: { redis: own.url, reconnectMs: 500 }, onProgress: (p) => void (probes = p.rollouts) });
      const outcome = solving.then(() => 'a plan', (e: unknown) => e);
      while (probes < 2 && Date.now() < deadline + 60_000) await new Promise((r) => setTimeout(r, 20));
      const t0 = Date.now();
      await own.stop();
      const error = await outcome;
      expect(error).toBeInstanceOf(ClusterError);
      expect((error as ClusterError).code).toBe('CLUSTER_REDIS_LOST');
      expect(Date.now() - t0).toBeLessThan(5000);
      // an unreachable Redis at the start is a typed error too
      await expect(solveSharded({ ...base(), policy: 'oracle', cluster: { redis: own.url, connectTimeoutMs: 500 } })).rejects.toMatchObject({ code: 'CLUSTER_REDIS_UNREACHABLE' });
    } finally {
      await queue.close().catch(() => undefined);
      await slow.close();
      await own.stop();
    }
  });

  it('saco shard: a log split by user hash; its shard files (and the same users in memory) plan the same on Redis as in process, each plan written next to its shard', async () => {
    const tmp = tempDir();
    try {
      const log = tmp.file('users.parquet');
      await writeLog(syLogToInteractionLog(await generateSy({ ...env, users: 600, seed: 1 })), log);
      const dir = path.join(tmp.dir, 'shards');
      const m = await shardLog(log, 3, dir);
      expect(m.users).toBe(600);
      expect(m.files.reduce((n, f) => n + f.users, 0)).toBe(600);
      const users = readShardManifest(dir).asUsers;
      const opts = { model: modelPath, users, budget: '0.5x' as const, env };
      const local = await solveSharded(opts);
      const onRedis = await solveSharded({ ...opts, cluster: { redis: redis.url } });
      expectSameBits(local, onRedis);
      expect(onRedis.shards.every((s) => s.planFile && existsSync(s.planFile))).toBe(true);
      expect(onRedis.users).toBe(600);
      // the same users as trajectories in memory: their ids and features travel in the jobs
      const { trajectories } = await readTrajectories(log);
      const inline = { model: modelPath, users: trajectories, budget: '0.5x' as const, env, shards: 3 };
      expectSameBits(await solveSharded(inline), await solveSharded({ ...inline, cluster: { redis: redis.url } }));
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses what cannot be sharded, with a clear error', async () => {
    await expect(solveSharded({ ...base(), method: 'slsqp' })).rejects.toThrow(/bisection/);
    await expect(solveSharded({ ...base(), model: readOnnx(modelPath), cluster: { redis: redis.url } })).rejects.toThrow(/path every worker can read/);
    expect(budgetShares(100, [1, 3], [5, 5]).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(100);
    expect(budgetShares(100, [0, 0], [1, 3])[1]).toBeCloseTo(75, 6);
  });
});
