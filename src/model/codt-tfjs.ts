/**
 * CODT in TensorFlow.js: the reference forward pass and loss (DESIGN.md section 5).
 *
 * Per round t the tokens are (RTG_t, CTG_t, s_t, a_t); each embedding is
 * Linear(x) + E_time[t] + Linear_λ(λ / λmax). LayerNorm, pre-LN causal blocks, a final
 * LayerNorm, and one linear head whose output is split into one softmax per action
 * dimension, read at the s_t token. Actions enter one-hot (a matmul, not a gather: the
 * wasm backend has no gather gradient).
 */
import * as tf from '@tensorflow/tfjs';
import { actionWidth, paramSpecs, tokenKinds, usesLambda, type CodtConfig, type TokenKind } from './config.js';
import type { Params } from './params.js';
import type { Normalization } from './stats.js';
import { LN_EPS, MASK_VALUE, type CodtBatch } from './types.js';

const GELU_C = Math.sqrt(2 / Math.PI);

// Modules that only need the layouts import them from types.ts; these re-exports keep older
// type-only importers compiling (type imports are erased, so they never load tfjs).

/** A variable holding `init`'s values; `init` itself is released. */
export function variableFrom(init: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(init, trainable);
  init.dispose();
  return v;
}

/** GELU, tanh form (ONNX Gelu approximate="tanh"; the native engine uses the same). */
function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), GELU_C))));
}

function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, LN_EPS))), g), b);
}

export class TfCodt {
  readonly config: CodtConfig;
  readonly norm: Normalization;
  readonly vars: Map<string, tf.Variable>;
  private readonly kinds: TokenKind[];
  private readonly mask: tf.Tensor2D;
  private readonly stateMean: tf.Tensor;
  private readonly stateStd: tf.Tensor;

  constructor(config: CodtConfig, norm: Normalization, params: Params) {
    this.config = config;
    this.norm = norm;
    this.kinds = tokenKinds(config.variant);
    this.vars = new Map(paramSpecs(config).map((spec) => [spec.name, variableFrom(tf.tensor(params.get(spec.name) as Float32Array, spec.shape), true)]));
    const S = config.context * this.kinds.length;
    const m = new Float32Array(S * S);
    for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) m[i * S + j] = MASK_VALUE;
    this.mask = tf.tensor2d(m, [S, S]);
    this.stateMean = tf.tensor1d(norm.stateMean);
    this.stateStd = tf.tensor1d(norm.stateStd);
  }

  private p(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`CODT parameter ${name} missing`);
    return v;
  }

  private linear(x: tf.Tensor, name: string): tf.Tensor {
    return tf.add(tf.matMul(x as tf.Tensor2D, this.p(`${name}.w`)), this.p(`${name}.b`));
  }

  private attention(x: tf.Tensor, l: number, B: number, S: number, training: boolean, seed: number): tf.Tensor {
    const D = this.config.dModel;
    const H = this.config.heads;
    const hd = D / H;
    const x2 = tf.reshape(x, [B * S, D]);
    const proj = (w: string, b: string) => tf.reshape(tf.add(tf.matMul(x2, this.p(`blocks.${l}.attn.${w}`)), this.p(`blocks.${l}.attn.${b}`)), [B, S, H, hd]);
    const q = tf.transpose(proj('wq', 'bq'), [0, 2, 1, 3]);
    const kT = tf.transpose(proj('wk', 'bk'), [0, 2, 3, 1]);
    const v = tf.transpose(proj('wv', 'bv'), [0, 2, 1, 3]);
    const mask = tf.slice(this.mask, [0, 0], [S, S]);
    let att = tf.softmax(tf.add(tf.mul(tf.matMul(q, kT), 1 / Math.sqrt(hd)), mask));
    att = this.dropout(att, training, seed);
    const o = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * S, D]);
    return tf.reshape(tf.add(tf.matMul(o, this.p(`blocks.${l}.attn.wo`)), this.p(`blocks.${l}.attn.bo`)), [B, S, D]);
  }

  private dropout(x: tf.Tensor, training: boolean, seed: number): tf.Tensor {
    return training && this.config.dropout > 0 ? tf.dropout(x, this.config.dropout, undefined, seed) : x;
  }

  /** Logits [B, T, sum K] read at the state tokens. `dropoutSeed` makes training steps reproducible. */
  forward(batch: CodtBatch, training = false, dropoutSeed = 0): tf.Tensor3D {
    const c = this.config;
    const B = batch.size;
    const T = batch.rounds;
    const D = c.dModel;
    const nTok = this.kinds.length;
    const S = T * nTok;
    const K = actionWidth(c);
    let site = 0;
    const nextSeed = () => dropoutSeed * 1000 + ++site;

    const time = tf.reshape(tf.slice(this.p('embed.time'), [0, 0], [T, D]), [1, T, D]);
    let common: tf.Tensor = time;
    if (usesLambda(c.variant)) {
      const lam = tf.div(tf.tensor2d(batch.lambda, [B, 1]), this.norm.lambdaMax);
      common = tf.add(time, tf.reshape(this.linear(lam, 'embed.lambda'), [B, 1, D]));
    }
    const embed = (kind: TokenKind): tf.Tensor => {
      let e: tf.Tensor;
      if (kind === 'rtg') e = this.linear(tf.div(tf.tensor2d(batch.rtg, [B * T, 1]), this.norm.rtgScale), 'embed.rtg');
      else if (kind === 'ctg') e = this.linear(tf.div(tf.tensor2d(batch.ctg, [B * T, 1]), this.norm.ctgScale), 'embed.ctg');
      else if (kind === 'state') {
        const s = tf.div(tf.sub(tf.tensor2d(batch.states, [B * T, c.stateDim]), this.stateMean), this.stateStd);
        e = this.linear(s, 'embed.state');
      } else e = this.linear(tf.tensor2d(batch.actionsOneHot, [B * T, K]), 'embed.action');
      return tf.add(tf.reshape(e, [B, T, D]), common);
    };
    const tokens = tf.reshape(tf.stack(this.kinds.map(embed), 2), [B, S, D]);
    let h = this.dropout(layerNorm(tokens, this.p('embed.ln.g'), this.p('embed.ln.b')), training, nextSeed());
    for (let l = 0; l < c.layers; l++) {
      const a = this.attention(layerNorm(h, this.p(`blocks.${l}.ln1.g`), this.p(`blocks.${l}.ln1.b`)), l, B, S, training, nextSeed());
      h = tf.add(h, this.dropout(a, training, nextSeed()));
      const x2 = tf.reshape(layerNorm(h, this.p(`blocks.${l}.ln2.g`), this.p(`blocks.${l}.ln2.b`)), [B * S, D]);
      const m = tf.add(tf.matMul(gelu(tf.add(tf.matMul(x2, this.p(`blocks.${l}.mlp.w1`)), this.p(`blocks.${l}.mlp.b1`))) as tf.Tensor2D, this.p(`blocks.${l}.mlp.w2`)), this.p(`blocks.${l}.mlp.b2`));
      h = tf.add(h, this.dropout(tf.reshape(m, [B, S, D]), training, nextSeed()));
    }
    h = layerNorm(h, this.p('ln_f.g'), this.p('ln_f.b'));
    const stateIndex = this.kinds.indexOf('state');
    const hs = tf.reshape(tf.slice(tf.reshape(h, [B, T, nTok, D]), [0, 0, stateIndex, 0], [B, T, 1, D]), [B * T, D]);
    return tf.reshape(this.linear(hs, 'head'), [B, T, K]) as tf.Tensor3D;
  }

  /** Weighted cross-entropy of the logged actions, summed over action dimensions, averaged over real rounds. */
  loss(batch: CodtBatch, training = false, dropoutSeed = 0): tf.Scalar {
    const logits = this.forward(batch, training, dropoutSeed);
    const B = batch.size;
    const T = batch.rounds;
    const K = actionWidth(this.config);
    const target = tf.tensor3d(batch.actionsOneHot, [B, T, K]);
    let ce: tf.Tensor = tf.zeros([B, T]);
    let offset = 0;
    for (const k of this.config.actionSizes) {
      const logp = tf.logSoftmax(tf.slice(logits, [0, 0, offset], [B, T, k]));
      ce = tf.sub(ce, tf.sum(tf.mul(tf.slice(target, [0, 0, offset], [B, T, k]), logp), -1));
      offset += k;
    }
    const w = tf.mul(tf.tensor2d(batch.weights, [B, T]), tf.tensor2d(batch.mask, [B, T]));
    return tf.div(tf.sum(tf.mul(ce, w)), tf.maximum(tf.sum(w), 1e-12)) as tf.Scalar;
  }

  /** Current weights as plain arrays. */
  readParams(): Params {
    return new Map([...this.vars].map(([name, v]) => [name, Float32Array.from(v.dataSync() as Float32Array)]));
  }

  writeParams(params: Params): void {
    tf.tidy(() => {
      for (const [name, v] of this.vars) v.assign(tf.tensor(params.get(name) as Float32Array, v.shape));
    });
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.mask.dispose();
    this.stateMean.dispose();
    this.stateStd.dispose();
  }
}
