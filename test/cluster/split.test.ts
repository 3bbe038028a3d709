/**
 * The sharded solve without Redis: the budget split, the shard ranges, the in-process twin
 * against the unsharded solve, and the refusal of policies that share state across users.
 */
import { describe, expect, it, vi } from 'vitest';
import { budgetShares, shardRanges, solveSharded } from '../../src/cluster/index.js';
import { solve } from '../../src/solve/index.js';

// a policy that learns across users (a bandit), as the registry will declare it
vi.mock('../../src/policy/registry.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/policy/registry.js')>();
  return {
    ...real,
    policyByName: (name: string, argument?: string) =>
      name === 'shared-bandit' ? { name, description: 'learns across users', needsModel: false, searched: true, sharesStateAcrossUsers: true } : real.policyByName(name, argument),
  };
});

describe('sharded solve, in process', () => {
  it('splits users into near-equal ranges and the budget pro-rata, never above the budget', () => {
    expect(shardRanges(10, 3)).toEqual([{ begin: 0, end: 3 }, { begin: 3, end: 6 }, { begin: 6, end: 10 }]);
    expect(shardRanges(2, 4).filter((r) => r.end > r.begin)).toHaveLength(2);
    for (const weights of [[1, 2, 3], [0.1, 0.2, 0.3], [1e-300, 1, 1e300], [7, 7, 7, 7, 7, 7, 7]]) {
      const shares = budgetShares(1000.1, weights, weights.map(() => 1));
      expect(shares.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1000.1);
      expect(shares.reduce((a, b) => a + b, 0)).toBeGreaterThan(1000.1 * (1 - 1e-8));
    }
    expect(budgetShares(90, [0, 0, 0], [1, 1, 1])).toEqual(budgetShares(90, [1, 1, 1], [5, 6, 7]));
  });

  it('the 12-shard twin: the same λ path as the unsharded solve, revenue within 0.5%, spend within the budget', async () => {
    const options = { users: 3000, budget: '0.5x' as const, env: { seed: 2, rounds: 5 }, policy: 'oracle' as const };
    const [plain, twin, again] = [await solve(options), await solveSharded({ ...options, shards: 12 }), await solveSharded({ ...options, shards: 12 })];
    expect(twin.shards).toHaveLength(12);
    expect(twin.trace.map((t) => t.lambda)).toEqual(plain.trace.map((t) => t.lambda));
    expect(Math.abs(twin.revenue - plain.revenue) / plain.revenue).toBeLessThan(0.005);
    expect(twin.cost).toBeLessThanOrEqual(twin.budget);
    expect(twin.baRate).toBeGreaterThanOrEqual(0.98);
    expect(twin.shards.reduce((n, s) => n + s.budget, 0)).toBeLessThanOrEqual(twin.budget);
    expect(twin.plan).toHaveLength(plain.plan.length);
    // deterministic
    expect([again.lambda, again.revenue, again.cost]).toEqual([twin.lambda, twin.revenue, twin.cost]);
    // Random (no λ search): one plan, split by the reference spend
    const random = await solveSharded({ ...options, policy: 'random', shards: 5 });
    expect(random.method).toBe('none');
    expect(random.cost).toBeLessThanOrEqual(random.budget);
  });

  it('refuses policies that share state across users, SLSQP, and more shards than it can count', async () => {
    await expect(solveSharded({ users: 100, budget: 10, policy: 'shared-bandit' as never, shards: 2 })).rejects.toMatchObject({ code: 'CLUSTER_POLICY_NOT_SHARDABLE' });
    await expect(solveSharded({ users: 100, budget: 10, policy: 'oracle', method: 'slsqp', shards: 2 })).rejects.toThrow(/bisection/);
    await expect(solveSharded({ users: 100, budget: 10, policy: 'oracle', shards: 0 })).rejects.toThrow(/shards/);
  });
});
