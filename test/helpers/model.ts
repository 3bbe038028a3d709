import * as ort from 'onnxruntime-node';
import { CounterStream } from '../../src/data/rng.js';
import { dataFingerprint, type CodtModel, type ModelMeta } from '../../src/model/artifact.js';
import type { CodtBatch } from '../../src/model/types.js';
import { onnxInputNames } from '../../src/model/onnx.js';
import { actionWidth, type CodtConfig } from '../../src/model/config.js';
import { initParams } from '../../src/model/params.js';
import type { NativeForwardInputs } from '../../src/native/index.js';

/** Runs an exported model in onnxruntime-node on a batch; returns the logits. */
export async function ortLogits(bytes: Uint8Array, meta: ModelMeta, batch: CodtBatch): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const B = batch.size;
  const T = batch.rounds;
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of onnxInputNames(meta)) {
    if (name === 'states') feeds[name] = new ort.Tensor('float32', batch.states, [B, T, meta.config.stateDim]);
    else if (name === 'rtg') feeds[name] = new ort.Tensor('float32', batch.rtg, [B, T]);
    else if (name === 'ctg') feeds[name] = new ort.Tensor('float32', batch.ctg, [B, T]);
    else if (name === 'actions_onehot') feeds[name] = new ort.Tensor('float32', batch.actionsOneHot, [B, T, actionWidth(meta.config)]);
    else if (name === 'lambda') feeds[name] = new ort.Tensor('float32', batch.lambda, [B]);
  }
  const out = await session.run(feeds);
  await session.release();
  return out.logits.data as Float32Array;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A model with random (not initial) weights, so every weight matters to the output. */
export function randomModel(config: CodtConfig, seed: number, normalization = { stateMean: [] as number[], stateStd: [] as number[], rtgScale: 40, ctgScale: 7, lambdaMax: 3 }): CodtModel {
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

export function randomBatch(config: CodtConfig, B: number, T: number, seed: number): CodtBatch {
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

/**
 * The native forward's inputs of a random batch (randomBatch); with `sharedStart` every user
 * starts at the same round-0 targets (9.5, 1.25) and λ 0.75, as round 0's shared prefix needs.
 */
export function forwardInputs(config: CodtConfig, B: number, T: number, seed: number, sharedStart = false): NativeForwardInputs {
  const b = randomBatch(config, B, T, seed);
  const rtg = b.rtg.slice();
  const ctg = b.ctg.slice();
  const lambda = b.lambda.slice();
  if (sharedStart) {
    for (let u = 0; u < B; u++) {
      rtg[u * T] = 9.5;
      ctg[u * T] = 1.25;
      lambda[u] = 0.75;
    }
  }
  return { batch: B, rounds: T, states: b.states, rtg, ctg, actionsOneHot: b.actionsOneHot, lambda };
}

/** The first T rounds of some users of x (in that order): one user alone, or a round decided before. */
export function usersRounds(config: CodtConfig, x: NativeForwardInputs, users: readonly number[], T = x.rounds): NativeForwardInputs {
  const R = x.rounds;
  const rows = (a: Float32Array, w: number) => {
    const out = new Float32Array(users.length * T * w);
    users.forEach((u, i) => {
      for (let t = 0; t < T; t++) out.set(a.subarray((u * R + t) * w, (u * R + t + 1) * w), (i * T + t) * w);
    });
    return out;
  };
  return {
    batch: users.length, rounds: T, states: rows(x.states, config.stateDim), rtg: rows(x.rtg, 1), ctg: rows(x.ctg, 1), actionsOneHot: rows(x.actionsOneHot, actionWidth(config)),
    lambda: Float32Array.from(users, (u) => x.lambda[u]),
  };
}
