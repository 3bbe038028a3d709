import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { CounterStream } from '../../src/data/rng.js';
import { SY_BUNDLE_DIMS } from '../../src/data/synth.js';
import { buildTrajectories } from '../../src/data/trajectories.js';
import { dataFingerprint, type CodtModel, type ModelMeta } from '../../src/model/artifact.js';
import { selectBackend } from '../../src/model/backend.js';
import { makeBatch } from '../../src/model/batches.js';
import { actionWidth, CODT_VARIANTS, type CodtConfig, type CodtVariant } from '../../src/model/config.js';
import { TfCodt, type CodtBatch } from '../../src/model/codt-tfjs.js';
import { decodeOnnx, encodeOnnx } from '../../src/model/onnx.js';
import { initParams } from '../../src/model/params.js';
import { computeNormalization, roundMoments, targetTable } from '../../src/model/stats.js';
import { generateSy } from '../../src/native/index.js';
import { maxAbsDiff, ortLogits } from '../helpers/model.js';

beforeAll(async () => {
  await selectBackend('auto');
});

/** A model with random (not initial) weights, so every weight matters to the output. */
function randomModel(config: CodtConfig, seed: number, normalization = { stateMean: [] as number[], stateStd: [] as number[], rtgScale: 40, ctgScale: 7, lambdaMax: 3 }): CodtModel {
  const params = initParams(config, seed);
  let k = 0;
  for (const v of params.values()) {
    const s = new CounterStream(seed, k++, 1, 40);
    for (let i = 0; i < v.length; i++) v[i] += 0.2 * s.normal();
  }
  const norm = {
    ...normalization,
    stateMean: normalization.stateMean.length ? normalization.stateMean : Array.from({ length: config.stateDim }, (_, j) => 0.1 * j),
    stateStd: normalization.stateStd.length ? normalization.stateStd : Array.from({ length: config.stateDim }, (_, j) => 1 + 0.5 * j),
  };
  const meta: ModelMeta = {
    format: 'saco-codt',
    version: 1,
    config,
    normalization: norm,
    stateNames: Array.from({ length: config.stateDim }, (_, j) => `s${j}`),
    actionEncodings: config.actionSizes.map((k2, j) => ({ column: `a${j}`, values: Array.from({ length: k2 }, (_, i) => i) })),
    categorical: [],
    beta: 0.5,
    moments: { meanR: [], meanC: [], varR: [], varC: [], cov: [] },
    targets: { lambdas: [0, 3], rtg: [10, 8], ctg: [2, 1] },
    fingerprint: '',
    training: { trainer: 'tfjs', backend: 'test', seed, epochs: 0, steps: 0, bestValLoss: NaN, samplesPerSecond: 0, data: 'random' },
  };
  meta.fingerprint = dataFingerprint(meta);
  return { meta, params };
}

function randomBatch(config: CodtConfig, B: number, T: number, seed: number): CodtBatch {
  const s = new CounterStream(seed, 0, 0, 41);
  const K = actionWidth(config);
  const onehot = new Float32Array(B * T * K);
  for (let i = 0; i < B * T; i++) {
    let off = 0;
    for (const k of config.actionSizes) {
      onehot[i * K + off + Math.floor(s.uniform() * k)] = 1;
      off += k;
    }
  }
  return {
    size: B,
    rounds: T,
    states: Float32Array.from({ length: B * T * config.stateDim }, () => 3 * s.normal()),
    rtg: Float32Array.from({ length: B * T }, () => 100 * s.uniform()),
    ctg: Float32Array.from({ length: B * T }, () => 20 * s.uniform()),
    actionsOneHot: onehot,
    lambda: Float32Array.from({ length: B }, () => 3 * s.uniform()),
    mask: new Float32Array(B * T).fill(1),
    weights: new Float32Array(B * T).fill(1),
  };
}

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
