/**
 * Random garbage at the native boundary: every call either succeeds or throws a JS
 * exception. A crash would take the test process down with it.
 */
import { describe, expect, it } from 'vitest';
import { CounterStream } from '../../src/data/rng.js';
import { native } from '../../src/native/index.js';

const s = new CounterStream(99, 0, 0, 0);
const pick = <T>(xs: T[]): T => xs[Math.floor(s.uniform() * xs.length)];
const junk = (): unknown =>
  pick<unknown>([undefined, null, -1, 0, 1, 2.5, 1e12, NaN, Infinity, -Infinity, 'x', true, {}, [], [1, 2], new Float64Array(3), new Int32Array(2), () => 1]);

describe('native boundary fuzz', () => {
  it('synthSY survives 500 random configs and output objects', async () => {
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
      const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 10 ? v : fallback);
      const n = num(users, 2) * num(rounds, 2);
      const out: Record<string, unknown> = {
        states: valid(new Float64Array(n * (num(features, 1) + 3))),
        actions: valid(new Int32Array(n)),
        cost: valid(new Float64Array(n)),
        reward: new Float64Array(n),
        purchaseProb: valid(new Float64Array(n)),
      };
      try {
        await b.synthSY(config, out as never);
        ok++;
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        refused++;
      }
    }
    // both outcomes happened: valid configs ran, garbage was refused
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('philox4x32 and pmath refuse wrong shapes and types', () => {
    const b = native();
    expect(() => b.philox4x32(new Uint32Array(3), new Uint32Array(2))).toThrow(/4 words/);
    expect(() => b.philox4x32(new Float64Array(4) as never, new Uint32Array(2))).toThrow(/typed-array/);
    expect(() => b.pmath('sin' as never, new Float64Array(1))).toThrow(/exp' or 'log/);
    expect(() => b.pmath('exp', [1, 2] as never)).toThrow(/typed-array/);
  });
});
