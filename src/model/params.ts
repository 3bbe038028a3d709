/**
 * Model weights as plain Float32Arrays keyed by parameter name: what the trainers update,
 * the checkpoint stores, the ONNX file carries and the native engine reads.
 */
import { ArgumentError } from '../errors.js';
import { CounterStream } from '../data/rng.js';
import { paramSpecs, type CodtConfig } from './config.js';

export type Params = Map<string, Float32Array>;

/** Stream number of parameter initialisation draws (user = parameter index). */
const INIT_STREAM = 32;

/** Seeded initial weights; the same for every backend and trainer. */
export function initParams(config: CodtConfig, seed: number): Params {
  const params: Params = new Map();
  paramSpecs(config).forEach((spec, index) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (spec.init.kind === 'ones') data.fill(1);
    else if (spec.init.kind === 'normal') {
      const stream = new CounterStream(seed, index, 0, INIT_STREAM);
      for (let i = 0; i < n; i++) data[i] = stream.normal() * spec.init.std;
    }
    params.set(spec.name, data);
  });
  return params;
}

/** Checks that `params` has exactly the config's parameters with the right sizes. */
export function checkParams(config: CodtConfig, params: Params, where: string): void {
  const specs = paramSpecs(config);
  for (const spec of specs) {
    const data = params.get(spec.name);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (!data) throw new ArgumentError(where, `parameter ${spec.name} is missing`, 'MODEL_PARAM_MISSING');
    if (data.length !== n) throw new ArgumentError(where, `parameter ${spec.name} has ${data.length} values, expected ${n} (shape ${spec.shape.join('x')})`, 'MODEL_PARAM_SHAPE');
  }
  if (params.size !== specs.length) {
    const extra = [...params.keys()].filter((k) => !specs.some((s) => s.name === k));
    throw new ArgumentError(where, `unexpected parameters: ${extra.join(', ')}`, 'MODEL_PARAM_EXTRA');
  }
}

export function cloneParams(params: Params): Params {
  return new Map([...params].map(([k, v]) => [k, v.slice()]));
}
