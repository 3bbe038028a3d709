/**
 * Training throughput (trajectories per second) of the default CODT config on SY
 * 10,000 x 10 batches, for each tfjs backend that starts here, measured one after another
 * in the same process.
 */
import { syLogToInteractionLog } from '../src/data/log.js';
import { buildTrajectories } from '../src/data/trajectories.js';
import { selectBackend, type BackendChoice } from '../src/model/backend.js';
import { batchLambdas, makeBatch } from '../src/model/batches.js';
import { CODT_DEFAULTS, type CodtConfig } from '../src/model/config.js';
import { ADAMW_DEFAULTS, TfjsEngine } from '../src/model/engine-tfjs.js';
import { initParams } from '../src/model/params.js';
import { computeNormalization, estimateLambdaMax, roundMoments } from '../src/model/stats.js';
import { TRAIN_DEFAULTS } from '../src/model/train.js';
import { generateSy } from '../src/native/index.js';
import type { Timing } from './harness.js';

export async function benchTraining(options: { quick?: boolean; backends?: BackendChoice[] } = {}): Promise<Array<Timing & { samplesPerSecond: number; backend: string }>> {
  const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 10000, rounds: 10, seed: 1 })));
  const config: CodtConfig = { stateDim: traj.stateDim, actionSizes: [4], context: traj.rounds, ...CODT_DEFAULTS };
  const lambdaMax = estimateLambdaMax(traj);
  const norm = computeNormalization(traj, lambdaMax);
  const weighting = { beta: TRAIN_DEFAULTS.beta, moments: roundMoments(traj) };
  const B = TRAIN_DEFAULTS.batchSize;
  const steps = options.quick ? 3 : 10;
  const out = [];
  for (const choice of options.backends ?? (['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as BackendChoice[])) {
    let backend;
    try {
      backend = await selectBackend(choice);
    } catch (e) {
      console.log(`training bench: ${choice} skipped (${(e as Error).message.slice(0, 140)})`);
      continue;
    }
    const engine = new TfjsEngine(config, norm, initParams(config, 1), ADAMW_DEFAULTS, backend.name);
    const samples: number[] = [];
    for (let s = 0; s <= steps; s++) {
      const users = Int32Array.from({ length: B }, (_, i) => (s * B + i) % traj.users);
      const batch = makeBatch(traj, users, batchLambdas(traj, users, 1, s + 1, lambdaMax), config, weighting);
      const t0 = performance.now();
      await engine.step(batch, 3e-4, s + 1, s);
      if (s > 0) samples.push(performance.now() - t0); // the first step warms up
    }
    engine.dispose();
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)];
    out.push({ name: `train step, default CODT, batch ${B} x T ${traj.rounds} (tfjs ${backend.name})`, backend: backend.name, runs: samples.length, medianMs: median, p95Ms: samples[samples.length - 1], minMs: samples[0], samplesPerSecond: (1000 * B) / median });
  }
  return out;
}
