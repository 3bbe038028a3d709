/**
 * Child of outcome.test.ts: fits two outcome models, disposes one, and exits with the other
 * still registered (and a prediction in flight when `inflight` is given). Before the registry
 * was made immortal, freeing the remaining booster at exit aborted ("free(): invalid pointer").
 * Usage: node --import tsx exit.child.ts [inflight]
 */
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories } from '../../src/data/trajectories.js';
import { generateSy } from '../../src/native/index.js';
import { fitOutcomeModel, predictOutcomes } from '../../src/sim/outcome.js';

const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 300, rounds: 3, seed: 2 })));
const kept = await fitOutcomeModel(traj, { seed: 1, rounds: 5 });
const gone = await fitOutcomeModel(traj, { seed: 1, rounds: 5 });
gone.dispose();
if (process.argv[2] === 'inflight') {
  void predictOutcomes(kept, traj, 'all');
  setImmediate(() => process.exit(0));
} else {
  process.stdout.write(`${kept.heads.length} heads\n`);
}
