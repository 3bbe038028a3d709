/**
 * Fixed arm: the same action for every user and round, each coupon kept with probability
 * `keep` by a coin keyed by (seed, user, round), else no coupon (native/policy_fixed_arm.cc).
 * `saco eval` runs Best single arm (thinned to the budget) and No coupon (keep 0) through it in
 * whatever environment the data gives; src/eval/fixed-arm.ts holds its TypeScript reference on
 * SY (tested equal) and chooses the keep probability.
 */
import { ArgumentError } from '../errors.js';
import type { NativeFixedArmSpec } from '../native/index.js';
import type { PolicyDefinition } from './types.js';

export const fixedArmPolicy = {
  name: 'fixed-arm',
  description: 'one arm for everyone, each coupon kept with probability keep (seeded coins per user and round), else no coupon',
  needsModel: false,
  searched: false,
  fittedOn: 'an arm and a keep probability ({ fixedArm: { arm, keep } })',
} as const satisfies PolicyDefinition;

/** The arm (one environment index per action dimension), the keep probability in [0, 1], the coins' seed (default 0). */
export type FixedArm = NativeFixedArmSpec;

/** @throws {ArgumentError} unless `f` is a fixed arm: integer indices, keep in [0, 1], a non-negative integer seed. */
export function checkFixedArm(f: FixedArm | undefined): asserts f is FixedArm {
  if (!f || typeof f !== 'object') throw new ArgumentError('fixedArm', 'the fixed-arm policy needs { fixedArm: { arm, keep } }');
  if (!Array.isArray(f.arm) || f.arm.length < 1 || f.arm.some((k) => !Number.isInteger(k) || k < 0)) throw new ArgumentError('fixedArm.arm', `must hold one index ≥ 0 per action dimension, got ${JSON.stringify(f.arm)}`);
  if (typeof f.keep !== 'number' || !(f.keep >= 0 && f.keep <= 1)) throw new ArgumentError('fixedArm.keep', `must be a probability in [0, 1], got ${String(f.keep)}`);
  if (f.seed !== undefined && !(Number.isSafeInteger(f.seed) && f.seed >= 0)) throw new ArgumentError('fixedArm.seed', `must be a non-negative integer, got ${String(f.seed)}`);
}
