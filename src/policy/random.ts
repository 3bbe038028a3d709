import type { PolicyDefinition } from './types.js';

/** The uniform logging policy of SY, replaying the logged draws (native/policy_random.cc). */
export const randomPolicy = {
  name: 'random',
  description: 'the uniform logging policy (each coupon equally likely), cut by the budget',
  needsModel: false,
  searched: false,
} as const satisfies PolicyDefinition;
