import * as ort from 'onnxruntime-node';
import type { ModelMeta } from '../../src/model/artifact.js';
import type { CodtBatch } from '../../src/model/codt-tfjs.js';
import { onnxInputNames } from '../../src/model/onnx.js';
import { actionWidth } from '../../src/model/config.js';

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
