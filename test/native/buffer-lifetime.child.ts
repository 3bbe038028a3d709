/**
 * Child of buffer-lifetime.test.ts, run with --expose-gc: starts every asynchronous native
 * call, then detaches (transfers) and drops every input buffer and forces GC while the call
 * is pending, and checks the result equals the same call on untouched inputs.
 */
import { resolveSyConfig } from '../../src/data/synth.js';
import type { CodtConfig } from '../../src/model/config.js';
import { initParams } from '../../src/model/params.js';
import { loadNativeModel, native, NativeTrainer } from '../../src/native/index.js';
import { randomBatch, randomModel } from '../helpers/model.js';

declare const gc: () => void;

const detach = (...arrays: ArrayBufferView[]): void => {
  for (const a of arrays) if (a.buffer.byteLength > 0) structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
};
const same = (what: string, a: unknown, b: unknown): void => {
  if (JSON.stringify(a, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)) !== JSON.stringify(b, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v))) {
    throw new Error(`${what}: the result changed when its inputs were detached during the call`);
  }
};

const config: CodtConfig = { stateDim: 11, actionSizes: [4], context: 4, dModel: 32, layers: 2, heads: 2, dropout: 0, variant: 'weighted' };
const model = randomModel(config, 3);
const handle = loadNativeModel(model);
const b = native();
const checks: string[] = [];

// codtForward, both modes
for (const mode of ['full', 'incremental'] as const) {
  const make = () => {
    const x = randomBatch(config, 300, 4, 5);
    return { batch: x.size, rounds: x.rounds, states: x.states, rtg: x.rtg, ctg: x.ctg, actionsOneHot: x.actionsOneHot, lambda: x.lambda };
  };
  const reference = await b.codtForward(handle.id, make(), mode);
  let inputs: ReturnType<typeof make> | undefined = make();
  const pending = b.codtForward(handle.id, inputs, mode);
  detach(inputs.states, inputs.rtg, inputs.ctg, inputs.actionsOneHot, inputs.lambda);
  inputs = undefined;
  gc();
  same(`codtForward ${mode}`, await pending, reference);
  checks.push(`codtForward ${mode}`);
}

// rollout and searchLambda: user ids and features
const env = resolveSyConfig({ users: 1, rounds: 4, seed: 9 });
const spec = () => ({ env, rounds: 4, budget: Infinity, policy: 'codt', lambda: 1, model: handle.id, userIds: Uint32Array.from({ length: 500 }, (_, i) => i), features: Float64Array.from({ length: 500 * 8 }, (_, i) => Math.sin(i)), recordPlan: true });
{
  const reference = await b.rollout(spec());
  let s: ReturnType<typeof spec> | undefined = spec();
  const pending = b.rollout(s);
  detach(s.userIds, s.features);
  s = undefined;
  gc();
  same('rollout', await pending, reference);
  checks.push('rollout');
}
{
  const search = { method: 'bisection' as const, budget: 800, lambdaMax: 3 };
  const reference = await b.searchLambda(spec(), search);
  let s: ReturnType<typeof spec> | undefined = spec();
  const pending = b.searchLambda(s, search);
  detach(s.userIds, s.features);
  s = undefined;
  gc();
  same('searchLambda', await pending, reference);
  checks.push('searchLambda');
}

// synthSY: its arrays are the native side's, handed over; they survive GC of everything else
{
  const reference = await b.synthSY(resolveSyConfig({ users: 2000, rounds: 4, seed: 4 }));
  const pending = b.synthSY(resolveSyConfig({ users: 2000, rounds: 4, seed: 4 }));
  gc();
  same('synthSY', await pending, reference);
  checks.push('synthSY');
}

// the trainer's step, evaluate and gradients: the batch is copied before the work starts
const options = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradClip: 1, dropout: 0 };
const norm = model.meta.normalization;
const trainers = [new NativeTrainer(config, norm, initParams(config, 1), options), new NativeTrainer(config, norm, initParams(config, 1), options)];
for (const call of ['step', 'evaluate', 'gradients'] as const) {
  const run = (t: NativeTrainer, batch: ReturnType<typeof randomBatch>) =>
    call === 'step' ? t.step(batch, 1e-3, 1, 7) : call === 'evaluate' ? t.evaluate(batch) : t.gradients(batch, false, 0);
  const reference = await run(trainers[0], randomBatch(config, 64, 4, 8));
  let batch: ReturnType<typeof randomBatch> | undefined = randomBatch(config, 64, 4, 8);
  const pending = run(trainers[1], batch);
  detach(batch.states, batch.rtg, batch.ctg, batch.actionsOneHot, batch.lambda, batch.mask, batch.weights);
  batch = undefined;
  gc();
  same(`trainer ${call}`, await pending, reference);
  checks.push(`trainer ${call}`);
}
for (const t of trainers) t.dispose();
handle.unload();
process.stdout.write(JSON.stringify({ checks }) + '\n');
