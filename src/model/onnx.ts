/**
 * The model artifact: ONE .onnx file (IR 10, opset 21) whose graph is the CODT forward
 * (raw states, RTG, CTG, one-hot actions and λ in; logits at the state tokens out) and
 * whose metadata_props carry config, normalisation, encodings, target tables and the data
 * fingerprint. Written atomically: a failed write leaves no file at the target path.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type onnxProto from 'onnx-proto';
import { ArgumentError, SacoError } from '../errors.js';
import { writeFileAtomic } from '../data/atomic.js';
import type { CodtModel, ModelMeta } from './artifact.js';
import { actionWidth, paramSpecs, tokenKinds, usesLambda, validateCodtConfig, type TokenKind } from './config.js';
import type { Params } from './params.js';
import { validateModel } from './validate.js';
import { LN_EPS, MASK_VALUE } from './types.js';

// onnx-proto (protobufjs) takes ~0.1 s to load: required on the first encode or decode, not
// at import, so `import 'saco'` stays cheap. It is CommonJS, so a synchronous require works.
const require = createRequire(import.meta.url);
let onnxNamespace: typeof onnxProto.onnx | undefined;
function onnx(): typeof onnxProto.onnx {
  onnxNamespace ??= (require('onnx-proto') as typeof onnxProto).onnx;
  return onnxNamespace;
}
const IR_VERSION = 10;
const OPSET = 21;
const META_KEY = 'saco';

/** A model file that is not ours, truncated, or inconsistent. */
export class ModelFileError extends SacoError {
  readonly file: string;
  constructor(file: string, detail: string, code = 'MODEL_FILE_INVALID') {
    super(code, `${file}: ${detail}`);
    this.file = file;
  }
}

/** Collects nodes and initializers with fresh names. */
class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;

  node(op: string, inputs: string[], attrs: onnxProto.onnx.IAttributeProto[] = [], output?: string): string {
    const out = output ?? `${op.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ opType: op, input: inputs, output: [out], name: `n${this.nodes.length}_${op}`, attribute: attrs });
    return out;
  }

  floats(name: string, data: Float32Array, dims: number[]): string {
    this.initializers.push({ name, dataType: onnx().TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  ints(values: number[], name = `const_${this.counter++}`, scalar = false): string {
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push({ name, dataType: onnx().TensorProto.DataType.INT64, dims: scalar ? [] : [values.length], rawData: new Uint8Array(data.buffer) });
    return name;
  }

  scalar(value: number): string {
    return this.floats(`const_${this.counter++}`, Float32Array.of(value), []);
  }
}

const intAttr = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, type: onnx().AttributeProto.AttributeType.INT, i });
const intsAttr = (name: string, ints: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: onnx().AttributeProto.AttributeType.INTS, ints });
const floatAttr = (name: string, f: number): onnxProto.onnx.IAttributeProto => ({ name, type: onnx().AttributeProto.AttributeType.FLOAT, f });
const strAttr = (name: string, s: string): onnxProto.onnx.IAttributeProto => ({ name, type: onnx().AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(s) });

function tensorInput(name: string, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: onnx().TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** The graph inputs a model of this meta takes, in order. */
export function onnxInputNames(meta: ModelMeta): string[] {
  const kinds = tokenKinds(meta.config.variant);
  return [
    'states',
    ...(kinds.includes('rtg') ? ['rtg'] : []),
    ...(kinds.includes('ctg') ? ['ctg'] : []),
    'actions_onehot',
    ...(usesLambda(meta.config.variant) ? ['lambda'] : []),
  ];
}

function buildGraph(model: CodtModel): onnxProto.onnx.IGraphProto {
  const { meta, params } = model;
  const c = meta.config;
  const n = meta.normalization;
  const D = c.dModel;
  const H = c.heads;
  const hd = D / H;
  const K = actionWidth(c);
  const kinds = tokenKinds(c.variant);
  const nTok = kinds.length;
  const g = new GraphBuilder();
  for (const spec of paramSpecs(c)) g.floats(spec.name, params.get(spec.name) as Float32Array, spec.shape);

  // T = the rounds actually given (<= context): slice the time table and the causal mask.
  const roundsDim = g.node('Unsqueeze', [g.node('Gather', [g.node('Shape', ['states']), g.ints([1], undefined, true)], [intAttr('axis', 0)]), g.ints([0])]);
  const zero = g.ints([0]);
  const time = g.node('Slice', ['embed.time', zero, roundsDim, zero]);
  let common = time;
  if (usesLambda(c.variant)) {
    const lam = g.node('Unsqueeze', [g.node('Div', ['lambda', g.scalar(n.lambdaMax)]), g.ints([1])]);
    const lamEmb = g.node('Add', [g.node('MatMul', [lam, 'embed.lambda.w']), 'embed.lambda.b']);
    common = g.node('Add', [time, g.node('Unsqueeze', [lamEmb, g.ints([1])])]);
  }
  const embed = (kind: TokenKind): string => {
    let x: string;
    let w: string;
    if (kind === 'rtg' || kind === 'ctg') {
      x = g.node('Unsqueeze', [g.node('Div', [kind, g.scalar(kind === 'rtg' ? n.rtgScale : n.ctgScale)]), g.ints([2])]);
      w = `embed.${kind}`;
    } else if (kind === 'state') {
      const mean = g.floats('norm.state_mean', Float32Array.from(n.stateMean), [c.stateDim]);
      const std = g.floats('norm.state_std', Float32Array.from(n.stateStd), [c.stateDim]);
      x = g.node('Div', [g.node('Sub', ['states', mean]), std]);
      w = 'embed.state';
    } else {
      x = 'actions_onehot';
      w = 'embed.action';
    }
    const e = g.node('Add', [g.node('MatMul', [x, `${w}.w`]), `${w}.b`]);
    return g.node('Unsqueeze', [g.node('Add', [e, common]), g.ints([2])]);
  };
  const stacked = g.node('Concat', kinds.map(embed), [intAttr('axis', 2)]);
  const layerNorm = (x: string, prefix: string) => g.node('LayerNormalization', [x, `${prefix}.g`, `${prefix}.b`], [intAttr('axis', -1), floatAttr('epsilon', LN_EPS)]);
  let h = layerNorm(g.node('Reshape', [stacked, g.ints([0, -1, D])]), 'embed.ln');

  const S = c.context * nTok;
  const maskData = new Float32Array(S * S);
  for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) maskData[i * S + j] = MASK_VALUE;
  g.floats('causal_mask', maskData, [S, S]);
  const seqDim = g.node('Unsqueeze', [g.node('Gather', [g.node('Shape', [h]), g.ints([1], undefined, true)], [intAttr('axis', 0)]), g.ints([0])]);
  const mask = g.node('Slice', ['causal_mask', g.ints([0, 0]), g.node('Concat', [seqDim, seqDim], [intAttr('axis', 0)]), g.ints([0, 1])]);
  const headShape = g.ints([0, 0, H, hd]);
  const mergeShape = g.ints([0, 0, D]);
  const invSqrt = g.scalar(1 / Math.sqrt(hd));

  for (let l = 0; l < c.layers; l++) {
    const p = `blocks.${l}`;
    const x = layerNorm(h, `${p}.ln1`);
    const proj = (w: string, b: string) => g.node('Reshape', [g.node('Add', [g.node('MatMul', [x, `${p}.attn.${w}`]), `${p}.attn.${b}`]), headShape]);
    const q = g.node('Transpose', [proj('wq', 'bq')], [intsAttr('perm', [0, 2, 1, 3])]);
    const kT = g.node('Transpose', [proj('wk', 'bk')], [intsAttr('perm', [0, 2, 3, 1])]);
    const v = g.node('Transpose', [proj('wv', 'bv')], [intsAttr('perm', [0, 2, 1, 3])]);
    const scores = g.node('Add', [g.node('Mul', [g.node('MatMul', [q, kT]), invSqrt]), mask]);
    const att = g.node('Softmax', [scores], [intAttr('axis', -1)]);
    const o = g.node('Reshape', [g.node('Transpose', [g.node('MatMul', [att, v])], [intsAttr('perm', [0, 2, 1, 3])]), mergeShape]);
    h = g.node('Add', [h, g.node('Add', [g.node('MatMul', [o, `${p}.attn.wo`]), `${p}.attn.bo`])]);
    const x2 = layerNorm(h, `${p}.ln2`);
    const hidden = g.node('Gelu', [g.node('Add', [g.node('MatMul', [x2, `${p}.mlp.w1`]), `${p}.mlp.b1`])], [strAttr('approximate', 'tanh')]);
    h = g.node('Add', [h, g.node('Add', [g.node('MatMul', [hidden, `${p}.mlp.w2`]), `${p}.mlp.b2`])]);
  }
  h = layerNorm(h, 'ln_f');
  const perRound = g.node('Reshape', [h, g.ints([0, -1, nTok, D])]);
  const atState = g.node('Gather', [perRound, g.ints([kinds.indexOf('state')], undefined, true)], [intAttr('axis', 2)]);
  g.node('Add', [g.node('MatMul', [atState, 'head.w']), 'head.b'], [], 'logits');

  const inputs = onnxInputNames(meta).map((name) => {
    if (name === 'states') return tensorInput(name, ['batch', 'rounds', c.stateDim]);
    if (name === 'actions_onehot') return tensorInput(name, ['batch', 'rounds', K]);
    if (name === 'lambda') return tensorInput(name, ['batch']);
    return tensorInput(name, ['batch', 'rounds']);
  });
  return { name: 'codt', node: g.nodes, initializer: g.initializers, input: inputs, output: [tensorInput('logits', ['batch', 'rounds', K])] };
}

/**
 * The model as ONNX bytes (what `writeOnnx` writes), e.g. to hand to onnxruntime directly.
 *
 * @throws {ArgumentError} when the config cannot make a model or a weight is missing or has the wrong size.
 * @example
 * const bytes = encodeOnnx(result.model);
 * const session = await ort.InferenceSession.create(bytes);
 */
export function encodeOnnx(model: CodtModel): Uint8Array {
  validateModel(model);
  const proto = onnx().ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'saco',
    producerVersion: '0.1.0',
    graph: buildGraph(model),
    metadataProps: [
      { key: META_KEY, value: JSON.stringify(model.meta) },
      { key: 'saco.variant', value: model.meta.config.variant },
      { key: 'saco.fingerprint', value: model.meta.fingerprint },
    ],
  });
  return onnx().ModelProto.encode(proto).finish();
}

/**
 * Writes the model to `file` as one .onnx file (graph + saco metadata), through a temporary
 * file and a rename: a failed write leaves no file at `file`.
 *
 * @throws {ArgumentError} when the model is inconsistent (see `encodeOnnx`).
 * @throws {ModelFileError} code `MODEL_WRITE_FAILED` when the file cannot be written.
 * @example
 * const { model } = await trainCodt(train);
 * writeOnnx(model, 'codt.onnx');
 */
export function writeOnnx(model: CodtModel, file: string): void {
  const bytes = encodeOnnx(model);
  try {
    writeFileAtomic(file, bytes);
  } catch (e) {
    throw new ModelFileError(file, `cannot write the model: ${(e as Error).message}`, 'MODEL_WRITE_FAILED');
  }
}

/**
 * Decodes the bytes of a model written by `writeOnnx`: metadata, weights (as Float32Arrays
 * for the native engine) and the ONNX graph. `file` only names the source in errors.
 *
 * @throws {ModelFileError} when the bytes are not ONNX (`MODEL_FILE_INVALID`), not a saco model
 * (`MODEL_NOT_SACO`), or a weight is missing or has the wrong size.
 * @example
 * const { meta, params } = decodeOnnx(await fetchBytes(url), url);
 */
export function decodeOnnx(bytes: Uint8Array, file = 'model'): CodtModel & { graph: onnxProto.onnx.IGraphProto } {
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx().ModelProto.decode(bytes);
  } catch (e) {
    throw new ModelFileError(file, `not a readable ONNX file (truncated or corrupt): ${(e as Error).message}`);
  }
  const raw = proto.metadataProps.find((p) => p.key === META_KEY)?.value;
  if (!raw || !proto.graph) throw new ModelFileError(file, 'is an ONNX file but not a saco model (no saco metadata)', 'MODEL_NOT_SACO');
  let meta: ModelMeta;
  try {
    meta = JSON.parse(raw) as ModelMeta;
  } catch {
    throw new ModelFileError(file, 'saco metadata is not valid JSON');
  }
  if (meta.format !== 'saco-codt' || meta.version !== 1) throw new ModelFileError(file, `unsupported model format ${String(meta.format)} v${String(meta.version)}`, 'MODEL_NOT_SACO');
  try {
    validateCodtConfig(meta.config);
  } catch (e) {
    throw new ModelFileError(file, `bad model config: ${(e as Error).message}`);
  }
  const byName = new Map((proto.graph.initializer ?? []).map((t) => [t.name, t]));
  const params: Params = new Map();
  for (const spec of paramSpecs(meta.config)) {
    const t = byName.get(spec.name);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (!t || t.dataType !== onnx().TensorProto.DataType.FLOAT || !t.rawData || t.rawData.length !== n * 4) {
      throw new ModelFileError(file, `weight ${spec.name} is missing or has the wrong size`);
    }
    const copy = new Float32Array(n);
    new Uint8Array(copy.buffer).set(t.rawData);
    params.set(spec.name, copy);
  }
  try {
    validateModel({ meta, params });
  } catch (e) {
    throw new ModelFileError(file, (e as Error).message.replace(/^model: /, ''), (e as ArgumentError).code);
  }
  return { meta, params, graph: proto.graph };
}

/**
 * Reads a model written by `writeOnnx` (or `saco train`).
 *
 * @throws {ArgumentError} code `MODEL_FILE_MISSING` when the file cannot be read.
 * @throws {ModelFileError} when it is not a saco model or is truncated or inconsistent (see `decodeOnnx`).
 * @example
 * const model = readOnnx('codt.onnx');
 * console.log(model.meta.config.variant, model.meta.stateNames);
 */
export function readOnnx(file: string): CodtModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ArgumentError('model', `cannot read ${file}: ${(e as Error).message}`, 'MODEL_FILE_MISSING');
  }
  const { meta, params } = decodeOnnx(bytes, file);
  return { meta, params };
}
