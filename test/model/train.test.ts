/**
 * Training on SY: the weighted CODT learns (validation loss well below the uniform
 * policy's log K), its decisions respond to λ, and the exported file runs in ORT.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readOnnx } from '../../src/model/onnx.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, SY_MODEL_TRAINING, sharedModel } from '../helpers/shared-model.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { selectBackend } from '../../src/model/backend.js';
import { makeBatch } from '../../src/model/batches.js';
import { TfCodt } from '../../src/model/codt-tfjs.js';
import { encodeOnnx } from '../../src/model/onnx.js';
import { firstRoundProbabilities } from '../../src/model/predict-tfjs.js';
import { generateSy } from '../../src/native/index.js';
import { trainCodt } from '../../src/native/train-engine.js';
import * as tf from '@tensorflow/tfjs';
import { maxAbsDiff, ortLogits } from '../helpers/model.js';

let train: Trajectories;
let test: Trajectories;

beforeAll(async () => {
  await selectBackend('auto');
  const sy = await generateSy(SY_MODEL_DATA);
  ({ train, test } = splitByUser(buildTrajectories(syLogToInteractionLog(sy)), { seed: 1 }));
});

function firstStates(t: Trajectories): Float32Array {
  const out = new Float32Array(t.users * t.stateDim);
  for (let i = 0; i < t.users; i++) out.set(t.states.subarray(i * t.rounds * t.stateDim, i * t.rounds * t.stateDim + t.stateDim), i * t.stateDim);
  return out;
}

/** Mean face value of the coupon the model would give at round 0, over the test users. */
function expectedFaceValue(model: Parameters<typeof firstRoundProbabilities>[0], lambda: number): number {
  const values = test.actionEncodings[0].values.map(Number);
  const p = firstRoundProbabilities(model, firstStates(test), lambda);
  let ev = 0;
  for (let i = 0; i < test.users; i++) for (let k = 0; k < values.length; k++) ev += p[i * values.length + k] * values[k];
  return ev / test.users;
}

const SMALL = { dModel: 32, layers: 2, heads: 2, batchSize: 64, lr: 2e-3, dropout: 0, seed: 3 };

describe('CODT training on SY', () => {
  it('weighted: validation loss falls well below log K, the coupon shrinks as λ grows, ORT agrees', async () => {
    // trained (or found cached) by the shared-model helper with SY_MODEL_TRAINING on the same split
    const { path: modelPath, run } = await sharedModel('native');
    const model = readOnnx(modelPath);
    const r = { model, history: run.history };
    const logK = Math.log(4);
    const first = r.history[0].valLoss;
    const best = r.model.meta.training.bestValLoss;
    expect(model.meta.config).toMatchObject({ dModel: SY_MODEL_TRAINING.dModel, layers: SY_MODEL_TRAINING.layers, variant: 'weighted' });
    console.log(`weighted: validation loss by epoch ${r.history.map((h) => h.valLoss.toFixed(4)).join(', ')} (log K = ${logK.toFixed(4)}), ${run.samplesPerSecond.toFixed(0)} samples/s on ${run.backend}`);
    expect(best).toBeLessThan(logK - 0.15);
    expect(best).toBeLessThan(first);

    const ev = [0.1, 0.5, 0.9].map((lambda) => expectedFaceValue(r.model, lambda));
    console.log(`weighted: expected face value at λ = 0.1, 0.5, 0.9: ${ev.map((v) => v.toFixed(3)).join(', ')}`);
    expect(ev[0]).toBeGreaterThan(ev[1]);
    expect(ev[1]).toBeGreaterThan(ev[2]);

    // the natively trained file in onnxruntime-node = the tfjs forward, on real SY batches
    const users = Int32Array.from({ length: 50 }, (_, i) => i);
    const batch = makeBatch(test, users, Float32Array.from({ length: 50 }, (_, i) => (i % 10) * 0.3), r.model.meta.config, { beta: null, moments: r.model.meta.moments });
    const net = new TfCodt(r.model.meta.config, r.model.meta.normalization, r.model.params);
    const logitsT = tf.tidy(() => net.forward(batch));
    const a = (await logitsT.data()) as Float32Array;
    logitsT.dispose();
    net.dispose();
    expect(maxAbsDiff(a, await ortLogits(encodeOnnx(r.model), r.model.meta, batch))).toBeLessThan(1e-4);
  }, SHARED_MODEL_TIMEOUT);

  it('the native and tfjs trainers, same recipe and batches, reach validation losses within 2%', async () => {
    const shared = [await sharedModel('native'), await sharedModel('tfjs')];
    const [native, reference] = shared.map((s) => readOnnx(s.path).meta.training);
    const runs = shared.map((s) => s.run);
    console.log(`native vs tfjs: validation loss by epoch ${runs.map((r) => `${r.backend}: ${r.history.map((h) => h.valLoss.toFixed(4)).join(', ')} (${r.samplesPerSecond.toFixed(0)} samples/s)`).join(' | ')}`);
    expect(native.trainer).toBe('native');
    expect(reference.trainer).toBe('tfjs');
    expect(native.epochs).toBe(reference.epochs);
    expect(Math.abs(native.bestValLoss - reference.bestValLoss) / reference.bestValLoss).toBeLessThan(0.02);
  }, SHARED_MODEL_TIMEOUT);

  it('literal (the paper\'s unweighted recipe) is reported as it is', async () => {
    const r = await trainCodt(train, { ...SMALL, variant: 'literal', epochs: 3 });
    const ev = [0.1, 0.5, 0.9].map((lambda) => expectedFaceValue(r.model, lambda));
    console.log(`literal: validation loss ${r.model.meta.training.bestValLoss.toFixed(4)}, expected face value at λ = 0.1, 0.5, 0.9: ${ev.map((v) => v.toFixed(3)).join(', ')} (λmax ${r.model.meta.normalization.lambdaMax})`);
    expect(r.model.meta.normalization.lambdaMax).toBe(1);
    expect(r.model.meta.beta).toBeNull();
    for (const v of ev) expect(v).toBeGreaterThan(0);
    // unweighted: the decision-time targets are plain means, the same at every λ
    expect(new Set(r.model.meta.targets.rtg).size).toBe(1);
  });
});
