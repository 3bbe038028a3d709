import { generateSy } from './src/native/index.js';
import { syLogToInteractionLog } from './src/data/log.js';
import { writeLog } from './src/data/write.js';
import { readLog } from './src/data/ingest.js';
import { buildTrajectories } from './src/data/trajectories.js';
const sy = await generateSy({ users: 10000, rounds: 10, seed: 1 });
const log = syLogToInteractionLog(sy);
const ref = buildTrajectories(log);
for (const f of ['/tmp/sy.csv', '/tmp/sy.csv.gz', '/tmp/sy.parquet']) {
  let t0 = performance.now();
  await writeLog(log, f);
  const tw = performance.now() - t0;
  t0 = performance.now();
  const { log: back, report } = await readLog(f);
  const tr = performance.now() - t0;
  const traj = buildTrajectories(back);
  const eq = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => Object.is(v, b[i]));
  console.log(f, tw.toFixed(0), tr.toFixed(0), report.users, report.maxRounds, eq(traj.states, ref.states), eq(traj.actions, ref.actions), eq(traj.rtg, ref.rtg), eq(traj.ctg, ref.ctg), JSON.stringify(back.actionEncodings), back.stateNames.join(','));
}
