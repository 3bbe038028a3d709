/**
 * onnxruntime-node in this thread and in a Piscina pool against the native engine, on the
 * same users, λ and model; pool failures and shutdown.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { greedyActions, InferenceError, OrtPool, OrtSession } from '../../src/infer/ort.js';
import type { CodtModel } from '../../src/model/artifact.js';
import type { ForwardInputs } from '../../src/model/codt-tfjs.js';
import { readOnnx } from '../../src/model/onnx.js';
import { targetsAt } from '../../src/model/stats.js';
import { generateSy, loadNativeModel, nativeForward, type NativeModel } from '../../src/native/index.js';
import { SY_MODEL_DATA } from '../global-setup.js';
import { maxAbsDiff } from '../helpers/model.js';

let model: CodtModel;
let handle: NativeModel;
let test: Trajectories;
let pool: OrtPool;

beforeAll(async () => {
  model = readOnnx(inject('syModelPath'));
  handle = loadNativeModel(model);
  ({ test } = splitByUser(buildTrajectories(syLogToInteractionLog(await generateSy(SY_MODEL_DATA))), { seed: 1 }));
  pool = await OrtPool.create(model, { workers: 2 });
});

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
