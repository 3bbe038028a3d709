/**
 * The native CODT engine against onnxruntime-node (same .onnx file), the KV-cached decoder
 * against full recomputation, thread-count independence and the model pool.
 */
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { makeBatch } from '../../src/model/batches.js';
import { CODT_VARIANTS, type CodtConfig } from '../../src/model/config.js';
import type { CodtBatch } from '../../src/model/types.js';
import { encodeOnnx, readOnnx } from '../../src/model/onnx.js';
import { generateSy, loadNativeModel, native, nativeBinaryPath, nativeForward, nativeForwardOn, nativeInfo, nativeModelCount, nativeRollout, type NativeModel } from '../../src/native/index.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';
import { maxAbsDiff, ortLogits, randomBatch, randomModel } from '../helpers/model.js';

let trained: CodtModel;
let test: Trajectories;

beforeAll(async () => {
  trained = readOnnx((await sharedModel('native')).path);
  ({ test } = splitByUser(buildTrajectories(syLogToInteractionLog(await generateSy(SY_MODEL_DATA))), { seed: 1 }));
}, SHARED_MODEL_TIMEOUT);

function randomModelOf(variant: CodtConfig['variant'], seed: number): CodtModel {
  const config: CodtConfig = { stateDim: 5, actionSizes: [3, 2], context: 4, dModel: 16, layers: 2, heads: 4, dropout: 0, variant };
  return randomModel(config, seed);
}

const asInputs = (b: CodtBatch) => ({ batch: b.size, rounds: b.rounds, states: b.states, rtg: b.rtg, ctg: b.ctg, actionsOneHot: b.actionsOneHot, lambda: b.lambda });

describe('native CODT forward = onnxruntime-node on the same file', () => {
  for (const variant of CODT_VARIANTS) {
    it(`random weights (${variant}), batch 1 and 1000, every round`, async () => {
      const model = randomModelOf(variant, 7);
      const h = loadNativeModel(model);
      try {
        const bytes = encodeOnnx(model);
        for (const B of [1, 1000]) {
          const batch = randomBatch(model.meta.config, B, 4, B);
          const ort = await ortLogits(bytes, model.meta, batch);
          expect(maxAbsDiff(await nativeForward(h, asInputs(batch), 'full'), ort)).toBeLessThan(1e-4);
          expect(maxAbsDiff(await nativeForward(h, asInputs(batch), 'incremental'), ort)).toBeLessThan(1e-4);
        }
      } finally {
        h.unload();
      }
    });
  }

  it('trained weights on SY test batches; the KV-cached decoder equals full recomputation', async () => {
    const h = loadNativeModel(trained);
    try {
      const users = Int32Array.from({ length: test.users }, (_, i) => i).subarray(0, 600);
      const lambdas = Float32Array.from(users, (_, i) => (i % 21) * (trained.meta.normalization.lambdaMax / 20));
      const batch = makeBatch(test, users, lambdas, trained.meta.config, { beta: null, moments: trained.meta.moments });
      const ort = await ortLogits(encodeOnnx(trained), trained.meta, batch);
      const full = await nativeForward(h, asInputs(batch), 'full');
      const incremental = await nativeForward(h, asInputs(batch), 'incremental');
      expect(maxAbsDiff(full, ort)).toBeLessThan(1e-4);
      expect(maxAbsDiff(incremental, full)).toBeLessThan(1e-5);
      for (const T of [1, 3]) {
        const part = { ...asInputs(batch), rounds: T, states: new Float32Array(600 * T * test.stateDim), rtg: new Float32Array(600 * T), ctg: new Float32Array(600 * T), actionsOneHot: new Float32Array(600 * T * 4) };
        for (let b = 0; b < 600; b++) {
          part.states.set(batch.states.subarray(b * 5 * test.stateDim, b * 5 * test.stateDim + T * test.stateDim), b * T * test.stateDim);
          part.rtg.set(batch.rtg.subarray(b * 5, b * 5 + T), b * T);
          part.ctg.set(batch.ctg.subarray(b * 5, b * 5 + T), b * T);
          part.actionsOneHot.set(batch.actionsOneHot.subarray(b * 20, b * 20 + T * 4), b * T * 4);
        }
        // a prefix of T rounds gives the first T rounds of the full run
        const prefix = await nativeForward(h, part, 'incremental');
        for (let b = 0; b < 600; b += 97) expect(maxAbsDiff(prefix.subarray(b * T * 4, (b + 1) * T * 4), full.subarray(b * 20, b * 20 + T * 4))).toBeLessThan(1e-5);
      }
    } finally {
      h.unload();
    }
  });
});

describe('rollouts', () => {
  const env = resolveSyConfig({ users: 1, rounds: 5, seed: 1 });
  let h: NativeModel;
  beforeAll(() => {
    h = loadNativeModel(trained);
  });

  it('the Random policy replays the SY logger: the rollout reproduces the generated log', async () => {
    const sy = await generateSy({ users: 700, rounds: 5, seed: 1 });
    let cost = 0;
    let revenue = 0;
    for (let r = 0; r < sy.cost.length; r++) {
      cost += sy.cost[r];
      revenue += sy.reward[r];
    }
    const r = await nativeRollout({ env, rounds: 5, budget: Infinity, policy: 'random', lambda: 0, userIds: Uint32Array.from({ length: 700 }, (_, i) => i), recordPlan: true });
    expect(r.cost).toBe(cost);
    expect(Math.abs(r.revenue - revenue) / revenue).toBeLessThan(1e-12);
    expect(Array.from(r.plan as Int32Array)).toEqual(Array.from(sy.actions));
  });

  it('results are identical for 1 and 2 threads', async () => {
    const ids = Uint32Array.from({ length: 777 }, (_, i) => i * 3);
    const run = (threads: number) => nativeRollout({ env, rounds: 5, budget: 9000, policy: 'codt', lambda: 1.1, model: h.id, userIds: ids, recordPlan: true, threads });
    const [a, b] = [await run(1), await run(2)];
    expect(b.revenue).toBe(a.revenue);
    expect(b.cost).toBe(a.cost);
    expect(b.blocked).toBe(a.blocked);
    expect(Array.from(b.plan as Int32Array)).toEqual(Array.from(a.plan as Int32Array));
  });

  it('with a budget that never binds, the round-by-round path equals the all-rounds-per-block path', async () => {
    const ids = Uint32Array.from({ length: 300 }, (_, i) => i);
    const spec = { env, rounds: 5, policy: 'codt' as const, lambda: 0.7, model: h.id, userIds: ids, recordPlan: true };
    const free = await nativeRollout({ ...spec, budget: Infinity });
    const loose = await nativeRollout({ ...spec, budget: 1e12 });
    expect(loose.blocked).toBe(0);
    expect(loose.revenue).toBe(free.revenue);
    expect(loose.cost).toBe(free.cost);
    expect(loose.coupons).toBe(free.coupons);
    expect(Array.from(loose.plan as Int32Array)).toEqual(Array.from(free.plan as Int32Array));
  });

  it('the environment never lets realised spend exceed the budget', async () => {
    for (const budget of [50, 500, 3000]) {
      const r = await nativeRollout({ env, rounds: 5, budget, policy: 'codt', lambda: 0, model: h.id, userIds: Uint32Array.from({ length: 400 }, (_, i) => i) });
      expect(r.cost).toBeLessThanOrEqual(budget);
      expect(r.blocked).toBeGreaterThan(0);
    }
  });

  it('bad input is a JS exception, never a crash', async () => {
    const b = native();
    const ids = Uint32Array.of(1, 2, 3);
    const spec = { env, rounds: 5, budget: 100, policy: 'codt' as const, lambda: 0.5, model: h.id, userIds: ids };
    expect(() => b.rollout({ ...spec, rounds: 6 })).toThrow(/rounds/);
    expect(() => b.rollout({ ...spec, lambda: 1e6 })).toThrow(/lambda beyond/);
    expect(() => b.rollout({ ...spec, lambda: NaN })).toThrow(/finite/);
    expect(() => b.rollout({ ...spec, budget: -1 })).toThrow(/budget/);
    expect(() => b.rollout({ ...spec, budget: NaN })).toThrow(/budget/);
    expect(() => b.rollout({ ...spec, env: { ...env, features: 5 } })).toThrow(/state width/);
    expect(() => b.rollout({ ...spec, features: new Float64Array(2) })).toThrow(/features/);
    expect(() => b.rollout({ ...spec, features: Float64Array.from({ length: 24 }, () => NaN) })).toThrow(/finite/);
    expect(() => b.rollout({ ...spec, userIds: new Uint32Array(0) })).toThrow(/empty/);
    expect(() => b.rollout({ ...spec, model: 123456 })).toThrow(/not loaded/);
    expect(() => b.rollout({ ...spec, policy: 'greedy' as never })).toThrow(/policy/);
    const inputs = asInputs(randomBatch(trained.meta.config, 2, 5, 1));
    expect(() => b.codtForward(h.id, { ...inputs, rounds: 6 }, 'full')).toThrow(/context/);
    expect(() => b.codtForward(h.id, { ...asInputs(randomBatch(trained.meta.config, 1, 2, 1)), lambda: Float32Array.of(NaN) }, 'incremental')).toThrow(/non-finite/);
    expect(() => b.codtForward(h.id, { ...inputs, states: new Float32Array(3) }, 'full')).toThrow(/inputs.states/);
    expect(() => b.codtForward(h.id, { ...inputs, rtg: inputs.rtg.map(() => NaN) }, 'full')).toThrow(/non-finite/);
    expect(() => b.codtForward(h.id, inputs, 'sideways' as never)).toThrow(/mode/);
    expect(() => b.loadModel({ config: { ...trained.meta.config, heads: 3 }, normalization: trained.meta.normalization, targets: trained.meta.targets }, {})).toThrow(/heads/);
    const params = Object.fromEntries(trained.params);
    expect(() => b.loadModel(trained.meta, { ...params, 'head.w': new Float32Array(3) })).toThrow(/head\.w/);
    expect(() => b.loadModel(trained.meta, { ...params, 'head.b': params['head.b'].map(() => NaN) })).toThrow(/non-finite/);
  });
});

describe('model pool', () => {
  it('a model loaded once is used by a worker_thread through its id (one copy per process)', async () => {
    const h = loadNativeModel(trained);
    try {
      const inputs = asInputs(randomBatch(trained.meta.config, 3, 5, 9));
      const here = await nativeForward(h, inputs, 'full');
      const worker = new Worker(new URL('./worker-share.mjs', import.meta.url), { workerData: { binary: nativeBinaryPath(), id: h.id, inputs } });
      const reply = await new Promise<{ logits: Float32Array; poolSize: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      await worker.terminate();
      expect(Array.from(reply.logits)).toEqual(Array.from(here));
      expect(reply.poolSize).toBe(nativeModelCount());
    } finally {
      h.unload();
    }
  });

  it('loads once, unloads explicitly, and refuses a freed id', async () => {
    const before = nativeModelCount();
    const h = loadNativeModel(trained);
    expect(nativeModelCount()).toBe(before + 1);
    h.unload();
    expect(nativeModelCount()).toBe(before);
    await expect(nativeForward(h, asInputs(randomBatch(trained.meta.config, 1, 1, 1)))).rejects.toThrow(/not loaded/);
  });
});

/** GPUs the driver lists (0 without nvidia-smi), when CUDA_VISIBLE_DEVICES does not hide some. */
function listedGpus(): number | undefined {
  if (process.env.CUDA_VISIBLE_DEVICES !== undefined) return undefined;
  const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  return smi.status === 0 ? smi.stdout.split('\n').filter((l) => l.startsWith('GPU ')).length : 0;
}

describe('CUDA', () => {
  const info = nativeInfo();
  const gpu = info.cudaBuilt && info.cudaDevices > 0;

  it("the CUDA source is compiled wherever nvcc exists; the device count is the driver's", () => {
    const nvcc = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).status === 0;
    expect(info.cudaBuilt).toBe(nvcc);
    const listed = listedGpus();
    if (listed !== undefined) expect(info.cudaDevices).toBe(info.cudaBuilt ? listed : 0);
  });

  it("without a visible GPU, mode 'cuda' says the CPU computed it", async () => {
    if (gpu) return; // the GPU test below covers this machine
    const model = randomModelOf('weighted', 5);
    const h = loadNativeModel(model);
    try {
      const out = await nativeForwardOn(h, asInputs(randomBatch(model.meta.config, 3, 2, 3)), 'cuda');
      expect(out.device).toBe('cpu');
    } finally {
      h.unload();
    }
  });

  it.skipIf(!gpu)(`CUDA forward = onnxruntime to 1e-4, on the GPU${gpu ? '' : ' (skipped: no CUDA device visible)'}`, async () => {
    for (const variant of CODT_VARIANTS) {
      const model = randomModelOf(variant, 7);
      const h = loadNativeModel(model);
      try {
        const batch = randomBatch(model.meta.config, 1000, 4, 1000);
        const ort = await ortLogits(encodeOnnx(model), model.meta, batch);
        const out = await nativeForwardOn(h, asInputs(batch), 'cuda');
        expect(out.device).toBe('cuda');
        expect(maxAbsDiff(out.logits, ort)).toBeLessThan(1e-4);
      } finally {
        h.unload();
      }
    }
  });
});
