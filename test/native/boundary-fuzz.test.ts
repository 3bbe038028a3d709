/**
 * Random garbage at the native boundary: every call either succeeds or throws a JS
 * exception. A crash would take the test process down with it.
 */
import { describe, expect, it } from 'vitest';
import { CounterStream } from '../../src/data/rng.js';
import { NativeError } from '../../src/errors.js';
import { native } from '../../src/native/index.js';
import { nativeGradCheck, philox4x32Native, pmathNative } from '../../src/native/testing.js';

const s = new CounterStream(99, 0, 0, 0);
const pick = <T>(xs: T[]): T => xs[Math.floor(s.uniform() * xs.length)];
const junk = (): unknown =>
  pick<unknown>([undefined, null, -1, 0, 1, 2.5, 1e12, NaN, Infinity, -Infinity, 'x', true, {}, [], [1, 2], new Float64Array(3), new Int32Array(2), () => 1]);

describe('native boundary fuzz', () => {
  it('synthSY survives 500 random configs', async () => {
    const b = native();
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 500; i++) {
      // each field is valid most of the time, so valid and invalid calls both happen
      const valid = <T>(v: T): unknown => (s.uniform() < 0.85 ? v : junk());
      const users = valid(1 + Math.floor(s.uniform() * 3));
      const rounds = valid(1 + Math.floor(s.uniform() * 2));
      const features = valid(1 + Math.floor(s.uniform() * 2));
      const config: Record<string, unknown> = {
        users,
        rounds,
        features,
        seed: valid(7),
        actionDims: valid([{ kind: pick(['cash', 'discount']), values: [0, 0.5] }]),
        rho: valid(0.5),
        logging: valid({ kind: 'biased', strength: 1 }),
      };
      try {
        const log = await b.synthSY(config);
        expect(log.cost.length).toBeGreaterThan(0);
        expect(log.reward.length).toBe(log.cost.length);
        ok++;
      } catch (e) {
        // refused with the typed error, and the message names a field of the config
        expect(e).toBeInstanceOf(NativeError);
        expect((e as NativeError).code).toBe('NATIVE_ARGUMENT');
        refused++;
      }
    }
    // both outcomes happened: valid configs ran, garbage was refused
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('the test addon (philox4x32, pmath, gradCheck) refuses wrong shapes and names', () => {
    expect(() => philox4x32Native([1, 2, 3], [1, 2])).toThrow(/4 words/);
    expect(() => pmathNative('sin' as never, new Float64Array(1))).toThrow(/exp' or 'log/);
    expect(() => pmathNative('exp', [1, 2] as never)).toThrow(/typed-array/);
    expect(() => nativeGradCheck('no-such-check', 1)).toThrow(/no-such-check/);
  });

  it('the production addon carries no test hooks', () => {
    const b = native() as unknown as Record<string, unknown>;
    for (const hook of ['philox4x32', 'pmath', 'gradCheck', 'gradCheckNames']) expect(b[hook]).toBeUndefined();
  });
});
