import type { SolveResult } from './index.js';

/**
 * The users a λ search simulated, in rollouts on every user: each λ's largest probe (a probe
 * grown over the subsample to more users runs none twice, so its sizes are nested), plus the
 * plans run apart from a probe (`rollouts` less the probes on every user, less the reference).
 */
export function searchWork(r: Pick<SolveResult, 'trace' | 'rollouts'>, users: number): number {
  const byLambda = new Map<number, number>();
  const trace = r.trace as Array<{ lambda: number; users?: number }>;
  for (const p of trace) byLambda.set(p.lambda, Math.max(byLambda.get(p.lambda) ?? 0, p.users ?? users));
  let sum = 0;
  for (const u of byLambda.values()) sum += u / users;
  return sum + (r.rollouts - 1 - trace.filter((p) => (p.users ?? users) === users).length);
}
