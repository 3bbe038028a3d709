import { generateSy } from './src/native/index.js';
import { syLogToInteractionLog } from './src/data/log.js';
import { buildTrajectories, splitByUser } from './src/data/trajectories.js';
import { trainCodt } from './src/model/train.js';
import { firstRoundProbabilities } from './src/model/predict-tfjs.js';
const sy = await generateSy({ users: 3000, rounds: Number(process.argv[3] ?? 10), seed: 1 });
const traj = buildTrajectories(syLogToInteractionLog(sy));
const { train, test } = splitByUser(traj, { seed: 1 });
const s0 = new Float32Array(test.users * test.stateDim);
for (let i = 0; i < test.users; i++) s0.set(test.states.subarray(i * test.rounds * test.stateDim, i * test.rounds * test.stateDim + test.stateDim), i * test.stateDim);
for (const variant of ['weighted', 'literal'] as const) {
  const t0 = performance.now();
  const r = await trainCodt(train, { variant, epochs: Number(process.argv[2] ?? 4), dModel: 32, layers: 2, heads: 2, batchSize: 64, lr: Number(process.argv[4] ?? 1e-3), dropout: 0 });
  const vals = [0, 2, 5, 10];
  const out = [0.1, 0.5, 0.9, 2, 4].map((lam) => { const p = firstRoundProbabilities(r.model, s0, lam); let ev = 0; for (let i = 0; i < test.users; i++) for (let k = 0; k < 4; k++) ev += p[i * 4 + k] * vals[k]; return (ev / test.users).toFixed(3); });
  console.log(variant, 'val', r.history.map((h) => h.valLoss.toFixed(4)).join(' '), 'E[v] at λ', out.join(' '), 's', ((performance.now() - t0) / 1000).toFixed(1));
}
