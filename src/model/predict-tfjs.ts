/**
 * Decisions from the tfjs reference model: the action distribution at the first round
 * for given states and λ, with the decision-time targets RTG*_0(λ), CTG*_0(λ) of the
 * model's table. Used by tests and small jobs; the native engine does this at scale.
 */
import * as tf from '@tensorflow/tfjs';
import type { CodtModel } from './artifact.js';
import { actionWidth } from './config.js';
import { TfCodt } from './codt-tfjs.js';
import { targetsAt } from './stats.js';
import type { CodtBatch } from './types.js';

/** Softmax per action dimension of the first-round logits; [N, sum K]. */
export function firstRoundProbabilities(model: CodtModel, states: Float32Array, lambda: number): Float32Array {
  const c = model.meta.config;
  const N = states.length / c.stateDim;
  const K = actionWidth(c);
  const { rtg, ctg } = targetsAt(model.meta.targets, lambda);
  const batch: CodtBatch = {
    size: N,
    rounds: 1,
    states,
    rtg: new Float32Array(N).fill(rtg),
    ctg: new Float32Array(N).fill(ctg),
    actionsOneHot: new Float32Array(N * K),
    lambda: new Float32Array(N).fill(lambda),
    mask: new Float32Array(N).fill(1),
    weights: new Float32Array(N).fill(1),
  };
  const net = new TfCodt(c, model.meta.normalization, model.params);
  try {
    return tf.tidy(() => {
      const logits = net.forward(batch, false);
      let offset = 0;
      const parts = c.actionSizes.map((k) => {
        const p = tf.softmax(tf.slice(logits, [0, 0, offset], [N, 1, k]));
        offset += k;
        return p;
      });
      return tf.reshape(tf.concat(parts, 2), [N * K]).dataSync() as Float32Array;
    });
  } finally {
    net.dispose();
  }
}
