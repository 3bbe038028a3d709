/**
 * The decision path (codtForward 'incremental' and codtForwardSync): every remaining token of
 * a block's users computed at once, layer by layer (native/codt.h CodtDecoder::append_rounds),
 * with each thread's decoder kept from call to call and the synchronous call reading its
 * inputs in place. Held against the token-by-token decoder it replaced through what that
 * one guaranteed: a user's logits do not depend on who else is decoded with them, on the
 * rounds that follow (causal), on the calls or models that came before, and agree with the
 * full-sequence forward to float rounding.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CodtConfig } from '../../src/model/config.js';
import { loadNativeModel, nativeForward, nativeForwardSync, type NativeForwardInputs } from '../../src/native/index.js';
import { forwardInputs, maxAbsDiff, randomModel, usersRounds } from '../helpers/model.js';

// The AVX-512 row kernel: the same bits whatever the rows around (native/layers.h); elsewhere
// Eigen's GEMM, to float rounding.
const rowsIndependent = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const tol = rowsIndependent ? 0 : 1e-5;

const config: CodtConfig = { stateDim: 7, actionSizes: [4, 2], context: 6, dModel: 64, layers: 2, heads: 2, dropout: 0, variant: 'expected' };
const K = 6;

const inputsOf = (B: number, T: number, seed: number, sharedStart: boolean): NativeForwardInputs => forwardInputs(config, B, T, seed, sharedStart);
// user u's inputs alone, over its first T rounds
const userOf = (x: NativeForwardInputs, u: number, T = x.rounds): NativeForwardInputs => usersRounds(config, x, [u], T);

describe('the decision path', () => {
  it(`gives each user the logits it gets alone, synchronously or not, at every round count (${rowsIndependent ? 'bit for bit' : 'to 1e-5'})`, async () => {
    const h = loadNativeModel(randomModel(config, 3));
    try {
      for (const T of [1, 2, 4, 6]) {
        for (const shared of [true, false]) {
          const x = inputsOf(37, T, 10 * T + (shared ? 1 : 0), shared); // 37: two full blocks of 16 and a partial one
          const all = await nativeForward(h, x, 'incremental');
          const full = await nativeForward(h, x, 'full');
          expect(maxAbsDiff(all, full)).toBeLessThan(1e-4);
          for (const u of [0, 15, 16, 36]) {
            const one = userOf(x, u);
            const sync = nativeForwardSync(h, one);
            expect(maxAbsDiff(sync, all.subarray(u * T * K, (u + 1) * T * K))).toBeLessThanOrEqual(tol);
            expect(Array.from(await nativeForward(h, one, 'incremental'))).toEqual(Array.from(sync));
            // causal: the first rounds' logits do not depend on the rounds after them
            for (let t = 1; t < T; t++) expect(maxAbsDiff(nativeForwardSync(h, userOf(x, u, t)), sync.subarray(0, t * K))).toBeLessThanOrEqual(tol);
          }
        }
      }
    } finally {
      h.unload();
    }
  });

  it('repeats its bits across calls, thread counts and models of other sizes loaded in between', async () => {
    const h = loadNativeModel(randomModel(config, 5));
    const x = inputsOf(1, 5, 99, true);
    const first = nativeForwardSync(h, x);
    const big = inputsOf(40, 6, 7, false);
    const bigFirst = await nativeForward(h, big, 'incremental');
    const other = loadNativeModel(randomModel({ ...config, dModel: 32, context: 3, stateDim: 7 }, 8));
    try {
      nativeForwardSync(other, inputsOf(1, 3, 4, true)); // this thread's decoder rebound to another model
      await nativeForward(other, inputsOf(33, 3, 5, false), 'incremental');
      expect(Array.from(nativeForwardSync(h, x))).toEqual(Array.from(first));
      expect(Array.from(await nativeForward(h, big, 'incremental'))).toEqual(Array.from(bigFirst));
    } finally {
      other.unload();
      h.unload();
    }
    // the model unloaded: the kept decoder must not be used with it again
    expect(() => nativeForwardSync(h, x)).toThrow(/not loaded/);
  });

  it('reads subarray views in place (offsets into a larger buffer) and rejects wrong lengths and non-finite values', () => {
    const h = loadNativeModel(randomModel(config, 6));
    try {
      const x = inputsOf(3, 2, 12, false);
      const viaViews = nativeForwardSync(h, userOf(x, 1)); // userOf copies; now the same rows as views
      const T = 2;
      const view = { batch: 1, rounds: T, states: x.states.subarray(T * config.stateDim, 2 * T * config.stateDim), rtg: x.rtg.subarray(T, 2 * T), ctg: x.ctg.subarray(T, 2 * T), actionsOneHot: x.actionsOneHot.subarray(T * K, 2 * T * K), lambda: x.lambda.subarray(1, 2) };
      expect(Array.from(nativeForwardSync(h, view))).toEqual(Array.from(viaViews));
      expect(() => nativeForwardSync(h, { ...view, rtg: view.rtg.subarray(0, 1) })).toThrow(/inputs\.rtg: expected length 2, got 1/);
      const nan = view.ctg.slice();
      nan[1] = Number.NaN;
      expect(() => nativeForwardSync(h, { ...view, ctg: nan })).toThrow(/inputs\.ctg\[1\] is non-finite/);
      expect(() => nativeForwardSync(h, { ...view, batch: 2 })).toThrow();
    } finally {
      h.unload();
    }
  });
});
