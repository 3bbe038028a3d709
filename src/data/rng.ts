/**
 * Counter-based randomness, bit-identical to native/rng.h: every draw is a pure function
 * of (seed, user, round, stream, index) through Philox4x32-10, so results never depend on
 * thread count or on the order in which users are simulated.
 */
import { plog } from './pmath.js';

/** Named streams; the same numbers as the `Stream` enum in native/rng.h. */
export const Streams = {
  features: 0,
  obsNoise: 1,
  logger: 2,
  purchase: 3,
  engagement: 4,
  split: 5,
  lambda: 6,
  weights: 16,
} as const;

/** The `user` counter word used for draws that belong to no user (global weights). */
export const GLOBAL_USER = 0xffffffff;

/** High and low 32-bit halves of a*b for 32-bit unsigned a, b. */
function mulhilo(a: number, b: number): [number, number] {
  const lo = Math.imul(a, b) >>> 0;
  const aH = a >>> 16;
  const aL = a & 0xffff;
  const bH = b >>> 16;
  const bL = b & 0xffff;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
  return [hi, lo];
}

/** Philox4x32 with 10 rounds (Random123). Returns four 32-bit words. */
export function philox4x32(counter: readonly number[], key: readonly number[]): [number, number, number, number] {
  let c0 = counter[0] >>> 0;
  let c1 = counter[1] >>> 0;
  let c2 = counter[2] >>> 0;
  let c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}

/** Two 32-bit words to a double in (0, 1) with 53 random bits. */
export function uniformFromWords(a: number, b: number): number {
  return ((a >>> 5) * 67108864 + (b >>> 6) + 0.5) * (1 / 9007199254740992);
}

/** Splits a seed (integer in [0, 2^53)) into the two key words. */
export function seedKey(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/** A sequence of uniforms for one (seed, user, round, stream); each Philox block gives two. */
export class CounterStream {
  private readonly key: [number, number];
  private index = 0;
  private slot = 0;
  private block: [number, number, number, number] = [0, 0, 0, 0];

  constructor(
    seed: number,
    private readonly user: number,
    private readonly round: number,
    private readonly stream: number,
  ) {
    this.key = seedKey(seed);
  }

  uniform(): number {
    if (this.slot === 0) {
      this.block = philox4x32([this.user, this.round, this.stream, this.index++], this.key);
      this.slot = 1;
      return uniformFromWords(this.block[0], this.block[1]);
    }
    this.slot = 0;
    return uniformFromWords(this.block[2], this.block[3]);
  }

  /** Standard normal by Marsaglia's polar method (log and sqrt only: reproducible). */
  normal(): number {
    for (;;) {
      const v1 = 2.0 * this.uniform() - 1.0;
      const v2 = 2.0 * this.uniform() - 1.0;
      const s = v1 * v1 + v2 * v2;
      if (s >= 1.0 || s === 0.0) continue;
      return v1 * Math.sqrt((-2.0 * plog(s)) / s);
    }
  }
}
