/**
 * Decision latency and campaign solving with the native engine (paper Table 2 scenarios):
 * one user's decision, 128 users' decisions in one batch, and a full solve of 10,000 users x
 * 10 rounds, for the default CODT size (d_model 64, 3 layers). Weights do not change the
 * cost, so a freshly initialised model is timed unless --model gives a trained one.
 */
import { resolveSyConfig } from '../src/data/synth.js';
import type { CodtModel, ModelMeta } from '../src/model/artifact.js';
import { CODT_DEFAULTS, type CodtConfig } from '../src/model/config.js';
import { readOnnx } from '../src/model/onnx.js';
import { initParams } from '../src/model/params.js';
import { OrtPool, OrtSession } from '../src/infer/ort.js';
import { loadNativeModel, nativeForward, nativeForwardSync } from '../src/native/index.js';
import { decide, decideSync, solve } from '../src/solve/index.js';
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

export async function benchSolve(options: { quick?: boolean; modelFile?: string } = {}): Promise<Timing[]> {
  const model = options.modelFile ? readOnnx(options.modelFile) : defaultSizedModel();
  const h = loadNativeModel(model);
  const d = model.meta.config.stateDim;
  const state = Float32Array.from({ length: d }, (_, j) => 0.1 * j);
  const out: Timing[] = [];
  try {
    const seconds = options.quick ? 0.5 : 3;
    out.push(await latency('single-user decision: decideSync(), round 0', async () => decideSync({ model: h, lambda: 1, state }), seconds));
    out.push(await latency('single-user decision: decide() (off-thread), round 0', () => decide({ model: h, lambda: 1, state }), seconds));
    const K = model.meta.config.actionSizes.reduce((a, b) => a + b, 0);
    const B = 128;
    const batch = { batch: B, rounds: 1, states: new Float32Array(B * d).fill(0.1), rtg: new Float32Array(B).fill(50), ctg: new Float32Array(B).fill(10), actionsOneHot: new Float32Array(B * K), lambda: new Float32Array(B).fill(1) };
    out.push(await latency('128 users, one decision each (one batch)', () => nativeForward(h, batch, 'incremental'), seconds));
    // the same two scenarios through onnxruntime-node: one session, and a Piscina pool
    const one = { ...batch, batch: 1, states: state, rtg: batch.rtg.subarray(0, 1), ctg: batch.ctg.subarray(0, 1), actionsOneHot: batch.actionsOneHot.subarray(0, K), lambda: batch.lambda.subarray(0, 1) };
    const nativeOne = await latency('single user, native forward on the calling thread (no decide() bookkeeping)', async () => nativeForwardSync(h, one), seconds);
    out.push(nativeOne);
    const session = await OrtSession.create(model);
    const pool = await OrtPool.create(model);
    try {
      const ortOne = await latency('single user, ORT one session', () => session.logits(one), seconds);
      const ort128 = await latency('128 users, ORT one session', () => session.logits(batch), seconds);
      const pool128 = await latency(`128 users, ORT Piscina pool (${pool.workers} workers)`, () => pool.logits(batch), seconds);
      out.push(ortOne, ort128, pool128);
      const native128 = out.find((t) => t.name.startsWith('128 users, one decision')) as Timing;
      console.log(`native/ORT speed-up: single user ${(ortOne.medianMs / nativeOne.medianMs).toFixed(1)}x, 128 users ${(ort128.medianMs / native128.medianMs).toFixed(1)}x (one session), ${(pool128.medianMs / native128.medianMs).toFixed(1)}x (pool)`);
    } finally {
      await session.release();
      await pool.destroy();
    }
    const users = options.quick ? 2000 : 10000;
    const env = { seed: 1, rounds: model.meta.config.context };
    let rollouts = 0;
    out.push(await time(`full solve, ${users} users x ${env.rounds} rounds, bisection (median of runs)`, options.quick ? 1 : 3, async () => {
      const r = await solve({ users, budget: '0.5x', env, model: h });
      rollouts = r.rollouts;
    }, 0));
    console.log(`solve used ${rollouts} rollouts (including the reference rollout of the logging policy)`);
    // the same solve with onnxruntime decisions (no KV cache: round t re-runs t+1 rounds), fewer users
    const ortUsers = options.quick ? 500 : 2000;
    const ortPool = await OrtPool.create(model);
    try {
      out.push(await time(`full solve, ${ortUsers} users x ${env.rounds} rounds, bisection, native engine`, 1, () => solve({ users: ortUsers, budget: '0.5x', env, model: h }), 0));
      out.push(await time(`full solve, ${ortUsers} users x ${env.rounds} rounds, bisection, ORT Piscina pool (${ortPool.workers})`, 1, () => solve({ users: ortUsers, budget: '0.5x', env, model, engine: 'ort', ort: ortPool }), 0));
    } finally {
      await ortPool.destroy();
    }
  } finally {
    h.unload();
  }
  return out;
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
