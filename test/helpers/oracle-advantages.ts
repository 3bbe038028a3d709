/**
 * The SY ground truth's expected reward and cost of every action at every logged row (from
 * the observed state, which is the latent one when σ_obs = 0), and the advantages of the
 * logged action over the uniform logger's average: what a perfect outcome model would give
 * the `expected` recipe. Tests use it to check the recipe apart from the outcome model.
 */
import { syCouponValue, syPurchaseProbability, syUserConstants, syWeights, type SyConfig } from '../../src/data/synth.js';
import type { Trajectories } from '../../src/data/trajectories.js';

export function oracleAdvantages(config: SyConfig, traj: Trajectories): { reward: Float32Array; cost: Float32Array; lambdaMax: number } {
  const w = syWeights(config);
  const d = config.features;
  const T = traj.rounds;
  const values = config.actionDims[0].values;
  const reward = new Float32Array(traj.users * T);
  const cost = new Float32Array(traj.users * T);
  const ratios: number[] = [];
  for (let i = 0; i < traj.users; i++) {
    for (let t = 0; t < T; t++) {
      const o = (i * T + t) * traj.stateDim;
      const u = syUserConstants(config, w, Array.from(traj.states.subarray(o, o + d)));
      const all = values.map((_, k) => {
        const v = syCouponValue(config, [k], u.basket);
        const p = syPurchaseProbability(config, u, traj.states[o + d], traj.states[o + d + 1], v);
        return { r: p * u.basket, c: p * v };
      });
      const a = traj.actions[i * T + t];
      reward[i * T + t] = all[a].r - all.reduce((s, q) => s + q.r, 0) / all.length;
      cost[i * T + t] = all[a].c - all.reduce((s, q) => s + q.c, 0) / all.length;
      let best = 0;
      for (let k = 1; k < all.length; k++) if (all[k].c > 0) best = Math.max(best, (all[k].r - all[0].r) / all[k].c);
      ratios.push(best);
    }
  }
  ratios.sort((a, b) => a - b);
  return { reward, cost, lambdaMax: 1.2 * ratios[Math.floor(0.99 * (ratios.length - 1))] };
}
