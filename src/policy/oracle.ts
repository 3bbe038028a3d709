import type { PolicyDefinition } from './types.js';

/** Knows the true expected response; argmax E[r] − λ·E[c] each round (native/policy_oracle.cc). */
export const oraclePolicy = {
  name: 'oracle',
  description: 'knows the true response (SY only); myopic argmax of E[r] − λ·E[c]',
  needsModel: false,
  searched: true,
} as const satisfies PolicyDefinition;
