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
      const users = pick([1, 2, 3, junk()]);
      const rounds = pick([1, 2, junk()]);
      const config: Record<string, unknown> = {
        users,
        rounds,
        features: pick([1, 2, junk()]),
        seed: pick([0, 7, junk()]),
        actionDims: pick([[{ kind: 'cash', values: [0, 1] }], [{ kind: pick(['cash', 'discount', junk()]), values: pick([[0, 0.5], junk()]) }], junk()]),
        rho: pick([0.5, junk()]),
        logging: pick([undefined, { kind: 'biased', strength: junk() }, junk()]),
      };
      const n = typeof users === 'number' && typeof rounds === 'number' && users * rounds >= 0 && users * rounds < 100 ? Math.floor(users * rounds) : 4;
      const out: Record<string, unknown> = {
        states: pick([new Float64Array(Math.max(0, n * 4)), new Float64Array(n * 3), junk()]),
        actions: pick([new Int32Array(Math.max(0, n)), junk()]),
        cost: pick([new Float64Array(Math.max(0, n)), junk()]),
        reward: new Float64Array(Math.max(0, n)),
        purchaseProb: pick([new Float64Array(Math.max(0, n)), junk()]),
      };
      try {
        await b.synthSY(config, out as never);
        ok++;
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        refused++;
      }
    }
    expect(ok + refused).toBe(500);
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
