/**
 * Precision bf16 (native/bf16.h): the layers' products take weights and inputs rounded to
 * bfloat16 and accumulate in fp32, on AMX's tiles where this process has them. Held against
 * a product computed here from the rounded operands (the rounding written out in this file,
 * not the engine's), against fp32 to bf16's precision, and for what the decision paths
 * promise: a user's logits do not depend on who else is in the call, and a served round
 * gives the bits of a cold one. A solve in SY with a bf16 model is held against the fp32 one.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSyConfig } from '../../src/data/synth.js';
import type { CodtConfig } from '../../src/model/config.js';
import { readOnnx } from '../../src/model/onnx.js';
import { loadNativeModel, nativeBf16Hardware, nativeDecisionCache, nativeForward, nativeForwardSync, nativeRollout, type NativeForwardInputs, type NativeModel } from '../../src/native/index.js';
import { nativeBf16Matmul } from '../../src/native/testing.js';
import { solve } from '../../src/solve/index.js';
import { forwardInputs, maxAbsDiff, randomModel, usersRounds } from '../helpers/model.js';
import { bf16Fixture, BF16_CONFIG } from './bf16-fixture.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';

// AMX, or the AVX-512 row kernel over the rounded operands: each row alone decides its bits.
// Elsewhere Eigen's GEMM over them: the same values to float rounding.
const rowsIndependent = nativeBf16Hardware() || /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));

/** bfloat16 rounding, nearest even, written from the format (sign, 8 exponent bits, 7 mantissa bits). */
function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return f[0];
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
}

describe('the bf16 product', () => {
  it('rounds like the format says: 1 + 2^-8 is a tie (to even: 1), 1 + 3·2^-8 rounds up, 2^-7 steps survive', () => {
    expect(bf16(1 + 2 ** -8)).toBe(1);
    expect(bf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    expect(bf16(1 + 2 ** -7)).toBe(1 + 2 ** -7);
    expect(bf16(-3.14159)).toBe(-3.140625);
  });

  for (const [rows, k, n] of [[1, 64, 64], [4, 64, 256], [17, 256, 64], [128, 64, 64], [3, 40, 24], [33, 11, 70]] as const) {
    it(`${rows} x ${k} @ ${k} x ${n}: equals the product of the rounded operands in double, and fp32's to bf16 precision`, () => {
      const next = lcg(rows * 1000 + k * 10 + n);
      const inp = Float32Array.from({ length: rows * k }, () => 4 * next());
      const w = Float32Array.from({ length: k * n }, () => 0.5 * next());
      const b = Float32Array.from({ length: n }, () => next());
      const r = nativeBf16Matmul(inp, w, b, rows, k, n);
      // worst error over every element as a share of what it may be: fp32 accumulation of
      // k + 1 terms (a few ulps of the magnitudes summed), and each operand off by at most
      // 2^-9 of itself against fp32
      let kernel = 0;
      let reference = 0;
      let fp32 = 0;
      for (let i = 0; i < rows; i++) {
        for (let c = 0; c < n; c++) {
          let rounded = b[c];
          let exact = b[c];
          let scale = Math.abs(b[c]);
          for (let j = 0; j < k; j++) {
            rounded += bf16(inp[i * k + j]) * bf16(w[j * n + c]);
            exact += inp[i * k + j] * w[j * n + c];
            scale += Math.abs(inp[i * k + j] * w[j * n + c]);
          }
          const sum = k * 2 ** -23 * scale;
          kernel = Math.max(kernel, Math.abs(r.kernel[i * n + c] - rounded) / sum);
          reference = Math.max(reference, Math.abs(r.reference[i * n + c] - rounded) / sum);
          fp32 = Math.max(fp32, Math.abs(r.kernel[i * n + c] - exact) / (2 * 2 ** -9 * scale + sum));
        }
      }
      expect(kernel).toBeLessThanOrEqual(1);
      expect(reference).toBeLessThanOrEqual(1);
      expect(fp32).toBeLessThanOrEqual(1);
    });
  }

  it(`computes each row from its own input alone (${rowsIndependent ? 'bit for bit' : 'to the summation order'})`, () => {
    const rows = 37;
    const k = 64;
    const n = 256;
    const next = lcg(5);
    const inp = Float32Array.from({ length: rows * k }, () => 2 * next());
    const w = Float32Array.from({ length: k * n }, () => 0.3 * next());
    const all = nativeBf16Matmul(inp, w, null, rows, k, n).kernel;
    for (const i of [0, 15, 16, 36]) {
      const alone = nativeBf16Matmul(inp.subarray(i * k, (i + 1) * k), w, null, 1, k, n).kernel;
      // without row independence only the summation order may differ: k products of at most 2 x 0.3, k ulps of their sum
      expect(maxAbsDiff(alone, all.subarray(i * n, (i + 1) * n))).toBeLessThanOrEqual(rowsIndependent ? 0 : k * 2 ** -23 * (k * 2 * 0.3));
    }
  });
});

const config: CodtConfig = BF16_CONFIG;

const sharedStart = (B: number, T: number, seed: number): NativeForwardInputs => forwardInputs(config, B, T, seed, true);

describe('a model loaded with precision bf16', () => {
  it('is refused with any other precision name', () => {
    expect(() => loadNativeModel(randomModel(config, 3), { precision: 'fp16' as 'bf16' })).toThrow(/precision must be 'fp32' or 'bf16'/);
  });

  it('gives each user the logits it gets alone and the same bits served or cold; within bf16 rounding of fp32', async () => {
    const model = randomModel(config, 3);
    const h16 = loadNativeModel(model, { precision: 'bf16' });
    const h32 = loadNativeModel(model);
    try {
      expect(h16.precision).toBe('bf16');
      const x = sharedStart(37, 6, 11);
      const all = await nativeForward(h16, x, 'incremental');
      const fp32 = await nativeForward(h32, x, 'incremental');
      // bf16 moves the logits, but by bf16's precision: not 0, not more than a few hundredths
      const moved = maxAbsDiff(all, fp32);
      expect(moved).toBeGreaterThan(0);
      expect(moved).toBeLessThan(0.05);
      for (const u of [0, 16, 36]) {
        const alone = nativeForwardSync(h16, usersRounds(config, x, [u]));
        expect(maxAbsDiff(alone, all.subarray(u * 6 * 6, (u + 1) * 6 * 6))).toBeLessThanOrEqual(rowsIndependent ? 0 : 1e-5);
      }
      // served: round 4 decided first, so round 5 continues from the decision cache
      const cold = await nativeForward(h16, sharedStart(16, 6, 12), 'incremental');
      nativeDecisionCache(h16, 0);
      nativeDecisionCache(h16, 32 << 20);
      const y = sharedStart(16, 6, 12);
      const y5 = usersRounds(config, y, Array.from({ length: 16 }, (_, u) => u), 5);
      await nativeForward(h16, y5, 'incremental');
      const before = nativeDecisionCache(h16).hits;
      const served = await nativeForward(h16, y, 'incremental');
      expect(nativeDecisionCache(h16).hits - before).toBe(rowsIndependent ? 16 : 0); // (the cache is off where rows are not independent)
      expect(maxAbsDiff(served, cold)).toBeLessThanOrEqual(rowsIndependent ? 0 : 1e-5);
    } finally {
      h16.unload();
      h32.unload();
    }
  });
});

describe('bf16 with and without AMX', () => {
  it('gives the same values from the tiles and from the fp32 kernel over the rounded operands (SACO_AMX=0, in a child process)', async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'bf16-fallback.child.ts')], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, SACO_AMX: '0' } });
    expect(child.status, child.stderr).toBe(0);
    const other = JSON.parse(child.stdout) as { amx: boolean; product: number[]; logits: number[] };
    expect(other.amx).toBe(false);
    console.log(`bf16 here on ${nativeBf16Hardware() ? 'AMX' : 'the fp32 kernel (no AMX here: both sides take the same path)'}; the child with SACO_AMX=0 on the fp32 kernel`);
    const f = bf16Fixture();
    const product = nativeBf16Matmul(f.inp, f.w, f.b, f.rows, f.k, f.n).kernel;
    // the same rounded operands summed in another order: fp32 accumulation error of k terms
    let worst = 0;
    for (let i = 0; i < f.rows; i++) {
      for (let c = 0; c < f.n; c++) {
        let scale = Math.abs(f.b[c]);
        for (let j = 0; j < f.k; j++) scale += Math.abs(f.inp[i * f.k + j] * f.w[j * f.n + c]);
        worst = Math.max(worst, Math.abs(product[i * f.n + c] - other.product[i * f.n + c]) / (f.k * 2 ** -23 * scale));
      }
    }
    expect(worst).toBeLessThanOrEqual(1);
    const h = loadNativeModel(f.model, { precision: 'bf16' });
    try {
      // through the layers a last-bit difference can round the next product's input to the
      // neighbouring bf16 value, so whole models agree to bf16's precision, as with fp32
      const logits = await nativeForward(h, f.batch, 'incremental');
      expect(maxAbsDiff(logits, other.logits)).toBeLessThan(0.05);
    } finally {
      h.unload();
    }
  }, 180_000);
});

describe('a solve in SY with a bf16 model', () => {
  let fp32: NativeModel;
  let bf: NativeModel;
  beforeAll(async () => {
    const model = readOnnx((await sharedModel('native')).path);
    fp32 = loadNativeModel(model);
    bf = loadNativeModel(model, { precision: 'bf16' });
  }, SHARED_MODEL_TIMEOUT);
  afterAll(() => {
    fp32?.unload();
    bf?.unload();
  });

  it('plans nearly the same coupons as fp32 and earns within 1% of it, within the budget', async () => {
    const env = { seed: SY_MODEL_DATA.seed, rounds: SY_MODEL_DATA.rounds };
    const users = 2000;
    const a = await solve({ model: fp32, users, budget: '0.5x', env });
    const b = await solve({ model: bf, users, budget: '0.5x', env });
    let same = 0;
    for (let i = 0; i < a.plan.length; i++) same += a.plan[i] === b.plan[i] ? 1 : 0;
    console.log(`bf16 vs fp32, SY ${users} x ${env.rounds} at 0.5x: λ* ${b.lambda.toFixed(4)} vs ${a.lambda.toFixed(4)}, revenue ${b.revenue.toFixed(1)} vs ${a.revenue.toFixed(1)}, ` +
      `${(100 * same / a.plan.length).toFixed(2)}% of decisions the same (bf16 on ${nativeBf16Hardware() ? 'AMX' : 'fp32 arithmetic: no AMX here'})`);
    expect(b.cost).toBeLessThanOrEqual(b.budget);
    expect(Math.abs(b.revenue / a.revenue - 1)).toBeLessThan(0.01);
    expect(same / a.plan.length).toBeGreaterThan(0.95);
    // the bf16 plan is what a bf16 rollout at its λ* does, so a plan can be replayed
    const sy = resolveSyConfig({ ...env, users: 1 });
    const replay = await nativeRollout({ env: sy, rounds: env.rounds, budget: b.budget, policy: 'codt', lambda: b.lambda, model: bf.id, userIds: Uint32Array.from({ length: users }, (_, i) => i), recordPlan: true });
    expect(replay.revenue).toBeCloseTo(b.revenue, 6);
  });
});
