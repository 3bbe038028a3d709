/**
 * Learned-simulator benchmarks (issue 13's gate: fit-sim on SY 100,000 users x 10 rounds,
 * 1,000,000 rows, in <= 60 s on 2 cores). For now the outcome model's fit: every head (reward
 * and cost hurdles, the transitions of the dynamic state features) with the default booster
 * settings and early stopping on 20% of users. The simulator adds its rollout rows here.
 */
import os from 'node:os';
import { syLogToInteractionLog } from '../src/data/log.js';
import { buildTrajectories } from '../src/data/trajectories.js';
import { generateSy } from '../src/native/index.js';
import { buildFeatures, featureLayout } from '../src/sim/features.js';
import { fitOutcomeModel, type OutcomeModel } from '../src/sim/outcome.js';
import { time, type Timing } from './harness.js';

export interface SimFitReport {
  rows: number;
  cols: number;
  threads: number;
  /** CPU seconds of this process during the fit (the wall time depends on what else runs). */
  cpuSeconds: number;
  /**
   * The fit's wall time on `threads` otherwise idle cores, from each head's thread CPU time:
   * the groups of heads replayed in their start order, each on the first free thread. On a
   * shared machine the measured wall time says more about the neighbours than about saco.
   */
  idleWallSeconds: number;
  /** Per head: trees kept / run, validation metric, CPU seconds. */
  heads: Array<{ name: string; rounds: number; roundsRun: number; metric: string; validMetric: number; cpuSeconds: number }>;
}

/** Replays groups (in start order) on `threads` threads, each on the first free one; returns the makespan. */
export function replaySchedule(heads: Array<{ group: number; cpuSeconds: number }>, threads: number): number {
  const groups = new Map<number, number>();
  for (const h of heads) if (h.group >= 0) groups.set(h.group, (groups.get(h.group) ?? 0) + h.cpuSeconds);
  const free = new Array<number>(Math.max(1, threads)).fill(0);
  for (const g of [...groups.keys()].sort((a, b) => a - b)) {
    const k = free.indexOf(Math.min(...free));
    free[k] += groups.get(g)!;
  }
  return Math.max(...free);
}

export async function benchSim(options: { quick?: boolean } = {}): Promise<{ timings: Timing[]; fit: SimFitReport }> {
  const users = options.quick ? 10000 : 100000;
  const rounds = 10;
  const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users, rounds, seed: 1 })));
  const rows = users * rounds;
  const timings: Timing[] = [];
  timings.push(await time(`outcome design matrix, SY ${users.toLocaleString('en-US')} x ${rounds} (${rows.toLocaleString('en-US')} rows)`, 1, () => buildFeatures(traj, featureLayout(traj)), 0));
  let model: OutcomeModel | undefined;
  const cpu0 = process.cpuUsage();
  timings.push(
    await time(`fit outcome model (all heads), SY ${users.toLocaleString('en-US')} x ${rounds} (${rows.toLocaleString('en-US')} rows)`, 1, async () => {
      model?.dispose();
      model = await fitOutcomeModel(traj, { seed: 1 });
    }, 0),
  );
  const cpu = process.cpuUsage(cpu0);
  const m = model as unknown as OutcomeModel;
  const threads = os.availableParallelism?.() ?? os.cpus().length;
  const present = m.heads.filter((h) => h.present);
  const fit: SimFitReport = {
    rows,
    cols: m.layout.names.length,
    threads,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    idleWallSeconds: replaySchedule(present, threads),
    heads: present.map((h) => ({ name: h.name, rounds: h.rounds, roundsRun: h.roundsRun, metric: h.metric, validMetric: h.validMetric, cpuSeconds: h.cpuSeconds })),
  };
  m.dispose();
  return { timings, fit };
}
