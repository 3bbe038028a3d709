/**
 * `saco worker --redis URL`: a worker of the sharded solve. Loads each model once, takes shard
 * jobs from the queue until stopped. SIGTERM or Ctrl-C: no new job is taken, the jobs in flight
 * finish (up to --grace-ms; past it they are left to BullMQ's stalled check, which runs them
 * again elsewhere), then the process exits 143 (SIGTERM) or 130 (Ctrl-C). A second signal exits at once.
 */
import { Command } from 'commander';
import { startClusterWorker, type WorkerEvent } from '../cluster/index.js';
import { examples, intArg, withOutputFlags } from './common.js';
import { exitInterrupted, Interrupted, takeOverSigint } from './interrupt.js';
import { Ui } from './ui.js';

interface WorkerOpts {
  redis: string;
  queue?: string;
  prefix?: string;
  concurrency: number;
  threads: number;
  lockMs: number;
  stalledMs: number;
  graceMs: number;
  name?: string;
  verbose?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/**
 * Routes SIGTERM and SIGINT to `handler` (the first one; a second exits at once) until the
 * returned function restores the usual handlers (src/cli/interrupt.ts exits on SIGTERM at once).
 */
export function takeOverTermination(handler: (signal: 'SIGTERM' | 'SIGINT') => void): () => void {
  let signalled = false;
  const on = (signal: 'SIGTERM' | 'SIGINT') => {
    if (signalled) exitInterrupted(signal, signal === 'SIGTERM' ? 143 : 130);
    signalled = true;
    handler(signal);
  };
  const previous = process.listeners('SIGTERM');
  process.removeAllListeners('SIGTERM');
  const onTerm = () => on('SIGTERM');
  process.on('SIGTERM', onTerm);
  const restoreSigint = takeOverSigint(() => on('SIGINT'));
  return () => {
    process.removeListener('SIGTERM', onTerm);
    for (const l of previous) process.on('SIGTERM', l as () => void);
    restoreSigint();
  };
}

const nonNegativeEnv = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
};

function eventLine(e: WorkerEvent): string {
  switch (e.type) {
    case 'start':
      return `job ${e.id} started (probe ${e.probe}, shard ${e.shard}${e.attempt > 1 ? `, attempt ${e.attempt}` : ''})`;
    case 'done':
      return `job ${e.id} done: ${e.users} users in ${e.ms.toFixed(0)} ms`;
    case 'failed':
      return `job ${e.id} failed: ${e.reason}`;
    case 'redis':
      return e.state === 'lost' ? 'Redis connection lost: reconnecting' : 'Redis connection back';
  }
}

async function runWorker(o: WorkerOpts): Promise<void> {
  const ui = new Ui(o);
  let stopSignal: 'SIGTERM' | 'SIGINT' | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const restore = takeOverTermination((signal) => {
    stopSignal = signal;
    wake();
  });
  try {
    const worker = await startClusterWorker({
      redis: o.redis, queue: o.queue, prefix: o.prefix, concurrency: o.concurrency, threads: o.threads,
      lockDurationMs: o.lockMs, stalledIntervalMs: o.stalledMs, graceMs: o.graceMs, name: o.name,
      // fault tests only (not flags: nobody should slow a worker down by accident)
      testDelayMs: nonNegativeEnv('SACO_WORKER_TEST_DELAY_MS'),
      testBlockMs: nonNegativeEnv('SACO_WORKER_TEST_BLOCK_MS'),
      onEvent: (e) => {
        if (o.verbose || e.type === 'redis' || e.type === 'failed') ui.notice(`saco worker: ${eventLine(e)}`);
      },
    });
    if (!o.quiet) ui.notice(`saco worker ${worker.name}: ready, taking jobs from queue '${o.queue ?? 'saco-shards'}' (stop with SIGTERM or Ctrl-C)`);
    await stopped;
    if (!o.quiet) ui.notice(`saco worker ${worker.name}: ${stopSignal}: finishing the jobs in flight, taking no new one`);
    const { finished } = await worker.close();
    if (!o.quiet) ui.notice(`saco worker ${worker.name}: stopped after ${worker.processed} job(s)${finished ? '' : ' (jobs still in flight were left to be retried elsewhere)'}`);
    ui.result({ name: worker.name, processed: worker.processed, finished, signal: stopSignal }, () => []);
  } finally {
    restore();
    ui.done();
  }
  throw new Interrupted(stopSignal === 'SIGINT' ? 130 : 143);
}

export function registerWorker(program: Command): void {
  const cmd = program
    .command('worker')
    .description('a worker of the sharded solve: take shard rollouts from the queue behind Redis until stopped (SIGTERM: finish the jobs in flight, then exit)')
    .requiredOption('--redis <url>', 'Redis URL, e.g. redis://127.0.0.1:6379 (the coordinator: saco solve --redis URL)')
    .option('--queue <name>', "queue of shard jobs (default 'saco-shards')")
    .option('--prefix <p>', "BullMQ key prefix (default 'saco')")
    .option('--concurrency <n>', 'jobs at once (a rollout already uses every core)', intArg(1, 64), 1)
    .option('--threads <n>', 'native threads per rollout (0: all cores)', intArg(0, 1024), 0)
    .option('--lock-ms <ms>', "a job whose worker stops renewing its lock this long is run again elsewhere", intArg(100, 86_400_000), 30_000)
    .option('--stalled-ms <ms>', 'how often to look for such stalled jobs', intArg(100, 86_400_000), 30_000)
    .option('--grace-ms <ms>', 'on SIGTERM, how long to wait for the jobs in flight', intArg(0, 86_400_000), 60_000)
    .option('--name <name>', 'worker name in Redis and in results (default host:pid)')
    .option('--verbose', 'a line on stderr per job');
  withOutputFlags(cmd, 'print a JSON summary on stdout when stopped');
  cmd.action(runWorker);
  examples(cmd, ['saco worker --redis redis://10.0.0.5:6379', 'saco worker --redis redis://127.0.0.1:6379 --verbose']);
}
