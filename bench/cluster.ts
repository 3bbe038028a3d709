/**
 * The sharded solve on BullMQ + Redis (issue 16), on this machine: a local redis-server on a
 * free port and `saco worker` processes. Two rows:
 *  - the queue's per-probe overhead: one probe (a BullMQ flow, one child per shard) over empty
 *    shards, round trip through Redis and one worker process, for 1, 12 and 64 shards;
 *  - a solve of N users x 10 rounds (default-sized CODT) in process (unsharded, and the 8-shard
 *    twin) against the same 8 shards through the queue with one worker. 2 cores cannot show a
 *    speed-up; the ratio is the queue's cost. N is 100k by default (`--cluster-users=N`), and
 *    the 1M x 10 row of the issue is extrapolated from it (work per user is constant).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { solveSharded } from '../src/cluster/index.js';
import { RedisRunner } from '../src/cluster/coordinator.js';
import { shardRanges } from '../src/cluster/split.js';
import type { ShardJob } from '../src/cluster/types.js';
import { resolveSyConfig } from '../src/data/synth.js';
import { writeOnnx } from '../src/model/onnx.js';
import { loadNativeModel } from '../src/native/index.js';
import { solve } from '../src/solve/index.js';
import { defaultSizedModel } from './solve.js';
import { time, type Timing } from './harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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

/** Starts `cmd` and resolves once a line of its output matches `ready`. */
function startUntil(cmd: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready:\n${out}`)));
  });
}

export interface ClusterBench {
  timings: Timing[];
  overheadMs: Array<{ shards: number; msPerProbe: number }>;
  solve: { users: number; rounds: number; shards: number; rollouts: number; plainMs: number; twinMs: number; queueMs: number; outsideTwinMs: number; outsideQueueMs: number; overheadPerProbeMs: number; identical: boolean };
}

export async function benchCluster(options: { quick?: boolean; users?: number } = {}): Promise<ClusterBench> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'saco-bench-cluster-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const redis = await startUntil('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/);
  let worker: ChildProcess | undefined;
  const timings: Timing[] = [];
  try {
    worker = await startUntil(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), 'worker', '--redis', url], /ready, taking jobs/);
    const env = resolveSyConfig({ seed: 1, rounds: 10, users: 1 });

    // per-probe round trip with empty shards
    const overheadMs: ClusterBench['overheadMs'] = [];
    const probes = options.quick ? 20 : 100;
    for (const shards of [1, 12, 64]) {
      const solveId = `bench-${shards}-${Date.now().toString(36)}`;
      const runner = await RedisRunner.open({ redis: url }, solveId);
      let probe = 0;
      const jobs = () =>
        shardRanges(0, shards).map((r, shard): ShardJob => ({
          v: 1, solve: solveId, probe, shard, kind: 'probe', policy: 'random', env, rounds: 10, lambda: 0, budget: null, users: { kind: 'range', ...r }, returnPlan: false, threads: 1,
        }));
      try {
        const t = await time(`queue round trip of one probe, ${shards} empty shard${shards > 1 ? 's' : ''}, 1 worker process`, probes, async () => {
          await runner.run(jobs());
          probe++;
        }, 3);
        timings.push(t);
        overheadMs.push({ shards, msPerProbe: t.medianMs });
      } finally {
        await runner.close();
      }
    }

    // a solve in process vs through the queue
    const users = options.users ?? (options.quick ? 10_000 : 100_000);
    const shards = 8;
    const model = defaultSizedModel();
    const modelFile = path.join(dir, 'model.onnx');
    writeOnnx(model, modelFile);
    const handle = loadNativeModel(model);
    const budget = '0.5x' as const;
    let plainMs = 0;
    let twinMs = 0;
    let queueMs = 0;
    let rollouts = 0;
    let identical = false;
    let outsideTwinMs = 0;
    let outsideQueueMs = 0;
    try {
      const plainT = await time(`solve ${users} users x 10 rounds, in process, unsharded`, 1, () => solve({ model: handle, users, budget, env: { seed: 1, rounds: 10 } }), 0);
      // twin and queue alternately (a shared machine's load drifts), the fastest of each kept
      const runs = options.quick ? 1 : 2;
      const twinRuns: number[] = [];
      const queueRuns: number[] = [];
      const twinIdle: number[] = [];
      const queueIdle: number[] = [];
      for (let i = 0; i < runs; i++) {
        const twin = await solveSharded({ model: handle, users, budget, env: { seed: 1, rounds: 10 }, shards });
        twinRuns.push(twin.wallMs);
        twinIdle.push(twin.wallMs - twin.computeMs);
        const queued = await solveSharded({ model: modelFile, users, budget, env: { seed: 1, rounds: 10 }, shards, cluster: { redis: url } });
        queueRuns.push(queued.wallMs);
        queueIdle.push(queued.wallMs - queued.computeMs);
        rollouts = queued.rollouts;
        identical = twin.lambda === queued.lambda && twin.revenue === queued.revenue && twin.cost === queued.cost && Buffer.from(twin.plan.buffer).equals(Buffer.from(queued.plan.buffer));
      }
      const row = (name: string, samples: number[]): Timing => {
        const sorted = [...samples].sort((a, b) => a - b);
        return { name, runs: sorted.length, medianMs: sorted[Math.floor(sorted.length / 2)], p95Ms: sorted[sorted.length - 1], minMs: sorted[0] };
      };
      twinMs = Math.min(...twinRuns);
      queueMs = Math.min(...queueRuns);
      // wall time outside the shards' rollouts: with one worker, what the queue adds (robust to the machine's load)
      outsideTwinMs = Math.min(...twinIdle);
      outsideQueueMs = Math.min(...queueIdle);
      plainMs = plainT.medianMs;
      timings.push(plainT);
      timings.push(row(`solve ${users} users x 10 rounds, in process, ${shards}-shard twin`, twinRuns));
      timings.push(row(`solve ${users} users x 10 rounds, ${shards} shards through the queue, 1 worker process`, queueRuns));
    } finally {
      handle.unload();
    }
    return { timings, overheadMs, solve: { users, rounds: 10, shards, rollouts, plainMs, twinMs, queueMs, outsideTwinMs, outsideQueueMs, overheadPerProbeMs: (outsideQueueMs - outsideTwinMs) / rollouts, identical } };
  } finally {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker?.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
    redis.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Prints the rows and the extrapolation to 1M x 10 (work per user constant; overhead per probe constant). */
export function reportCluster(b: ClusterBench): void {
  for (const o of b.overheadMs) console.log(`queue overhead: ${o.msPerProbe.toFixed(1)} ms per probe with ${o.shards} empty shard(s)`);
  const s = b.solve;
  console.log(
    `solve ${s.users} x ${s.rounds}: unsharded ${(s.plainMs / 1000).toFixed(2)} s, ${s.shards}-shard twin ${(s.twinMs / 1000).toFixed(2)} s, through the queue (1 worker) ${(s.queueMs / 1000).toFixed(2)} s` +
      ` = ${(s.queueMs / s.twinMs).toFixed(3)}x the twin; outside the shards' rollouts: twin ${s.outsideTwinMs.toFixed(0)} ms, queue ${s.outsideQueueMs.toFixed(0)} ms, i.e. ${s.overheadPerProbeMs.toFixed(0)} ms per rollout over ${s.rollouts}; bit-identical to the twin: ${s.identical}`,
  );
  const scale = 1_000_000 / s.users;
  const queue1M = s.twinMs * scale + (s.outsideQueueMs - s.outsideTwinMs) * scale; // the plan and the results grow with users too: scaled, an upper bound
  console.log(`1M x 10 extrapolated (x${scale} the per-user work, the same per-probe overhead): in process ~${((s.twinMs * scale) / 1000).toFixed(0)} s, through the queue ≤ ~${(queue1M / 1000).toFixed(0)} s (what the queue adds, scaled with users as an upper bound: the final plan's transfer grows with them, ~53 MB of base64 for 1M x 10)`);
}
