import type { PolicyDefinition } from './types.js';

/** SACO's policy: the trained CODT, greedy at λ, decoded with a KV cache (native/policy_codt.cc). */
export const codtPolicy = {
  name: 'codt',
  description: 'the trained decision transformer (SACO), greedy at λ',
  needsModel: true,
  searched: true,
} as const satisfies PolicyDefinition;
