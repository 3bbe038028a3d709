/**
 * Learned-simulator benchmarks (issue 13's gate: fit-sim on SY 100,000 users x 10 rounds,
 * 1,000,000 rows, in <= 60 s on 2 cores). For now the outcome model's fit: every head (reward
 * and cost hurdles, the transitions of the dynamic state features) with the default booster
 * settings and early stopping on 20% of users. Then the simulator's rows: fit-sim on the same
 * log (per-arm models, CPU and idle-core time as above), a solve of 10,000 users x 10 rounds
 * in SY and the same solve through the simulator with a trained SACO (issue 13's gate: <= 2x,
 * ratio in one run; per rollout too, since the two λ searches may probe a different number),
 * and `saco sim check` on uniform and biased logs (the SY validation table of the README).
 */
import os from 'node:os';
import { syLogToInteractionLog } from '../src/data/log.js';
import { buildTrajectories, type Trajectories } from '../src/data/trajectories.js';
import { generateSy } from '../src/native/index.js';
import { buildFeatures, featureLayout } from '../src/sim/features.js';
import { fitOutcomeModel, type OutcomeModel } from '../src/sim/outcome.js';
import { time, type Timing } from './harness.js';
import { resolveSyConfig, syInitialUser, syObserve, syWeights } from '../src/data/synth.js';
import { loadNativeModel } from '../src/native/index.js';
import { trainCodt } from '../src/policy/train.js';
import { checkSimulatorOnSy, syCheckLog, type SimCheckReport } from '../src/sim/check.js';
import { fitSimulator, type Simulator } from '../src/sim/simulator.js';
import { solve } from '../src/solve/index.js';
import { simCheckLines } from '../src/cli/sim-check.js';

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
  /** The simulator's rows (src/sim/simulator.ts). */
  simulator?: SimulatorBench;
}

export interface SimulatorBench {
  /** fit-sim on the same log: wall, CPU, and idle-core time (each model's head groups replayed, models one after the other). */
  fit: { wallSeconds: number; cpuSeconds: number; idleWallSeconds: number; models: number; arms: string };
  /** The same solve (SACO trained on the uniform log, 0.5x) in SY and through the simulator. */
  solve: { users: number; rounds: number; sy: { ms: number; rollouts: number }; sim: { ms: number; rollouts: number }; ratio: number; ratioPerRollout: number };
  /** `saco sim check` reports. */
  checks: SimCheckReport[];
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
  fit.simulator = await benchSimulator(traj, timings, options);
  return { timings, fit };
}

/** fit-sim on the log, SY vs simulator solve speed, and the SY validation (uniform and biased logging). */
async function benchSimulator(traj: Trajectories, timings: Timing[], options: { quick?: boolean }): Promise<SimulatorBench> {
  const threads = os.availableParallelism?.() ?? os.cpus().length;
  const label = `${traj.users.toLocaleString('en-US')} x ${traj.rounds}`;
  let sim: Simulator | undefined;
  const cpu0 = process.cpuUsage();
  timings.push(await time(`fit-sim (per-arm outcome models, noise, caps), SY ${label}`, 1, async () => {
    sim?.dispose();
    sim = await fitSimulator(traj, { seed: 1 });
  }, 0));
  const cpu = process.cpuUsage(cpu0);
  const s = sim as unknown as Simulator;
  const fitWall = timings[timings.length - 1].medianMs / 1000;
  const idle = s.outcomes.reduce((t, o) => t + replaySchedule(o.heads.filter((h) => h.present), threads), 0);
  const fit = { wallSeconds: fitWall, cpuSeconds: (cpu.user + cpu.system) / 1e6, idleWallSeconds: idle, models: s.outcomes.length, arms: s.header.fit.arms };
  console.log(`fit-sim on SY ${label}: ${fitWall.toFixed(1)} s wall, ${fit.cpuSeconds.toFixed(1)} s CPU, ${idle.toFixed(1)} s on ${threads} idle cores by the heads' thread CPU times (${fit.models} models, ${fit.arms}; issue 13's gate: 60 s on 2 cores)`);

  // the same solve in SY and through the simulator: 10,000 fresh users of seed 1 and their round-0 states
  const users = options.quick ? 2000 : 10000;
  const rounds = 10;
  const sy = resolveSyConfig({ seed: 1, rounds, users: 1 });
  const ids = Uint32Array.from({ length: users }, (_, i) => traj.users + i);
  const w = syWeights(sy);
  const d = sy.features + 3;
  const states = new Float64Array(users * d);
  const x = new Float64Array(users * sy.features);
  for (let i = 0; i < users; i++) {
    const u = syInitialUser(sy, w, ids[i]);
    syObserve(sy, u, 0, states, i * d);
    x.set(u.x, i * sy.features);
  }
  // a trained SACO (default size; the uniform check below uses it too), so the λ search runs
  // as it does on real plans in both worlds (an untrained model's spend curve is arbitrary)
  const trainUsers = options.quick ? 8000 : 30000;
  const epochs = options.quick ? 1 : 3;
  const uniformLog = await syCheckLog({ seed: 1 }, trainUsers);
  const uniformModel = (await trainCodt(uniformLog, { epochs, seed: 1 })).model;
  const h = loadNativeModel(uniformModel);
  const runs = options.quick ? 1 : 3;
  let syRollouts = 0;
  let simRollouts = 0;
  try {
    const inSy = await time(`full solve in SY, ${users} users x ${rounds} rounds, 0.5x, bisection (SACO, default size, trained ${epochs} epochs)`, runs, async () => {
      syRollouts = (await solve({ users: { ids, features: x }, budget: '0.5x', env: sy, model: h })).rollouts;
    }, 1);
    const inSim = await time(`the same solve through the simulator, ${users} users x ${rounds} rounds`, runs, async () => {
      simRollouts = (await solve({ users: { ids, features: states }, budget: '0.5x', env: { kind: 'sim', simulator: s, seed: 1 }, model: h })).rollouts;
    }, 1);
    timings.push(inSy, inSim);
    const solveRow = {
      users, rounds,
      sy: { ms: inSy.medianMs, rollouts: syRollouts },
      sim: { ms: inSim.medianMs, rollouts: simRollouts },
      ratio: inSim.medianMs / inSy.medianMs,
      ratioPerRollout: inSim.medianMs / simRollouts / (inSy.medianMs / syRollouts),
    };
    console.log(`solve ${users} x ${rounds}: SY ${inSy.medianMs.toFixed(0)} ms (${syRollouts} rollouts), simulator ${inSim.medianMs.toFixed(0)} ms (${simRollouts} rollouts): ${solveRow.ratio.toFixed(2)}x, ${solveRow.ratioPerRollout.toFixed(2)}x per rollout (issue 13's gate: <= 2x)`);
    s.dispose();

    // the SY validation: uniform logging, then biased
    const checks: SimCheckReport[] = [];
    for (const logging of [{ kind: 'uniform' as const }, { kind: 'biased' as const, strength: 1.5 }]) {
      const model = logging.kind === 'uniform' ? uniformModel : (await trainCodt(await syCheckLog({ seed: 1, logging }, trainUsers), { epochs, seed: 1 })).model;
      const report = await checkSimulatorOnSy({ sy: { seed: 1, logging }, trainUsers, testUsers: options.quick ? 2000 : 5000, model });
      checks.push(report);
      console.log(`\nsaco sim check, ${report.logging} logging:`);
      for (const line of simCheckLines(report)) console.log(line);
    }
    return { fit, solve: solveRow, checks };
  } finally {
    h.unload();
  }
}
