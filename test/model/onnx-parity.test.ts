import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { SY_BUNDLE_DIMS } from '../../src/data/synth.js';
import { buildTrajectories } from '../../src/data/trajectories.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { selectBackend } from '../../src/model/backend.js';
import { makeBatch } from '../../src/model/batches.js';
import { CODT_VARIANTS, type CodtConfig, type CodtVariant } from '../../src/model/config.js';
import { TfCodt } from '../../src/model/codt-tfjs.js';
import type { CodtBatch } from '../../src/model/types.js';
import { decodeOnnx, encodeOnnx } from '../../src/model/onnx.js';
import { computeNormalization, roundMoments, targetTable } from '../../src/model/stats.js';
import { generateSy } from '../../src/native/index.js';
import { maxAbsDiff, ortLogits, randomBatch, randomModel } from '../helpers/model.js';

beforeAll(async () => {
  await selectBackend('auto');
});

async function tfLogits(model: CodtModel, batch: CodtBatch): Promise<Float32Array> {
  const net = new TfCodt(model.meta.config, model.meta.normalization, model.params);
  try {
    const t = tf.tidy(() => net.forward(batch, false));
    const out = (await t.data()) as Float32Array;
    t.dispose();
    return out;
  } finally {
    net.dispose();
  }
}

describe('ONNX export: onnxruntime-node reproduces the tfjs forward', () => {
  for (const variant of CODT_VARIANTS as readonly CodtVariant[]) {
    it(`on random weights and inputs (${variant}, bundle actions, batch 1 and 7, full and partial context)`, async () => {
      const config: CodtConfig = { stateDim: 6, actionSizes: [4, 3], context: 5, dModel: 24, layers: 2, heads: 3, dropout: 0.1, variant };
      const model = randomModel(config, 3);
      const bytes = encodeOnnx(model);
      for (const [B, T] of [[1, 5], [7, 5], [7, 2]]) {
        const batch = randomBatch(config, B, T, B * 10 + T);
        const a = await tfLogits(model, batch);
        const b = await ortLogits(bytes, model.meta, batch);
        expect(a.length).toBe(B * T * 7);
        expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
      }
    });
  }

  it('on SY batches with normalisation from the data', async () => {
    const sy = await generateSy({ users: 300, rounds: 6, seed: 12, actionDims: SY_BUNDLE_DIMS });
    const traj = buildTrajectories(syLogToInteractionLog(sy));
    const config: CodtConfig = { stateDim: traj.stateDim, actionSizes: [3, 3], context: 6, dModel: 32, layers: 2, heads: 4, dropout: 0, variant: 'weighted' };
    const norm = computeNormalization(traj, 4);
    const model = randomModel(config, 5, norm);
    const moments = roundMoments(traj);
    model.meta.targets = targetTable(traj, moments, 4, 0.5);
    const bytes = encodeOnnx(model);
    const users = Int32Array.from({ length: 64 }, (_, i) => i * 4);
    const lambdas = Float32Array.from({ length: 64 }, (_, i) => (i % 8) * 0.5);
    const batch = makeBatch(traj, users, lambdas, config, { beta: 0.5, moments });
    expect(maxAbsDiff(await tfLogits(model, batch), await ortLogits(bytes, model.meta, batch))).toBeLessThan(1e-4);
  });

  it('leaves no tensors behind', async () => {
    const config: CodtConfig = { stateDim: 3, actionSizes: [2], context: 3, dModel: 8, layers: 1, heads: 2, dropout: 0, variant: 'weighted' };
    const model = randomModel(config, 2);
    const before = tf.memory().numTensors;
    await tfLogits(model, randomBatch(config, 2, 3, 1));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reads back the same metadata and weights', () => {
    const config: CodtConfig = { stateDim: 3, actionSizes: [2], context: 3, dModel: 8, layers: 1, heads: 2, dropout: 0, variant: 'literal' };
    const model = randomModel(config, 9);
    const back = decodeOnnx(encodeOnnx(model));
    expect(back.meta).toEqual(JSON.parse(JSON.stringify(model.meta)));
    for (const [name, data] of model.params) expect(Array.from(back.params.get(name) as Float32Array)).toEqual(Array.from(data));
  });
});
