/**
 * onnxruntime-node in this thread and in a Piscina pool against the native engine, on the
 * same users, λ and model; pool failures and shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { InferenceError, OrtPool, OrtSession } from '../../src/infer/ort.js';
import { greedyActions } from '../../src/model/greedy.js';
import type { CodtModel } from '../../src/model/artifact.js';
import type { ForwardInputs } from '../../src/model/types.js';
import { readOnnx } from '../../src/model/onnx.js';
import { targetsAt } from '../../src/model/stats.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { generateSy, loadNativeModel, nativeForward, nativeRollout, type NativeModel } from '../../src/native/index.js';
import { solve } from '../../src/solve/index.js';
import { tsRollout } from '../../src/solve/ts-rollout.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';
import { maxAbsDiff } from '../helpers/model.js';

let model: CodtModel;
let handle: NativeModel;
let test: Trajectories;
let pool: OrtPool;

beforeAll(async () => {
  model = readOnnx((await sharedModel('native')).path);
  handle = loadNativeModel(model);
  ({ test } = splitByUser(buildTrajectories(syLogToInteractionLog(await generateSy(SY_MODEL_DATA))), { seed: 1 }));
  pool = await OrtPool.create(model, { workers: 2 });
}, SHARED_MODEL_TIMEOUT);

afterAll(async () => {
  await pool.destroy();
  handle.unload();
});

/** Round-0 inputs of the test users at λ with the model's decision-time targets. */
function firstRound(lambda: number, users = test.users): ForwardInputs {
  const d = test.stateDim;
  const { rtg, ctg } = targetsAt(model.meta.targets, lambda);
  const states = new Float32Array(users * d);
  for (let i = 0; i < users; i++) states.set(test.states.subarray(i * test.rounds * d, i * test.rounds * d + d), i * d);
  return { batch: users, rounds: 1, states, rtg: new Float32Array(users).fill(rtg), ctg: new Float32Array(users).fill(ctg), actionsOneHot: new Float32Array(users * 4), lambda: new Float32Array(users).fill(lambda) };
}

describe('ORT sessions and the Piscina pool', () => {
  it('give the native engine\'s actions on the same users, λ and model', async () => {
    const session = await OrtSession.create(model);
    try {
      for (const lambda of [0.3, 1.5, 3]) {
        const inputs = firstRound(lambda);
        const native = await nativeForward(handle, inputs);
        const single = await session.logits(inputs);
        const pooled = await pool.logits(inputs);
        expect(maxAbsDiff(single, native)).toBeLessThan(1e-4);
        expect(maxAbsDiff(pooled, single)).toBe(0);
        const a = greedyActions(native, [4]);
        const b = greedyActions(pooled, [4]);
        let same = 0;
        for (let i = 0; i < a.length; i++) same += a[i] === b[i] ? 1 : 0;
        expect(same).toBe(a.length);
      }
    } finally {
      await session.release();
    }
  });

  it('shard users across the workers, one session each', async () => {
    expect(pool.workers).toBe(2);
    expect(pool.threads).toBe(2);
    const inputs = firstRound(1, 7);
    expect(Array.from(await pool.logits(inputs))).toEqual(Array.from(await pool.logits({ ...inputs })));
  });

  it('a worker error is a rejected Promise with the cause; the pool stays usable', async () => {
    await expect(pool.crashOne()).rejects.toThrow(InferenceError);
    await expect(pool.crashOne()).rejects.toThrow(/worker asked to fail/);
    await expect(pool.logits({ ...firstRound(1, 3), states: new Float32Array(2) })).rejects.toThrow(/inputs.states/);
    expect((await pool.logits(firstRound(1, 5))).length).toBe(20);
  });

  it('a model that will not load is a rejected Promise, and no worker is left behind', async () => {
    const broken: CodtModel = { meta: model.meta, params: new Map([...model.params].map(([k, v]) => [k, k === 'head.w' ? new Float32Array(3) : v])) };
    await expect(OrtPool.create(broken, { workers: 1 })).rejects.toThrow(/head\.w/);
    // bytes that are no model: every worker's session fails to load; the pool is torn down
    await expect(OrtPool.fromBytes(model.meta, new TextEncoder().encode('not an onnx file'), { workers: 2 })).rejects.toThrow(InferenceError);
    const local = await OrtPool.create(model, { workers: 1 });
    expect(local.threads).toBe(1);
    await local.destroy();
    expect(local.threads).toBe(0);
    await expect(local.logits(firstRound(1, 2))).rejects.toThrow(/destroyed/);
  });
});

describe('solve() on the ORT engine', () => {
  it('a TS-driven rollout with ORT decisions equals the native rollout (plan, revenue, cost)', async () => {
    const env = resolveSyConfig({ seed: SY_MODEL_DATA.seed, rounds: 5 });
    const ids = Uint32Array.from({ length: 300 }, (_, i) => 5000 + i);
    for (const [lambda, budget] of [[0.8, Infinity], [2, 1500]] as const) {
      const ortRun = await tsRollout(model.meta, (x) => pool.logits(x), env, ids, undefined, 5, lambda, budget);
      const nat = await nativeRollout({ env, rounds: 5, budget, policy: 'codt', lambda, model: handle.id, userIds: ids, recordPlan: true });
      expect(Array.from(ortRun.plan)).toEqual(Array.from(nat.plan as Int32Array));
      expect(ortRun.cost).toBe(nat.cost);
      expect(Math.abs(ortRun.revenue - nat.revenue)).toBeLessThan(1e-9 * nat.revenue);
      expect(ortRun.blocked).toBe(nat.blocked);
      expect(ortRun.coupons).toBe(nat.coupons);
    }
  });

  it('solve({ engine: "ort" }) finds the native λ* and plan', async () => {
    const common = { users: { ids: Uint32Array.from({ length: 250 }, (_, i) => 7000 + i) }, budget: '0.5x' as const, env: { seed: SY_MODEL_DATA.seed, rounds: 5 } };
    const nat = await solve({ ...common, model: handle });
    const viaOrt = await solve({ ...common, model, engine: 'ort', ort: pool });
    console.log(`native λ* ${nat.lambda.toFixed(4)} (${nat.rollouts} rollouts, ${nat.wallMs.toFixed(0)} ms); ORT λ* ${viaOrt.lambda.toFixed(4)} (${viaOrt.rollouts} rollouts, ${viaOrt.wallMs.toFixed(0)} ms)`);
    expect(viaOrt.engine).toBe('ort');
    expect(viaOrt.lambda).toBe(nat.lambda);
    expect(viaOrt.cost).toBe(nat.cost);
    expect(Array.from(viaOrt.plan)).toEqual(Array.from(nat.plan));
    await expect(solve({ ...common, model, engine: 'ort', method: 'slsqp' })).rejects.toThrow(/bisection/);
    await expect(solve({ ...common, model: handle, engine: 'ort' })).rejects.toThrow(/needs the model itself/);
  });
});
