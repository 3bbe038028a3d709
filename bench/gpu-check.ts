/**
 * GPU parity check, run by hand on a machine with a CUDA device (the suite never needs one):
 * the CUDA forward against the CPU forward on the same weights and inputs, to 1e-4, and the
 * time of each for a batch of 1024 users x 10 rounds.
 *   node --import tsx bench/gpu-check.ts
 */
import { CounterStream } from '../src/data/rng.js';
import { loadNativeModel, nativeForward, nativeInfo } from '../src/native/index.js';
import { defaultSizedModel } from './solve.js';

const info = nativeInfo();
console.log(`CUDA built: ${info.cudaBuilt}, devices visible: ${info.cudaDevices}`);
if (!info.cudaBuilt || info.cudaDevices === 0) {
  console.log('no GPU here: nothing to compare (the CPU path is what runs)');
  process.exit(0);
}
const model = defaultSizedModel();
let k = 0;
for (const v of model.params.values()) {
  const s = new CounterStream(5, k++, 0, 40);
  for (let i = 0; i < v.length; i++) v[i] += 0.2 * s.normal();
}
const h = loadNativeModel(model);
const s = new CounterStream(6, 0, 0, 41);
const B = 1024;
const T = 10;
const inputs = {
  batch: B, rounds: T,
  states: Float32Array.from({ length: B * T * 11 }, () => s.normal()),
  rtg: Float32Array.from({ length: B * T }, () => 100 * s.uniform()),
  ctg: Float32Array.from({ length: B * T }, () => 20 * s.uniform()),
  actionsOneHot: Float32Array.from({ length: B * T * 4 }, (_, i) => (i % 4 === 1 ? 1 : 0)),
  lambda: Float32Array.from({ length: B }, () => 4 * s.uniform()),
};
let t0 = performance.now();
const cpu = await nativeForward(h, inputs, 'full');
const cpuMs = performance.now() - t0;
await nativeForward(h, inputs, 'cuda');
t0 = performance.now();
const gpu = await nativeForward(h, inputs, 'cuda');
const gpuMs = performance.now() - t0;
let diff = 0;
for (let i = 0; i < cpu.length; i++) diff = Math.max(diff, Math.abs(cpu[i] - gpu[i]));
console.log(`max |cpu - gpu| = ${diff.toExponential(3)} (${diff < 1e-4 ? 'PASS' : 'FAIL'} at 1e-4); cpu ${cpuMs.toFixed(1)} ms, gpu ${gpuMs.toFixed(1)} ms (with weight upload) for ${B} x ${T}`);
h.unload();
process.exit(diff < 1e-4 ? 0 : 1);
