/**
 * Training throughput (trajectories per second) of the default CODT config on SY
 * 10,000 x 10 batches: the native trainer (all cores, then one thread) and each tfjs backend
 * that starts here, measured one after another in the same process on the same batches, so
 * the ratios are what to quote.
 */
import { syLogToInteractionLog } from '../src/data/log.js';
import { buildTrajectories, splitByUser } from '../src/data/trajectories.js';
import { selectBackend, type BackendChoice } from '../src/model/backend.js';
import { batchLambdas, makeBatch } from '../src/model/batches.js';
import { CODT_DEFAULTS, type CodtConfig } from '../src/model/config.js';
import { TfjsEngine } from '../src/model/engine-tfjs.js';
import { initParams } from '../src/model/params.js';
import { computeNormalization, estimateLambdaMax, roundMoments } from '../src/model/stats.js';
import { TRAIN_DEFAULTS } from '../src/model/train.js';
import { ADAMW_DEFAULTS, type CodtBatch, type TrainEngine } from '../src/model/types.js';
import { generateSy } from '../src/native/index.js';
import { NativeEngine, trainCodt } from '../src/native/train-engine.js';
import type { Timing } from './harness.js';

export type TrainingTiming = Timing & { samplesPerSecond: number; backend: string };

/** Median step time of `engine` over `steps` batches (after one warm-up step). */
async function timeSteps(engine: TrainEngine, batches: CodtBatch[]): Promise<number[]> {
  const samples: number[] = [];
  for (let s = 0; s < batches.length; s++) {
    const t0 = performance.now();
    await engine.step(batches[s], 3e-4, s + 1, s);
    if (s > 0) samples.push(performance.now() - t0);
  }
  return samples.sort((a, b) => a - b);
}

export async function benchTraining(options: { quick?: boolean; backends?: BackendChoice[] } = {}): Promise<TrainingTiming[]> {
  const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 10000, rounds: 10, seed: 1 })));
  const config: CodtConfig = { stateDim: traj.stateDim, actionSizes: [4], context: traj.rounds, ...CODT_DEFAULTS };
  const lambdaMax = estimateLambdaMax(traj);
  const norm = computeNormalization(traj, lambdaMax);
  const weighting = { beta: TRAIN_DEFAULTS.beta, moments: roundMoments(traj) };
  const B = TRAIN_DEFAULTS.batchSize;
  const batchesFor = (n: number) =>
    Array.from({ length: n + 1 }, (_, s) => {
      const users = Int32Array.from({ length: B }, (_, i) => (s * B + i) % traj.users);
      return makeBatch(traj, users, batchLambdas(traj, users, 1, s + 1, lambdaMax), config, weighting);
    });
  const out: TrainingTiming[] = [];
  const record = (label: string, backend: string, samples: number[]) => {
    const median = samples[Math.floor(samples.length / 2)];
    out.push({ name: `train step, default CODT, batch ${B} x T ${traj.rounds} (${label})`, backend, runs: samples.length, medianMs: median, p95Ms: samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.95))], minMs: samples[0], samplesPerSecond: (1000 * B) / median });
  };

  const nativeBatches = batchesFor(options.quick ? 10 : 60);
  for (const threads of [0, 1]) {
    const engine = new NativeEngine(config, norm, initParams(config, 1), ADAMW_DEFAULTS, threads);
    record(engine.name, engine.name, await timeSteps(engine, nativeBatches));
    engine.dispose();
  }
  const tfjsBatches = batchesFor(options.quick ? 3 : 10);
  for (const choice of options.backends ?? (['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as BackendChoice[])) {
    let backend;
    try {
      backend = await selectBackend(choice);
    } catch (e) {
      console.log(`training bench: ${choice} skipped (${(e as Error).message.slice(0, 140)})`);
      continue;
    }
    const engine = new TfjsEngine(config, norm, initParams(config, 1), ADAMW_DEFAULTS, backend.name);
    record(`tfjs ${backend.name}`, `tfjs-${backend.name}`, await timeSteps(engine, tfjsBatches));
    engine.dispose();
  }
  return out;
}

/**
 * `saco train` on built-in defaults, timed: SY 10,000 x 10 (seed 1), 20% of users held out as
 * `saco train` does, the default config and trainer, until early stopping.
 */
export async function benchTrainToStop(): Promise<Timing & { trainer: string; epochs: number; bestValLoss: number }> {
  const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 10000, rounds: 10, seed: 1 })));
  const { train } = splitByUser(traj, { testFraction: 0.2, seed: TRAIN_DEFAULTS.seed });
  const t0 = performance.now();
  const r = await trainCodt(train);
  const ms = performance.now() - t0;
  const m = r.model.meta.training;
  return { name: `train default CODT on SY 10,000 x 10 to early stopping (${r.trainer.engine})`, runs: 1, medianMs: ms, p95Ms: ms, minMs: ms, trainer: r.trainer.engine, epochs: m.epochs, bestValLoss: m.bestValLoss };
}
