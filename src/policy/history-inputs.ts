/**
 * What the CODT reads for users whose rounds are logged: their states and logged actions,
 * and the to-go tokens at each round — the model's target at λ minus the reward and cost
 * realised before that round (the default recipe's table is zero, so its tokens are minus the
 * realised past). decide() computes the same for one user at decision time.
 */
import type { Trajectories } from '../data/trajectories.js';
import type { ModelMeta } from '../model/artifact.js';
import { actionWidth, emptyForwardInputs } from '../model/config.js';
import { targetsAt } from '../model/stats.js';
import type { ForwardInputs } from '../model/types.js';

/** Inputs [B = users.length, T = rounds] for users (indices into traj) at one λ. */
export function loggedHistoryInputs(meta: ModelMeta, traj: Trajectories, users: ArrayLike<number>, lambda: number, rounds = traj.rounds): ForwardInputs {
  const B = users.length;
  const T = rounds;
  const d = traj.stateDim;
  const A = traj.actionDims;
  const K = actionWidth(meta.config);
  const offsets = meta.config.actionSizes.map((_, j) => meta.config.actionSizes.slice(0, j).reduce((s, k) => s + k, 0));
  const target = targetsAt(meta.targets, lambda);
  const inputs = emptyForwardInputs(meta.config, B, T, lambda);
  for (let b = 0; b < B; b++) {
    const i = users[b];
    let r = target.rtg;
    let c = target.ctg;
    for (let t = 0; t < T; t++) {
      const src = i * traj.rounds + t;
      const dst = b * T + t;
      inputs.states.set(traj.states.subarray(src * d, (src + 1) * d), dst * d);
      inputs.rtg[dst] = r;
      inputs.ctg[dst] = c;
      if (!traj.mask[src]) continue;
      for (let j = 0; j < A; j++) inputs.actionsOneHot[dst * K + offsets[j] + traj.actions[src * A + j]] = 1;
      r -= traj.rewards[src];
      c -= traj.costs[src];
    }
  }
  return inputs;
}
