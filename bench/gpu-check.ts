/**
 * GPU check, run by hand on a machine with a CUDA device (the suite never needs one), in one call:
 *   node --import tsx bench/gpu-check.ts [--model=FILE] [--1m]
 * 1. parity: the CUDA forward against the CPU forward on the same weights and inputs, to 1e-4
 *    (exit 1 when it fails);
 * 2. issue 15's scenarios on the CPU beside the GPU, in the same run: one user, 128 users (round
 *    0 and round 5), 16 models x 128 users (the paper's 16 parallel models), and the 10k x 10
 *    solve (--1m adds 1M x 10, minutes). The CPU decodes with the KV cache; the GPU runs the
 *    full-sequence forward ('cuda' mode: there is no KV-cached CUDA decode and no GPU rollout
 *    yet, issue 15 item 3), so the solves are the CPU engine's and say so.
 *    Each CPU row also in bf16 (precision 'bf16': AMX's tiles where the host has them, as
 *    Sapphire Rapids hosts of H100/H200 do; the column says so).
 * Without a GPU it says so and exits 0 after the CPU rows.
 */
import { CounterStream } from '../src/data/rng.js';
import { readOnnx } from '../src/model/onnx.js';
import { loadNativeModel, nativeBf16Hardware, nativeDecisionCache, nativeForward, nativeForwardOn, nativeInfo, type NativeForwardInputs, type NativeModel } from '../src/native/index.js';
import { solve } from '../src/solve/index.js';
import { time } from './harness.js';
import { defaultSizedModel } from './solve.js';

const modelFile = process.argv.find((a) => a.startsWith('--model='))?.slice(8);
const withMillion = process.argv.includes('--1m');
const info = nativeInfo();
const gpu = info.cudaBuilt && info.cudaDevices > 0;
console.log(`CUDA built: ${info.cudaBuilt}, devices visible: ${info.cudaDevices}${gpu ? '' : ' (no GPU here: CPU rows only)'}`);

const model = modelFile ? readOnnx(modelFile) : defaultSizedModel();
if (!modelFile) {
  // random (not initial) weights, so every weight matters to the parity check
  let k = 0;
  for (const v of model.params.values()) {
    const s = new CounterStream(5, k++, 0, 40);
    for (let i = 0; i < v.length; i++) v[i] += 0.2 * s.normal();
  }
}
const c = model.meta.config;
const d = c.stateDim;
const K = c.actionSizes.reduce((a, b) => a + b, 0);
const h = loadNativeModel(model);
const h16 = loadNativeModel(model, { precision: 'bf16' });
// every call computes its whole sequence, as the GPU does (the decision cache would serve a
// repeated round-5 call from the entry its first call made)
for (const m of [h, h16]) nativeDecisionCache(m, 0);

function inputs(B: number, T: number, seed: number): NativeForwardInputs {
  const s = new CounterStream(seed, 0, 0, 41);
  return {
    batch: B, rounds: T,
    states: Float32Array.from({ length: B * T * d }, () => s.normal()),
    rtg: Float32Array.from({ length: B * T }, () => 100 * s.uniform()),
    ctg: Float32Array.from({ length: B * T }, () => 20 * s.uniform()),
    actionsOneHot: Float32Array.from({ length: B * T * K }, (_, i) => (i % K === 1 ? 1 : 0)),
    lambda: Float32Array.from({ length: B }, () => model.meta.normalization.lambdaMax * s.uniform()),
  };
}

/** Median ms of `runs` calls after one warm-up (harness.time). */
const median = async (f: () => Promise<unknown>, runs: number): Promise<number> => (await time('', runs, f)).medianMs;

let failed = false;
if (gpu) {
  const parity = inputs(1024, Math.min(10, c.context), 6);
  const cpu = await nativeForward(h, parity, 'full');
  const onGpu = await nativeForwardOn(h, parity, 'cuda');
  let diff = 0;
  for (let i = 0; i < cpu.length; i++) diff = Math.max(diff, Math.abs(cpu[i] - onGpu.logits[i]));
  failed = onGpu.device !== 'cuda' || !(diff < 1e-4);
  console.log(`parity: max |cpu - gpu| = ${diff.toExponential(3)} on 1024 x ${parity.rounds} (${failed ? 'FAIL' : 'PASS'} at 1e-4; computed on ${onGpu.device})`);
}

const rows: Array<{ scenario: string; cpu: number; bf16: number; gpu?: number }> = [];
const T5 = Math.min(6, c.context);
for (const [scenario, B, T] of [['one user, round 0', 1, 1], ['128 users, round 0', 128, 1], [`128 users, round ${T5 - 1}`, 128, T5]] as const) {
  const x = inputs(B, T, 7);
  const runs = B === 1 ? 2000 : 200;
  rows.push({
    scenario,
    cpu: await median(() => nativeForward(h, x, 'incremental'), runs),
    bf16: await median(() => nativeForward(h16, x, 'incremental'), runs),
    gpu: gpu ? await median(() => nativeForward(h, x, 'cuda'), runs) : undefined,
  });
}
// the paper's 16 parallel models: 16 loaded copies, 128 users each, all at once
const models: NativeModel[] = Array.from({ length: 16 }, () => loadNativeModel(model));
const models16: NativeModel[] = Array.from({ length: 16 }, () => loadNativeModel(model, { precision: 'bf16' }));
const x16 = inputs(128, 1, 8);
rows.push({
  scenario: '16 models x 128 users, round 0 (concurrent calls)',
  cpu: await median(() => Promise.all(models.map((m) => nativeForward(m, x16, 'incremental'))), 20),
  bf16: await median(() => Promise.all(models16.map((m) => nativeForward(m, x16, 'incremental'))), 20),
  gpu: gpu ? await median(() => Promise.all(models.map((m) => nativeForward(m, x16, 'cuda'))), 20) : undefined,
});
for (const m of [...models, ...models16]) m.unload();
const env = { seed: 1, rounds: c.context };
for (const users of withMillion ? [10_000, 1_000_000] : [10_000]) {
  const t0 = performance.now();
  const r = await solve({ users, budget: '0.5x', env, model: h });
  const cpu = performance.now() - t0;
  const t1 = performance.now();
  await solve({ users, budget: '0.5x', env, model: h16 });
  rows.push({ scenario: `solve ${users.toLocaleString('en-US')} x ${env.rounds} at 0.5x (CPU engine: ${r.rollouts - 1} rollouts on every user + ${r.sampleRollouts ?? 0} on ${r.sampleUsers ?? 0}; no GPU rollout yet)`, cpu, bf16: performance.now() - t1 });
}
h.unload();
h16.unload();

console.log(`\n| scenario | CPU ms | CPU bf16 ms (${nativeBf16Hardware() ? 'AMX' : 'no AMX: fp32 arithmetic'}) | GPU ms |\n| --- | ---: | ---: | ---: |`);
for (const r of rows) console.log(`| ${r.scenario} | ${r.cpu.toFixed(3)} | ${r.bf16.toFixed(3)} | ${r.gpu === undefined ? '—' : r.gpu.toFixed(3)} |`);
process.exit(failed ? 1 : 0);
