/**
 * Batches for training and evaluation: a seeded order of users per epoch, λ drawn per
 * sample at batch time (or the fixed λ of the literal copies), and the per-sample loss
 * weights of the variant. Everything is a pure function of (seed, epoch, step), so a
 * resumed run sees exactly the batches an uninterrupted one would.
 */
import { CounterStream } from '../data/rng.js';
import { sampleLambdas } from '../data/lambda.js';
import type { Trajectories } from '../data/trajectories.js';
import { actionWidth, type CodtConfig } from './config.js';
import { lagrangianWeight, type RoundMoments } from './stats.js';
import type { CodtBatch } from './types.js';

const SHUFFLE_STREAM = 33;

/** Users in a seeded random order for one epoch. */
export function epochOrder(users: number, seed: number, epoch: number): Int32Array {
  const keys = new Float64Array(users);
  const stream = new CounterStream(seed, epoch, 0, SHUFFLE_STREAM);
  for (let i = 0; i < users; i++) keys[i] = stream.uniform();
  return Int32Array.from(Array.from({ length: users }, (_, i) => i).sort((a, b) => keys[a] - keys[b] || a - b));
}

/**
 * The users of each epoch when an epoch is `size` users: positions [epoch·size, (epoch + 1)·size)
 * of an endless stream of shuffled passes over all users (pass k in epochOrder(users, seed, k)),
 * so every user is seen once per pass whatever the epoch size. size ≥ users: epoch k is pass k.
 */
export class EpochStream {
  private cached: { pass: number; order: Int32Array } | null = null;

  constructor(
    readonly users: number,
    readonly size: number,
    readonly seed: number,
  ) {}

  /** The epoch's users, in training order ([min(size, users)]). */
  epoch(epoch: number): Int32Array {
    if (this.size >= this.users) return this.pass(epoch);
    const out = new Int32Array(this.size);
    let pos = epoch * this.size;
    for (let filled = 0; filled < this.size; ) {
      const pass = Math.floor(pos / this.users);
      const at = pos - pass * this.users;
      const take = Math.min(this.size - filled, this.users - at);
      out.set(this.pass(pass).subarray(at, at + take), filled);
      filled += take;
      pos += take;
    }
    return out;
  }

  private pass(pass: number): Int32Array {
    if (this.cached?.pass !== pass) this.cached = { pass, order: epochOrder(this.users, this.seed, pass) };
    return this.cached.order;
  }
}

export interface WeightingSpec {
  /** null: every sample weighs 1 (literal, no-constraint). */
  beta: number | null;
  /** Per-round moments of what the weights standardise (realised to-go, or the advantages). */
  moments: RoundMoments;
  /**
   * The outcome-relabelled recipes: the expected reward and cost advantage of each logged
   * action [users, rounds] (aligned with the batch's trajectories); absent: realised to-go.
   */
  advantages?: { reward: Float32Array; cost: Float32Array };
  /** false: the weights ignore λ (the no-constraint ablation of the relabelled recipe). */
  lambdaInWeights?: boolean;
}

/** Assembles the batch of the given users; `lambdas` gives each user's λ. */
export function makeBatch(traj: Trajectories, users: ArrayLike<number>, lambdas: Float32Array, config: CodtConfig, weighting: WeightingSpec): CodtBatch {
  const B = users.length;
  const T = traj.rounds;
  const d = traj.stateDim;
  const A = traj.actionDims;
  const K = actionWidth(config);
  const offsets = config.actionSizes.map((_, j) => config.actionSizes.slice(0, j).reduce((s, k) => s + k, 0));
  const batch: CodtBatch = {
    size: B,
    rounds: T,
    states: new Float32Array(B * T * d),
    rtg: new Float32Array(B * T),
    ctg: new Float32Array(B * T),
    actionsOneHot: new Float32Array(B * T * K),
    lambda: lambdas,
    mask: new Float32Array(B * T),
    weights: new Float32Array(B * T),
  };
  for (let b = 0; b < B; b++) {
    const i = users[b];
    batch.states.set(traj.states.subarray(i * T * d, (i + 1) * T * d), b * T * d);
    for (let t = 0; t < T; t++) {
      const src = i * T + t;
      const dst = b * T + t;
      batch.rtg[dst] = traj.rtg[src];
      batch.ctg[dst] = traj.ctg[src];
      batch.mask[dst] = traj.mask[src];
      if (!traj.mask[src]) continue;
      for (let j = 0; j < A; j++) batch.actionsOneHot[dst * K + offsets[j] + traj.actions[src * A + j]] = 1;
      if (weighting.beta === null) {
        batch.weights[dst] = 1;
      } else {
        const r = weighting.advantages ? weighting.advantages.reward[src] : traj.rtg[src];
        const c = weighting.advantages ? weighting.advantages.cost[src] : traj.ctg[src];
        batch.weights[dst] = lagrangianWeight(r, c, t, weighting.lambdaInWeights === false ? 0 : lambdas[b], weighting.moments, weighting.beta);
      }
    }
  }
  return batch;
}

/** λ of each user of a batch: the trajectory's fixed λ (literal copies) or a fresh draw keyed by (seed, step) (`power`, `margin`: see sampleLambdas). */
export function batchLambdas(traj: Trajectories, users: ArrayLike<number>, seed: number, step: number, lambdaMax: number, power = 1, margin = 0): Float32Array {
  if (traj.lambda) return Float32Array.from(users, (i) => (traj.lambda as Float32Array)[i]);
  return sampleLambdas(users.length, step, { seed, lambdaMax, power, margin });
}
