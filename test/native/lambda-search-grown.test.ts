/**
 * The subsampled λ search (native/dual.cc: a probe grows from a seeded subsample to every
 * user, dropped part-way when clearly outside the band) against the exhaustive search, on a
 * model trained on SY and fresh SY users, for user sets and budgets beyond the one
 * test/native/perf-equivalence.test.ts checks:
 * - its λ*'s natural spend, rolled out directly on every user, lies in the band the exhaustive
 *   search stops in, B - ε <= C <= B, and equals what the search's probe on every user at λ*
 *   measured (that probe was put together from the parts it grew over);
 * - its plan is the budget-enforced rollout at λ*, run directly: the same actions, revenue and
 *   cost, bit for bit (the subsample is drawn by whole blocks of users, so every part's rollout
 *   decodes users in the same blocks as a rollout of everyone, whatever the GEMM kernel);
 * - its revenue is within 0.5% of the exhaustive search's, spend never exceeds B;
 * - it simulates fewer users in all than the exhaustive search.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSyConfig } from '../../src/data/synth.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { readOnnx } from '../../src/model/onnx.js';
import { loadNativeModel, nativeRollout, type NativeModel } from '../../src/native/index.js';
import { solve, syEnvForModel } from '../../src/solve/index.js';
import { searchWork } from '../../src/solve/search-work.js';
import { SHARED_MODEL_TIMEOUT, sharedModel } from '../helpers/shared-model.js';

let model: CodtModel;
let h: NativeModel;

beforeAll(async () => {
  model = readOnnx((await sharedModel('native')).path);
  h = loadNativeModel(model);
}, SHARED_MODEL_TIMEOUT);

afterAll(() => h?.unload());

describe('subsampled λ search grown to every user', () => {
  const users = 12_000; // above the 8,192 users from which the search subsamples
  const cases = [
    { first: 400_000, budget: '0.5x' },
    { first: 400_000, budget: '0.25x' },
    { first: 700_000, budget: '0.4x' },
  ] as const;
  for (const { first, budget } of cases) {
    it(`users ${first}.. at ${budget}: λ* in the exhaustive search's band on every user, its plan the enforced rollout at λ*, revenue within 0.5%`, async () => {
      const ids = Uint32Array.from({ length: users }, (_, i) => first + i);
      const common = { model: h, users: { ids }, env: syEnvForModel(model.meta, 1) };
      const env = resolveSyConfig({ ...syEnvForModel(model.meta, 1), users: 1 });
      const rounds = model.meta.config.context;
      const exhaustive = await solve({ ...common, budget, subsample: false });
      const sampled = await solve({ ...common, budget });
      expect(sampled.budget).toBe(exhaustive.budget);
      const B = exhaustive.budget;
      const epsilon = 0.02 * B;
      const sampledWork = searchWork(sampled, users);
      const exhaustiveWork = searchWork(exhaustive, users);
      console.log(`${budget} users ${first}..: exhaustive λ* ${exhaustive.lambda.toFixed(4)} (cost ${exhaustive.cost.toFixed(0)}, ${exhaustiveWork.toFixed(2)} rollouts); ` +
        `subsampled λ* ${sampled.lambda.toFixed(4)} (cost ${sampled.cost.toFixed(0)}, ${sampledWork.toFixed(2)} rollouts' worth of users: ${sampled.rollouts - 1} on every user, ${sampled.sampleRollouts} on parts); ` +
        `revenue ${(100 * (sampled.revenue / exhaustive.revenue - 1)).toFixed(3)}%`);
      expect(exhaustive.needsMoreThanLambdaMax || exhaustive.budgetNotBinding).toBe(false); // the case under test: an interior λ*
      expect(sampled.sampleRollouts).toBeGreaterThan(0);
      expect(sampledWork).toBeLessThan(exhaustiveWork);
      // λ* within the tolerance: its natural spend on every user, rolled out directly, is in the exhaustive search's band
      const natural = await nativeRollout({ env, rounds, budget: Infinity, policy: 'codt', lambda: sampled.lambda, model: h.id, userIds: ids });
      expect(natural.cost).toBeLessThanOrEqual(B);
      expect(natural.cost).toBeGreaterThanOrEqual(B - epsilon);
      // ... and is what the search's probe on every user at λ* (put together from its parts) measured
      const probe = (sampled.trace as Array<{ lambda: number; cost: number; revenue: number; users?: number }>).find((p) => p.lambda === sampled.lambda && (p.users ?? users) === users);
      expect(probe).toBeDefined();
      // ... grown there from parts (a probe on part of the users at λ* too), not run in one piece by the exhaustive fallback
      expect((sampled.trace as Array<{ lambda: number; users?: number }>).some((p) => p.lambda === sampled.lambda && (p.users ?? users) < users)).toBe(true);
      expect(probe!.cost).toBe(natural.cost);
      expect(probe!.revenue).toBe(natural.revenue);
      // the plan is the budget-enforced rollout at λ*, run directly
      const direct = await nativeRollout({ env, rounds, budget: B, policy: 'codt', lambda: sampled.lambda, model: h.id, userIds: ids, recordPlan: true });
      for (const r of [exhaustive, sampled]) {
        expect(r.cost).toBeLessThanOrEqual(B);
        expect(r.cost).toBeGreaterThanOrEqual(B - epsilon);
      }
      expect(sampled.revenue).toBe(direct.revenue);
      expect(sampled.cost).toBe(direct.cost);
      expect(sampled.blocked).toBe(direct.blocked);
      expect(Array.from(sampled.plan)).toEqual(Array.from(direct.plan as Int32Array));
      expect(Math.abs(sampled.revenue / exhaustive.revenue - 1)).toBeLessThan(0.005);
      if (budget === '0.5x') {
        // with plan details the plan is run again directly, and must reproduce (PLAN_NOT_REPRODUCED otherwise)
        const detailed = await solve({ ...common, budget, planDetails: true });
        expect(detailed.lambda).toBe(sampled.lambda);
        expect(detailed.revenue).toBe(sampled.revenue);
        expect(detailed.planDetails?.withheld.length).toBe(users * rounds);
      }
    }, 240_000);
  }
});
