/**
 * The policies saco can plan with, one line each: the same names as the native registry
 * (each native/policy_<name>.cc registers itself; a test holds the two lists equal). solve(),
 * the CLI and the reports take names and properties from here, in this order.
 */
import { ArgumentError } from '../errors.js';
import { banditPolicy } from './bandit.js';
import { codtPolicy } from './codt.js';
import { forestPolicy } from './forest.js';
import { oraclePolicy } from './oracle.js';
import { randomPolicy } from './random.js';
import { fixedArmPolicy } from './fixed-arm.js';
import { scoredFixedPolicy, scoredPolicy } from './scored.js';
import type { PolicyDefinition } from './types.js';

export const POLICIES = [codtPolicy, randomPolicy, oraclePolicy, forestPolicy, banditPolicy, scoredPolicy, scoredFixedPolicy, fixedArmPolicy] as const;

/** A policy's name: `'codt' | 'random' | 'oracle' | 'forest' | 'bandit' | 'scored' | 'scored-fixed' | 'fixed-arm'`. */
export type PolicyName = (typeof POLICIES)[number]['name'];

export const POLICY_NAMES: readonly PolicyName[] = POLICIES.map((p) => p.name);

/**
 * The definition of a policy by name.
 * @throws {ArgumentError} naming the known policies when `name` is not one of them.
 */
export function policyByName(name: string, argument = 'policy'): PolicyDefinition<PolicyName> {
  const found = POLICIES.find((p) => p.name === name);
  if (!found) throw new ArgumentError(argument, `unknown policy "${name}" (known: ${POLICY_NAMES.join(', ')})`);
  return found;
}

export type { PolicyDefinition } from './types.js';
