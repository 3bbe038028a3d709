/**
 * What the model learns from the training trajectories besides its weights: input
 * normalisation, λ's range, the Lagrangian sample weights of the `weighted` variant, and
 * the decision-time target tables RTG*_0(λ), CTG*_0(λ) (DESIGN.md section 5).
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import { controlIndex } from '../data/log.js';

export interface Normalization {
  stateMean: number[];
  /** Never 0: constant columns get 1. */
  stateStd: number[];
  rtgScale: number;
  ctgScale: number;
  /** Decisions take λ in [0, lambdaMax] (training draws from slightly below 0: TrainOptions.lambdaMargin); the λ input is fed as λ / lambdaMax. */
  lambdaMax: number;
}

/** Per-round moments of RTG_t and CTG_t over the training users: they standardise RTG - λ·CTG exactly for any λ. */
export interface RoundMoments {
  meanR: number[];
  meanC: number[];
  varR: number[];
  varC: number[];
  cov: number[];
}

/** RTG*_0(λ), CTG*_0(λ) on a grid of λ. */
export interface TargetTable {
  lambdas: number[];
  rtg: number[];
  ctg: number[];
}

export function computeNormalization(train: Trajectories, lambdaMax: number): Normalization {
  const d = train.stateDim;
  const sum = new Float64Array(d);
  const sum2 = new Float64Array(d);
  let n = 0;
  let rtg0 = 0;
  let ctg0 = 0;
  for (let i = 0; i < train.users; i++) {
    rtg0 += Math.abs(train.rtg[i * train.rounds]);
    ctg0 += Math.abs(train.ctg[i * train.rounds]);
    for (let t = 0; t < train.rounds; t++) {
      if (!train.mask[i * train.rounds + t]) continue;
      n++;
      const o = (i * train.rounds + t) * d;
      for (let j = 0; j < d; j++) {
        const v = train.states[o + j];
        sum[j] += v;
        sum2[j] += v * v;
      }
    }
  }
  if (n === 0) throw new ArgumentError('trajectories', 'no rounds to learn from');
  const stateMean = Array.from(sum, (s) => s / n);
  const stateStd = Array.from(sum2, (s, j) => {
    const v = s / n - stateMean[j] * stateMean[j];
    return v > 1e-12 ? Math.sqrt(v) : 1;
  });
  const scale = (total: number) => (total / train.users > 1e-9 ? total / train.users : 1);
  return { stateMean, stateStd, rtgScale: scale(rtg0), ctgScale: scale(ctg0), lambdaMax };
}

/**
 * λ's upper end from the data (the realised recipes): twice the largest revenue gained per
 * unit of cost by any costly action over the control action (all rounds pooled), at least 1.
 * The control is the no-treatment value of each dimension as ingestion found or the schema
 * named it, so the estimate does not depend on the order values are listed in. A budget so
 * tight that it needs a larger λ is reported by the λ search, not silently clipped.
 */
export function estimateLambdaMax(train: Trajectories): number {
  const A = train.actionDims;
  const controlKey = train.actionEncodings.map(controlIndex).join(',');
  const groups = new Map<string, { r: number; c: number; n: number }>();
  for (let i = 0; i < train.users * train.rounds; i++) {
    if (!train.mask[i]) continue;
    const key = Array.from(train.actions.subarray(i * A, i * A + A)).join(',');
    const g = groups.get(key) ?? { r: 0, c: 0, n: 0 };
    g.r += train.rewards[i];
    g.c += train.costs[i];
    g.n++;
    groups.set(key, g);
  }
  const base = groups.get(controlKey);
  if (!base) return 1;
  let best = 0;
  for (const [key, g] of groups) {
    if (key === controlKey || g.c <= 0) continue;
    const ratio = (g.r / g.n - base.r / base.n) / (g.c / g.n);
    if (ratio > best) best = ratio;
  }
  return Math.min(100, Math.max(1, 2 * best));
}

export function roundMoments(train: Trajectories): RoundMoments {
  const T = train.rounds;
  const m: RoundMoments = { meanR: [], meanC: [], varR: [], varC: [], cov: [] };
  for (let t = 0; t < T; t++) {
    let n = 0, sr = 0, sc = 0, srr = 0, scc = 0, src = 0;
    for (let i = 0; i < train.users; i++) {
      const k = i * T + t;
      if (!train.mask[k]) continue;
      const r = train.rtg[k];
      const c = train.ctg[k];
      n++;
      sr += r;
      sc += c;
      srr += r * r;
      scc += c * c;
      src += r * c;
    }
    const N = Math.max(n, 1);
    const mr = sr / N;
    const mc = sc / N;
    m.meanR.push(mr);
    m.meanC.push(mc);
    m.varR.push(Math.max(srr / N - mr * mr, 0));
    m.varC.push(Math.max(scc / N - mc * mc, 0));
    m.cov.push(src / N - mr * mc);
  }
  return m;
}

/**
 * Weight of one sample of the `weighted` variant: exp(clip(z, -3, 3) / beta) where z is the
 * Lagrangian return-to-go RTG_t - λ·CTG_t standardised among the training samples of round t
 * at that λ (closed form from the round's moments).
 */
export function lagrangianWeight(rtg: number, ctg: number, t: number, lambda: number, m: RoundMoments, beta: number): number {
  const mean = m.meanR[t] - lambda * m.meanC[t];
  const variance = m.varR[t] - 2 * lambda * m.cov[t] + lambda * lambda * m.varC[t];
  const z = variance > 1e-12 ? (rtg - lambda * ctg - mean) / Math.sqrt(variance) : 0;
  return Math.exp(Math.min(3, Math.max(-3, z)) / beta);
}

/** Decision-time targets: weighted means of RTG_0 and CTG_0 under the λ weighting (plain means when unweighted). */
export function targetTable(train: Trajectories, m: RoundMoments, lambdaMax: number, beta: number | null, points = 21): TargetTable {
  const table: TargetTable = { lambdas: [], rtg: [], ctg: [] };
  for (let g = 0; g < points; g++) {
    const lambda = (lambdaMax * g) / (points - 1);
    let sw = 0, sr = 0, sc = 0;
    for (let i = 0; i < train.users; i++) {
      const k = i * train.rounds;
      if (!train.mask[k]) continue;
      const w = beta === null ? 1 : lagrangianWeight(train.rtg[k], train.ctg[k], 0, lambda, m, beta);
      sw += w;
      sr += w * train.rtg[k];
      sc += w * train.ctg[k];
    }
    table.lambdas.push(lambda);
    table.rtg.push(sr / sw);
    table.ctg.push(sc / sw);
  }
  return table;
}

/** Linear interpolation in a target table (clamped to its ends). */
export function targetsAt(table: TargetTable, lambda: number): { rtg: number; ctg: number } {
  const L = table.lambdas;
  if (lambda <= L[0]) return { rtg: table.rtg[0], ctg: table.ctg[0] };
  if (lambda >= L[L.length - 1]) return { rtg: table.rtg[L.length - 1], ctg: table.ctg[L.length - 1] };
  let g = 1;
  while (L[g] < lambda) g++;
  const f = (lambda - L[g - 1]) / (L[g] - L[g - 1]);
  return { rtg: table.rtg[g - 1] + f * (table.rtg[g] - table.rtg[g - 1]), ctg: table.ctg[g - 1] + f * (table.ctg[g] - table.ctg[g - 1]) };
}

/**
 * The to-go tokens of the outcome-relabelled recipes: at round t, minus the reward and cost
 * realised in rounds before t. Nothing fed at round t depends on the action taken at t, and
 * at decision time the engines reproduce them exactly (a target table of zeros, decremented
 * by each realised reward and cost).
 */
export function withPastTokens(traj: Trajectories): Trajectories {
  const T = traj.rounds;
  const rtg = new Float32Array(traj.users * T);
  const ctg = new Float32Array(traj.users * T);
  for (let i = 0; i < traj.users; i++) {
    let r = 0;
    let c = 0;
    for (let t = 0; t < T; t++) {
      rtg[i * T + t] = -r;
      ctg[i * T + t] = -c;
      if (traj.mask[i * T + t]) {
        r += traj.rewards[i * T + t];
        c += traj.costs[i * T + t];
      }
    }
  }
  return { ...traj, rtg, ctg };
}

/** The target table of the outcome-relabelled recipes: zero at every λ (see withPastTokens). */
export function zeroTargetTable(lambdaMax: number, points = 21): TargetTable {
  const lambdas = Array.from({ length: points }, (_, g) => (lambdaMax * g) / (points - 1));
  return { lambdas, rtg: lambdas.map(() => 0), ctg: lambdas.map(() => 0) };
}
