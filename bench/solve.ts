/**
 * Decision latency and campaign solving with the native engine (paper Table 2 scenarios, and
 * issue 15's gates): one user's decision (decideSync, at round 0 and with five rounds of
 * history), 128 users' decisions in one call (round 0 and round 5), the engine's GEMM against
 * Eigen's on the same shapes, a full solve of 10,000 users x 10 rounds at 0.5x (the default
 * subsampled search beside the exhaustive one, in the same run), and native against
 * onnxruntime on the same model. For the default CODT size (d_model 64, 3 layers); weights do
 * not change the cost, so a freshly initialised model is timed unless --model gives a trained
 * one (a trained model's λ search is the realistic one).
 *
 * Run alone, `node --import tsx bench/solve.ts --scale=USERS [--model=FILE] [--rounds=10] [--precision=bf16]`
 * solves USERS fresh SY users once at 0.5x and prints one JSON line with the wall time and
 * the peak RSS (issue 15's 1M x 10 scale run; wrap it in /usr/bin/time -v for the kernel's
 * own peak RSS).
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { resolveSyConfig } from '../src/data/synth.js';
import type { CodtModel, ModelMeta } from '../src/model/artifact.js';
import { CODT_DEFAULTS, type CodtConfig } from '../src/model/config.js';
import { readOnnx } from '../src/model/onnx.js';
import { initParams } from '../src/model/params.js';
import { OrtPool, OrtSession } from '../src/infer/ort.js';
import { loadNativeModel, nativeDecisionCache, nativeForward, nativeForwardSync, nativeRollout, type NativeForwardInputs, type NativeModel, type NativePrecision } from '../src/native/index.js';
import { nativeGemmBench } from '../src/native/testing.js';
import { decide, decideSync, solve, type SolveResult } from '../src/solve/index.js';
import { searchWork } from '../src/solve/search-work.js';
import { latency, time, type Timing } from './harness.js';

export function defaultSizedModel(): CodtModel {
  const config: CodtConfig = { stateDim: 11, actionSizes: [4], context: 10, ...CODT_DEFAULTS };
  const meta = {
    format: 'saco-codt', version: 1, config,
    normalization: { stateMean: new Array(11).fill(0), stateStd: new Array(11).fill(1), rtgScale: 80, ctgScale: 20, lambdaMax: 4 },
    stateNames: [], actionEncodings: [{ column: 'action', values: [0, 2, 5, 10] }], categorical: [], beta: 0.5,
    moments: { meanR: [], meanC: [], varR: [], varC: [], cov: [] }, targets: { lambdas: [0, 4], rtg: [80, 60], ctg: [20, 5] }, fingerprint: '',
    training: { trainer: 'tfjs', backend: 'none', seed: 1, epochs: 0, steps: 0, bestValLoss: 0, samplesPerSecond: 0, data: 'none' },
  } as unknown as ModelMeta;
  return { meta, params: initParams(config, 1) };
}

/**
 * FLOPs of one user's decision at round T - 1 on the engine's decision path: every token
 * after round 0's targets (the prefix cache holds those) but the last action; each through
 * every layer (Q, K, V, O: 8 D^2; MLP: 16 D^2; attention over the cache: 4 D per earlier
 * token), except that only state tokens go through the last layer past its K and V (4 D^2).
 */
export function decisionFlops(c: CodtConfig, T: number): number {
  const D = c.dModel;
  const perRound = (c.variant === 'no-constraint' ? 1 : c.variant === 'no-rtg' ? 1 : 2) + 2;
  const prefix = perRound - 2;
  let flop = 0;
  for (let p = prefix; p < T * perRound - 1; p++) {
    const state = p % perRound === prefix;
    const full = 24 * D * D + 4 * D * (p + 1);
    flop += (c.layers - 1) * full + (state ? full + 2 * D * actionWidth(c) : 4 * D * D);
  }
  return flop;
}

const actionWidth = (c: CodtConfig) => c.actionSizes.reduce((a, b) => a + b, 0);

/** The 128-user scenarios' inputs: B users' first T rounds, every user starting at targets 0 and λ. */
export function decisionBatch(c: CodtConfig, B: number, T: number, lambda: number): NativeForwardInputs {
  const d = c.stateDim;
  const K = actionWidth(c);
  return {
    batch: B, rounds: T,
    states: Float32Array.from({ length: B * T * d }, (_, i) => 0.5 * Math.sin(0.7 * i)),
    rtg: Float32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 0 : -10 * ((i * 7) % 5))),
    ctg: Float32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 0 : -2 * ((i * 3) % 4))),
    actionsOneHot: Float32Array.from({ length: B * T * K }, (_, i) => ((i * 5) % K === 0 ? 1 : 0)),
    lambda: new Float32Array(B).fill(lambda),
  };
}

/** The same users' first T rounds of x (what per-round serving decided the round before). */
export function firstRounds(c: CodtConfig, x: NativeForwardInputs, T: number): NativeForwardInputs {
  const out = decisionBatch(c, x.batch, T, 0);
  out.lambda.set(x.lambda);
  for (const [key, width] of [['states', c.stateDim], ['rtg', 1], ['ctg', 1], ['actionsOneHot', actionWidth(c)]] as const) {
    for (let u = 0; u < x.batch; u++) out[key].set(x[key].subarray(u * x.rounds * width, (u * x.rounds + T) * width), u * T * width);
  }
  return out;
}

/** Five rounds of one user's history (decide()'s `history`, as plain arrays). */
export interface ServingHistory {
  states: number[][];
  actions: number[][];
  rewards: number[];
  costs: number[];
}

/** `body` with the decision cache of every model off (a cold decision), restored after it whatever happens. */
export async function withoutDecisionCache<T>(models: NativeModel[], body: () => Promise<T>): Promise<T> {
  const capacities = models.map((h) => nativeDecisionCache(h).capacity);
  for (const h of models) nativeDecisionCache(h, 0);
  try {
    return await body();
  } finally {
    models.forEach((h, i) => nativeDecisionCache(h, capacities[i]));
  }
}

/** Five rounds of history for each of `users` served users (distinct states), around `state`. */
export function servingHistories(c: CodtConfig, state: Float32Array, users: number): ServingHistory[] {
  return Array.from({ length: users }, (_, u) => ({
    states: Array.from({ length: 5 }, (_, t) => Array.from(state, (v, j) => v + 0.05 * t * (j % 3) + 0.01 * ((u * 7 + j) % 13))),
    actions: Array.from({ length: 5 }, (_, t) => c.actionSizes.map((k) => (t + 1) % k)),
    rewards: [12, 0, 30, 0, 18].map((r) => r + (u % 5)),
    costs: [2, 0, 5, 0, 0],
  }));
}

/** Decides each history's round 4 (its first four rounds), so its round 5 is served from the decision cache. */
export function decideRound4(model: NativeModel, lambda: number, histories: ServingHistory[]): void {
  for (const x of histories) {
    decideSync({ model, lambda, state: x.states[4], history: { states: x.states.slice(0, 4), actions: x.actions.slice(0, 4), rewards: x.rewards.slice(0, 4), costs: x.costs.slice(0, 4) } });
  }
}

/** One of issue 15's gates as this run measured it. */
export interface Gate {
  gate: string;
  measured: string;
  target: string;
  met: boolean;
}

/** The gates of the last benchSolve() run (printed by it, written by bench/index.ts's caller if wanted). */
export const solveGates: Gate[] = [];

function gate(name: string, measured: string, target: string, met: boolean): void {
  solveGates.push({ gate: name, measured, target, met });
}

export async function benchSolve(options: { quick?: boolean; modelFile?: string } = {}): Promise<Timing[]> {
  solveGates.length = 0;
  const model = options.modelFile ? readOnnx(options.modelFile) : defaultSizedModel();
  const h = loadNativeModel(model);
  const c = model.meta.config;
  const d = c.stateDim;
  const K = c.actionSizes.reduce((a, b) => a + b, 0);
  const lambda = 0.25 * model.meta.normalization.lambdaMax;
  const state = Float32Array.from({ length: d }, (_, j) => 0.1 * j);
  const history = {
    states: Array.from({ length: 5 }, (_, t) => Array.from(state, (v, j) => v + 0.05 * t * (j % 3))),
    actions: Array.from({ length: 5 }, (_, t) => c.actionSizes.map((k) => (t + 1) % k)),
    rewards: [12, 0, 30, 0, 18],
    costs: [2, 0, 5, 0, 0],
  };
  const out: Timing[] = [];
  try {
    const seconds = options.quick ? 0.5 : 3;
    const r0 = await latency('single-user decision: decideSync(), round 0', () => decideSync({ model: h, lambda, state }), seconds);
    // cold: the user's earlier rounds are not in the decision cache, so all 21 tokens are
    // computed (the cache off: a repeated request would find the entry its first call made)
    const r5 = await withoutDecisionCache([h], () => latency('single-user decision: decideSync(), round 5 (five rounds of history), cold: round 4 not decided before', () => decideSync({ model: h, lambda, state, history }), seconds));
    // per-round serving: 256 users' round 4 decided first, then their round 5 (each call finds
    // the user's round 4 in the decision cache and computes the 4 new tokens)
    const served = servingHistories(c, state, 256);
    decideRound4(h, lambda, served);
    let next = 0;
    const r5served = await latency('single-user decision: decideSync(), round 5, per-round serving: the user\'s round 4 decided before (decision cache)', () => decideSync({ model: h, lambda, state, history: served[next++ % served.length] }), seconds);
    out.push(r0, r5, r5served);
    out.push(await latency('single-user decision: decide() (off-thread), round 0', () => decide({ model: h, lambda, state }), seconds));
    gate('one user, decideSync p50, round 0', `${(1000 * r0.medianMs).toFixed(1)} µs`, '≤ 20 µs', 1000 * r0.medianMs <= 20);
    gate('one user, decideSync p50, round 5: per-round serving (round 4 decided before) / cold', `${(1000 * r5served.medianMs).toFixed(1)} µs / ${(1000 * r5.medianMs).toFixed(1)} µs`, '≤ 20 µs', 1000 * r5served.medianMs <= 20 && 1000 * r5.medianMs <= 20);
    // 128 users in one call: round 0 (no history), and round 5 (five rounds of history each)
    const B = 128;
    const b0 = decisionBatch(c, B, 1, lambda);
    const b5 = decisionBatch(c, B, 6, lambda);
    const one = { ...b0, batch: 1, states: state, rtg: b0.rtg.subarray(0, 1), ctg: b0.ctg.subarray(0, 1), actionsOneHot: b0.actionsOneHot.subarray(0, K), lambda: b0.lambda.subarray(0, 1) };
    const nativeOne = await latency('single user, native forward on the calling thread (no decide() bookkeeping), round 0', async () => nativeForwardSync(h, one), seconds);
    out.push(nativeOne);
    const n0 = await latency('128 users, one decision each (one call), round 0', () => nativeForward(h, b0, 'incremental'), seconds);
    const n5 = await withoutDecisionCache([h], () => latency('128 users, one decision each (one call), round 5, cold: round 4 not decided before', () => nativeForward(h, b5, 'incremental'), seconds));
    // per-round serving: the same 128 users' round 4 (their first 5 rounds) decided first
    const b4 = firstRounds(c, b5, 5);
    await nativeForward(h, b4, 'incremental');
    const n5served = await latency('128 users, one decision each (one call), round 5, per-round serving: their round 4 decided before (decision cache)', () => nativeForward(h, b5, 'incremental'), seconds);
    // per-round serving where one user of every 16 is new this round (their earlier rounds never
    // decided here): a block continues its kept users and computes the new one from the start
    let arrivals = 0;
    const n5mixed = await latency('128 users, one decision each (one call), round 5, per-round serving with 8 of them new this round (one per block of 16)', () => {
      for (let u = 0; u < B; u += 16) b5.states[u * 6 * d] = 0.25 + 1e-6 * ++arrivals; // a history never seen
      return nativeForward(h, b5, 'incremental');
    }, seconds);
    out.push(n0, n5, n5served, n5mixed);
    gate('128 users in one call, round 0', `${n0.medianMs.toFixed(3)} ms`, '≤ 0.5 ms', n0.medianMs <= 0.5);
    gate('128 users in one call, round 5: per-round serving / cold', `${n5served.medianMs.toFixed(3)} ms / ${n5.medianMs.toFixed(3)} ms`, '≤ 1 ms', n5served.medianMs <= 1 && n5.medianMs <= 1);
    // the per-round serving gates again with bf16 products (opt-in: precision 'bf16'), same run
    const h16 = loadNativeModel(model, { precision: 'bf16' });
    try {
      decideRound4(h16, lambda, served);
      const r5served16 = await latency('single-user decision: decideSync(), round 5, per-round serving, bf16 products', () => decideSync({ model: h16, lambda, state, history: served[next++ % served.length] }), seconds);
      const fresh5 = decisionBatch(c, B, 6, lambda); // (b5 now holds the mixed scenario's new users)
      await nativeForward(h16, firstRounds(c, fresh5, 5), 'incremental');
      const n5served16 = await latency('128 users, one decision each (one call), round 5, per-round serving, bf16 products', () => nativeForward(h16, fresh5, 'incremental'), seconds);
      out.push(r5served16, n5served16);
      gate('bf16 (opt-in): one user, decideSync p50, round 5, per-round serving', `${(1000 * r5served16.medianMs).toFixed(1)} µs`, '≤ 20 µs', 1000 * r5served16.medianMs <= 20);
      gate('bf16 (opt-in): 128 users in one call, round 5, per-round serving', `${n5served16.medianMs.toFixed(3)} ms`, '≤ 1 ms', n5served16.medianMs <= 1);
    } finally {
      h16.unload();
    }
    // the arithmetic of the decision gates: the work of each call against Eigen's sgemm rate on
    // its shape (one core, same run), i.e. the fastest the call can be on this machine's cores
    const oneR5 = { ...b5, batch: 1, states: b5.states.subarray(0, 6 * d), rtg: b5.rtg.subarray(0, 6), ctg: b5.ctg.subarray(0, 6), actionsOneHot: b5.actionsOneHot.subarray(0, 6 * K), lambda: b5.lambda.subarray(0, 1) };
    // the arithmetic is the cold decision's (every token computed): the cache is off for it
    const nativeOneR5 = await withoutDecisionCache([h], () => latency('single user, native forward on the calling thread (no decide() bookkeeping), round 5, cold', async () => nativeForwardSync(h, oneR5), seconds));
    out.push(nativeOneR5);
    const cores = os.cpus().length;
    for (const [label, users, T, ms, rows] of [['one user, round 0', 1, 1, nativeOne.medianMs, 1], ['one user, round 5', 1, 6, nativeOneR5.medianMs, 21], ['128 users, round 0', B, 1, n0.medianMs, 16], ['128 users, round 5', B, 6, n5.medianMs, 16 * 21]] as const) {
      const flop = users * decisionFlops(c, T);
      // Eigen's rate on the layer's three shapes (Q/K/V/O, MLP in, MLP out), weighted by their work
      const D = c.dModel;
      const shapes = [[D, D, 8], [D, 4 * D, 8], [4 * D, D, 8]] as const; // [k, n, share of 24 D^2]
      let eigenS = 0;
      let oursS = 0;
      for (const [k, n, share] of shapes) {
        const g = nativeGemmBench(rows, k, n, options.quick ? 0.1 : 0.3);
        eigenS += share / 24 / g.eigen;
        oursS += share / 24 / g.ours;
      }
      const eigen = 1 / eigenS;
      const threads = Math.min(users > 1 ? cores : 1, Math.ceil(users / 16)); // blocks of 16 users over the threads
      const floorMs = (flop / (eigen * 1e9 * threads)) * 1e3;
      const row = `decision arithmetic, ${label}: ${(flop / 1e6).toFixed(2)} MFLOP per call, ${(flop / (ms * 1e6)).toFixed(1)} GFLOP/s achieved on ${threads} thread(s); Eigen sgemm on ${rows}-row layer shapes ${eigen.toFixed(0)} GFLOP/s per core (engine GEMM ${(1 / oursS).toFixed(0)}): at Eigen's rate the call takes >= ${(1000 * floorMs).toFixed(1)} µs`;
      console.log(row);
      out.push({ name: row, runs: 1, medianMs: floorMs, p95Ms: floorMs, minMs: floorMs });
    }
    // the same scenarios through onnxruntime-node: one session, and a Piscina pool

    const session = await OrtSession.create(model);
    const pool = await OrtPool.create(model);
    try {
      const ortOne = await latency('single user, ORT one session, round 0', () => session.logits(one), seconds);
      const ort128 = await latency('128 users, ORT one session, round 0', () => session.logits(b0), seconds);
      const ort128r5 = await latency('128 users, ORT one session, round 5', () => session.logits(b5), seconds);
      const pool128 = await latency(`128 users, ORT Piscina pool (${pool.workers} workers), round 0`, () => pool.logits(b0), seconds);
      out.push(ortOne, ort128, ort128r5, pool128);
      console.log(`native/ORT speed-up: single user ${(ortOne.medianMs / nativeOne.medianMs).toFixed(1)}x, 128 users ${(ort128.medianMs / n0.medianMs).toFixed(1)}x at round 0 and ${(ort128r5.medianMs / n5.medianMs).toFixed(1)}x at round 5 (one session), ${(pool128.medianMs / n0.medianMs).toFixed(1)}x (pool)`);
      gate('native vs ORT, 128 users (one session), round 0 / round 5', `${(ort128.medianMs / n0.medianMs).toFixed(1)}x / ${(ort128r5.medianMs / n5.medianMs).toFixed(1)}x`, '≥ 3x', ort128.medianMs / n0.medianMs >= 3 && ort128r5.medianMs / n5.medianMs >= 3);
    } finally {
      await session.release();
      await pool.destroy();
    }
    // the engine's GEMM against Eigen's on the same shapes, one thread each, alternated
    for (const [rows, k, n] of [[16, 64, 64], [16, 64, 256], [16, 256, 64], [128, 64, 64], [128, 64, 256], [128, 256, 64]]) {
      const g = nativeGemmBench(rows, k, n, options.quick ? 0.2 : 1);
      const ms = (2 * rows * k * n) / g.ours / 1e6;
      out.push({ name: `GEMM ${rows}x${k} @ ${k}x${n} (+bias), one core: engine ${g.ours.toFixed(0)} GFLOP/s, Eigen ${g.eigen.toFixed(0)} GFLOP/s (${(g.ours / g.eigen).toFixed(2)}x)`, runs: 5, medianMs: ms, p95Ms: ms, minMs: ms });
    }
    // full solve at 0.5x: the default (subsampled bracketing) and the exhaustive search, same run
    const users = options.quick ? 2000 : 10000;
    const env = { seed: 1, rounds: c.context };
    let sampled: SolveResult | undefined;
    let exhaustive: SolveResult | undefined;
    const solveRow = await time(`full solve, ${users} users x ${env.rounds} rounds at 0.5x, bisection on a subsample, probes grown from it to every user (default; median of runs)`, options.quick ? 1 : 3, async () => {
      sampled = await solve({ users, budget: '0.5x', env, model: h });
    }, 0);
    const exhaustiveRow = await time(`full solve, ${users} users x ${env.rounds} rounds at 0.5x, exhaustive bisection (every probe on every user)`, 1, async () => {
      exhaustive = await solve({ users, budget: '0.5x', env, model: h, subsample: false });
    }, 0);
    out.push(solveRow, exhaustiveRow);
    const s = sampled as SolveResult;
    const e = exhaustive as SolveResult;
    const epsilon = 0.02 * e.budget;
    // λ* within the tolerance: the subsampled λ*'s natural spend on every user is in the band the exhaustive search stops in
    const at = await nativeRollout({ env: resolveSyConfig({ ...env, users: 1 }), rounds: env.rounds, budget: Infinity, policy: 'codt', lambda: s.lambda, model: h.id, userIds: Uint32Array.from({ length: users }, (_, i) => i) });
    const inBand = at.cost <= e.budget && at.cost >= e.budget - epsilon;
    const revenueGap = s.revenue / e.revenue - 1;
    console.log(`solve ${users} x ${env.rounds} at 0.5x: subsampled λ* ${s.lambda.toFixed(4)} (natural spend ${at.cost.toFixed(0)}, band [${(e.budget - epsilon).toFixed(0)}, ${e.budget.toFixed(0)}]), ` +
      `${searchWork(s, users).toFixed(2)} rollouts' worth of users: ${s.rollouts - 1} rollouts on every user + ${s.sampleRollouts ?? 0} on parts (the largest ${s.sampleUsers ?? 0} users); ` +
      `exhaustive λ* ${e.lambda.toFixed(4)} (cost ${e.cost.toFixed(0)}), ${e.rollouts - 1} rollouts; revenue ${s.revenue.toFixed(0)} vs ${e.revenue.toFixed(0)} (${(100 * revenueGap).toFixed(2)}%); the reference rollout of the logging policy is one more in both`);
    console.log(`  subsampled search's probes (λ: users → spend): ${(s.trace as Array<{ lambda: number; cost: number; users?: number }>).map((p) => `${p.lambda.toFixed(4)}: ${p.users ?? users} → ${p.cost.toFixed(0)}`).join(', ')}`);
    gate(`full solve ${users} x ${env.rounds} at 0.5x`, `${(solveRow.medianMs / 1000).toFixed(2)} s (exhaustive ${(exhaustiveRow.medianMs / 1000).toFixed(2)} s)`, '≤ 1.5 s', solveRow.medianMs <= 1500);
    gate('its λ* within the search tolerance, revenue within 0.5% of the exhaustive search', `natural spend at λ* ${inBand ? 'in' : 'NOT in'} [B − ε, B]; revenue ${(100 * revenueGap).toFixed(2)}%`, 'in band, |Δ| ≤ 0.5%', inBand && Math.abs(revenueGap) <= 0.005);
    // the same solve with onnxruntime decisions (no KV cache: round t re-runs t+1 rounds), fewer users
    const ortUsers = options.quick ? 500 : 2000;
    const ortPool = await OrtPool.create(model);
    try {
      const nat = await time(`full solve, ${ortUsers} users x ${env.rounds} rounds at 0.5x, native engine (exhaustive bisection, as the ORT path runs)`, options.quick ? 1 : 3, () => solve({ users: ortUsers, budget: '0.5x', env, model: h, subsample: false }), 0);
      const ort = await time(`full solve, ${ortUsers} users x ${env.rounds} rounds at 0.5x, ORT Piscina pool (${ortPool.workers})`, 1, () => solve({ users: ortUsers, budget: '0.5x', env, model, engine: 'ort', ort: ortPool }), 0);
      out.push(nat, ort);
      gate(`native vs ORT, full solve ${ortUsers} x ${env.rounds} (the same search)`, `${(ort.medianMs / nat.medianMs).toFixed(1)}x`, '≥ 10x', ort.medianMs / nat.medianMs >= 10);
    } finally {
      await ortPool.destroy();
    }
  } finally {
    h.unload();
  }
  console.log('\n| gate (issue 15) | measured | target | met |\n| --- | --- | --- | --- |');
  for (const g of solveGates) console.log(`| ${g.gate} | ${g.measured} | ${g.target} | ${g.met ? 'met' : 'NOT met'} |`);
  return out;
}

/** One solve of `users` fresh SY users at 0.5x: wall time, peak RSS, the search's work (the 10k/100k/1M scale runs). */
export async function benchScale(users: number, modelFile?: string, rounds = 10, precision: NativePrecision = 'fp32'): Promise<Record<string, number | string | boolean>> {
  const model = modelFile ? readOnnx(modelFile) : defaultSizedModel();
  const h = loadNativeModel(model, { precision });
  try {
    const t0 = performance.now();
    const r = await solve({ users, budget: '0.5x', env: { seed: 1, rounds }, model: h, onProgress: (p) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${p.phase} rollouts ${p.rollouts}${p.lambda !== undefined ? ` λ ${p.lambda.toFixed(4)} cost ${p.cost?.toFixed(0)}` : ''}`) });
    const wallMs = performance.now() - t0;
    return {
      users, rounds, model: modelFile ?? 'defaultSizedModel()', precision, wallMs, peakRssMiB: process.resourceUsage().maxRSS / 1024, lambda: r.lambda, revenue: r.revenue, cost: r.cost, budget: r.budget,
      baRate: r.baRate, rollouts: r.rollouts, sampleRollouts: r.sampleRollouts ?? 0, sampleUsers: r.sampleUsers ?? 0, blocked: r.blocked, feasible: r.feasible,
    };
  } finally {
    h.unload();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const scale = Number(arg('scale'));
  if (!Number.isInteger(scale) || scale < 1) {
    console.error('usage: node --import tsx bench/solve.ts --scale=USERS [--model=FILE] [--rounds=10] [--precision=fp32|bf16]');
    process.exit(2);
  }
  const precision = arg('precision') ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'bf16') {
    console.error('--precision is fp32 or bf16');
    process.exit(2);
  }
  console.log(JSON.stringify(await benchScale(scale, arg('model'), Number(arg('rounds') ?? 10), precision)));
}

/** Paper Table 2 (their hardware: CPU-only, and an NVIDIA RTX 4090). */
export const PAPER_TABLE_2 = [
  { scenario: 'Single-user', ms: 24.6243, hardware: 'CPU-only (paper)' },
  { scenario: 'Single-user', ms: 3.8128, hardware: 'NVIDIA RTX 4090 (paper)' },
  { scenario: '128 users', ms: 48.5075, hardware: 'NVIDIA RTX 4090 (paper)' },
];

export interface QualityRow {
  budget: string;
  saco: number;
  random: number;
  oracle: number;
  noCoupon: number;
  sacoBaRate: number;
  /** SACO's incremental revenue over no coupon as a share of the Oracle's. */
  shareOfOracle: number;
  rolloutsBisection: number;
  rolloutsSlsqp: number;
  slsqpBaRate: number;
}

/** SACO vs Random vs the myopic Oracle at three budgets on fresh SY users, with a trained model. */
export async function benchQuality(modelFile: string, users = 10000): Promise<QualityRow[]> {
  const model = readOnnx(modelFile);
  const h = loadNativeModel(model);
  const env = { seed: 1, rounds: model.meta.config.context };
  const ids = { ids: Uint32Array.from({ length: users }, (_, i) => 1_000_000 + i) };
  const rows: QualityRow[] = [];
  try {
    const { nativeRollout } = await import('../src/native/index.js');
    const none = await nativeRollout({ env: resolveSyConfig(env), rounds: env.rounds, budget: 1e-9, policy: 'random', lambda: 0, userIds: ids.ids });
    for (const budget of ['0.25x', '0.5x', '0.75x'] as const) {
      const saco = await solve({ users: ids, budget, env, model: h });
      const slsqp = await solve({ users: ids, budget, env, model: h, method: 'slsqp' });
      const random = await solve({ users: ids, budget, env, policy: 'random' });
      const oracle = await solve({ users: ids, budget, env, policy: 'oracle', lambdaMax: 4 * model.meta.normalization.lambdaMax });
      rows.push({
        budget, saco: saco.revenue, random: random.revenue, oracle: oracle.revenue, noCoupon: none.revenue, sacoBaRate: saco.baRate,
        shareOfOracle: (saco.revenue - none.revenue) / (oracle.revenue - none.revenue),
        rolloutsBisection: saco.rollouts, rolloutsSlsqp: slsqp.rollouts, slsqpBaRate: slsqp.baRate,
      });
    }
  } finally {
    h.unload();
  }
  return rows;
}
