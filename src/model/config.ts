/**
 * CODT configuration and the canonical list of parameters (name, shape). The tfjs model,
 * the ONNX export and the native engine all read weights by these names, in this order.
 * Matrices are stored [in, out]: y = x W + b.
 */
import { ArgumentError } from '../errors.js';
import type { ForwardInputs } from './types.js';

/**
 * Which recipe the model was trained with (DESIGN.md section 5, paper Fig. 5, README
 * "Training a model"): `expected` (the default: to-go tokens carry the realised past only,
 * weights come from cross-fitted expected outcomes), `weighted` (weights and tokens from
 * realised to-go), `literal` (the paper's unweighted recipe), and the ablations `no-rtg`
 * and `no-constraint`.
 */
export type CodtVariant = 'expected' | 'weighted' | 'literal' | 'no-constraint' | 'no-rtg';
export const CODT_VARIANTS: readonly CodtVariant[] = ['expected', 'weighted', 'literal', 'no-constraint', 'no-rtg'];

export interface CodtConfig {
  stateDim: number;
  /** Number of values of each action dimension (a bundle has several). */
  actionSizes: number[];
  /** Rounds of context (the trajectory length T). */
  context: number;
  dModel: number;
  layers: number;
  heads: number;
  dropout: number;
  variant: CodtVariant;
}

export const CODT_DEFAULTS = { dModel: 64, layers: 3, heads: 2, dropout: 0.1, variant: 'expected' as CodtVariant };

export type TokenKind = 'rtg' | 'ctg' | 'state' | 'action';

/** Token kinds of one round, in sequence order; the action is read at the state token. */
export function tokenKinds(variant: CodtVariant): TokenKind[] {
  switch (variant) {
    case 'no-constraint':
      return ['rtg', 'state', 'action'];
    case 'no-rtg':
      return ['ctg', 'state', 'action'];
    default:
      return ['rtg', 'ctg', 'state', 'action'];
  }
}

/** Whether the variant has a λ input (all but no-constraint). */
export function usesLambda(variant: CodtVariant): boolean {
  return variant !== 'no-constraint';
}

export function actionWidth(config: Pick<CodtConfig, 'actionSizes'>): number {
  return config.actionSizes.reduce((s, k) => s + k, 0);
}

/** Zeroed forward inputs [batch, rounds, ·] for a model of `config`, every user at λ = `lambda`. */
export function emptyForwardInputs(config: Pick<CodtConfig, 'stateDim' | 'actionSizes'>, batch: number, rounds: number, lambda = 0): ForwardInputs {
  return {
    batch,
    rounds,
    states: new Float32Array(batch * rounds * config.stateDim),
    rtg: new Float32Array(batch * rounds),
    ctg: new Float32Array(batch * rounds),
    actionsOneHot: new Float32Array(batch * rounds * actionWidth(config)),
    lambda: new Float32Array(batch).fill(lambda),
  };
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** How it starts: N(0, std), zeros or ones. */
  init: { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };
  /** AdamW decays matrices only (not biases, LayerNorm or embeddings tables' gains). */
  decay: boolean;
}

/** Throws ArgumentError naming the field if the sizes cannot make a model. */
export function validateCodtConfig(c: CodtConfig): void {
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new ArgumentError(`model.${name}`, `must be an integer in [${min}, ${max}], got ${v}`);
  };
  int('stateDim', c.stateDim, 1, 100000);
  int('context', c.context, 1, 4096);
  int('dModel', c.dModel, 1, 8192);
  int('layers', c.layers, 1, 64);
  int('heads', c.heads, 1, 256);
  if (c.dModel % c.heads !== 0) throw new ArgumentError('model.heads', `d_model ${c.dModel} is not divisible by ${c.heads} heads`);
  if (!Array.isArray(c.actionSizes) || c.actionSizes.length < 1 || c.actionSizes.length > 16) throw new ArgumentError('model.actionSizes', 'must list 1 to 16 action dimensions');
  c.actionSizes.forEach((k, j) => int(`actionSizes[${j}]`, k, 1, 4096));
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new ArgumentError('model.dropout', `must be in [0, 1), got ${c.dropout}`);
  if (!CODT_VARIANTS.includes(c.variant)) throw new ArgumentError('model.variant', `must be one of ${CODT_VARIANTS.join(', ')}, got ${String(c.variant)}`);
}

/** The parameters of a config, in canonical order. */
export function paramSpecs(c: CodtConfig): ParamSpec[] {
  const D = c.dModel;
  const W = (name: string, rows: number, cols: number, std = 0.02): ParamSpec => ({ name, shape: [rows, cols], init: { kind: 'normal', std }, decay: true });
  const B = (name: string, n: number): ParamSpec => ({ name, shape: [n], init: { kind: 'zeros' }, decay: false });
  const G = (name: string, n: number): ParamSpec => ({ name, shape: [n], init: { kind: 'ones' }, decay: false });
  const kinds = tokenKinds(c.variant);
  const specs: ParamSpec[] = [];
  if (kinds.includes('rtg')) specs.push(W('embed.rtg.w', 1, D), B('embed.rtg.b', D));
  if (kinds.includes('ctg')) specs.push(W('embed.ctg.w', 1, D), B('embed.ctg.b', D));
  specs.push(W('embed.state.w', c.stateDim, D), B('embed.state.b', D));
  specs.push(W('embed.action.w', actionWidth(c), D), B('embed.action.b', D));
  specs.push({ ...W('embed.time', c.context, D), decay: false });
  if (usesLambda(c.variant)) specs.push(W('embed.lambda.w', 1, D), B('embed.lambda.b', D));
  specs.push(G('embed.ln.g', D), B('embed.ln.b', D));
  // GPT-2: residual projections start smaller so the residual stream keeps its scale with depth.
  const residualStd = 0.02 / Math.sqrt(2 * c.layers);
  for (let l = 0; l < c.layers; l++) {
    const p = `blocks.${l}`;
    specs.push(G(`${p}.ln1.g`, D), B(`${p}.ln1.b`, D));
    specs.push(W(`${p}.attn.wq`, D, D), B(`${p}.attn.bq`, D));
    specs.push(W(`${p}.attn.wk`, D, D), B(`${p}.attn.bk`, D));
    specs.push(W(`${p}.attn.wv`, D, D), B(`${p}.attn.bv`, D));
    specs.push(W(`${p}.attn.wo`, D, D, residualStd), B(`${p}.attn.bo`, D));
    specs.push(G(`${p}.ln2.g`, D), B(`${p}.ln2.b`, D));
    specs.push(W(`${p}.mlp.w1`, D, 4 * D), B(`${p}.mlp.b1`, 4 * D));
    specs.push(W(`${p}.mlp.w2`, 4 * D, D, residualStd), B(`${p}.mlp.b2`, D));
  }
  specs.push(G('ln_f.g', D), B('ln_f.b', D));
  specs.push(W('head.w', D, actionWidth(c)), B('head.b', actionWidth(c)));
  return specs;
}
