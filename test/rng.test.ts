import { describe, expect, it } from 'vitest';
import { pexp, plog } from '../src/data/pmath.js';
import { CounterStream, philox4x32 } from '../src/data/rng.js';
import { philox4x32Native, pmathNative } from '../src/native/testing.js';

// Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected.
const KAT: Array<[number[], number[], number[]]> = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];

describe('Philox4x32-10', () => {
  it('matches the Random123 known-answer vectors in TypeScript', () => {
    for (const [ctr, key, expected] of KAT) expect(philox4x32(ctr, key)).toEqual(expected);
  });
  it('matches the Random123 known-answer vectors in C++', () => {
    for (const [ctr, key, expected] of KAT) expect(philox4x32Native(ctr, key)).toEqual(expected);
  });
});

describe('portable exp/log', () => {
  // Inputs spanning the ranges SY uses and the edges of the reductions.
  const inputs: number[] = [];
  const s = new CounterStream(7, 0, 0, 0);
  for (let i = 0; i < 20000; i++) inputs.push((s.uniform() - 0.5) * 60);
  inputs.push(0, -0, 1e-300, -700, 709.7, -745, 1e-10, -1e-10, 0.5 * Math.LN2, -0.5 * Math.LN2);
  const positives = inputs.map((x) => Math.abs(x) * 10 ** Math.round(x / 3)).filter((x) => x > 0);
  positives.push(5e-324, 2.2e-308, 1, 2, Math.SQRT2, Math.SQRT1_2, 1e308);

  it('are within 1 ulp-scale of V8 Math.exp / Math.log', () => {
    for (const x of inputs) {
      const ref = Math.exp(x);
      expect(Math.abs(pexp(x) - ref)).toBeLessThanOrEqual(Math.abs(ref) * 4e-16 + 5e-324);
    }
    for (const x of positives) {
      const ref = Math.log(x);
      expect(Math.abs(plog(x) - ref)).toBeLessThanOrEqual(Math.abs(ref) * 4e-16 + 1e-300);
    }
  });

  it('give the same bits in TypeScript and C++', () => {
    const xs = Float64Array.from(inputs);
    const ps = Float64Array.from(positives);
    expect(Array.from(pmathNative('exp', xs))).toEqual(inputs.map(pexp));
    expect(Array.from(pmathNative('log', ps))).toEqual(positives.map(plog));
  });

  it('handle the special values', () => {
    expect(pexp(NaN)).toBeNaN();
    expect(pexp(1000)).toBe(Infinity);
    expect(pexp(-1000)).toBe(0);
    expect(plog(0)).toBe(-Infinity);
    expect(plog(-1)).toBeNaN();
    expect(plog(Infinity)).toBe(Infinity);
    expect(plog(1)).toBe(0);
  });
});

describe('CounterStream', () => {
  it('draws uniforms in (0, 1) with the right mean and variance', () => {
    const st = new CounterStream(3, 1, 2, 3);
    const n = 200000;
    let sum = 0;
    let sum2 = 0;
    for (let i = 0; i < n; i++) {
      const u = st.uniform();
      expect(u > 0 && u < 1).toBe(true);
      sum += u;
      sum2 += u * u;
    }
    const mean = sum / n;
    // mean of U(0,1) is 1/2 with SE sqrt(1/12/n); variance 1/12.
    expect(Math.abs(mean - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(sum2 / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
  });
  it('draws standard normals (mean 0, variance 1, kurtosis 3)', () => {
    const st = new CounterStream(5, 9, 0, 1);
    const n = 100000;
    let m1 = 0, m2 = 0, m4 = 0;
    for (let i = 0; i < n; i++) {
      const z = st.normal();
      m1 += z;
      m2 += z * z;
      m4 += z ** 4;
    }
    expect(Math.abs(m1 / n)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(m2 / n - 1)).toBeLessThan(4 * Math.sqrt(2 / n));
    expect(Math.abs(m4 / n - 3)).toBeLessThan(0.1);
  });
  it('depends only on (seed, user, round, stream, index), never on call order', () => {
    const a = new CounterStream(11, 4, 2, 3);
    const first = [a.uniform(), a.uniform(), a.uniform()];
    const b = new CounterStream(11, 4, 2, 3);
    expect([b.uniform(), b.uniform(), b.uniform()]).toEqual(first);
    const other = new CounterStream(11, 5, 2, 3);
    expect(other.uniform()).not.toBe(first[0]);
  });
});
