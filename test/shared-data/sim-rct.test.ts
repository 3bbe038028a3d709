/**
 * Issue 13 on a real log, cheaply: the Starbucks promotion RCT from ../shared/data (skipped,
 * with the reason printed, where that folder is absent). A seeded 20% of users is held out;
 * SACO (one epoch, a small network), the simulator and a DR outcome model are fitted on a
 * seeded 20,000 of the others; `solve()` in the simulator at 50% of the treat-everyone spend.
 * Checked against what the data says, not against the code under test: BARate in [0.98, 1];
 * the simulator's cost is $0.15 per promotion it issued; the plan's IPS (bench/sim-real.ts
 * `planEstimates`) equals a plain loop's closed form under 50/50 randomisation; DR is finite and
 * its cost matches the plan's exact cost; the simulator's mean revenue per arm on the held-out
 * users at round 0 is within 4 SE of the logged means per arm.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import { loadSchemaFile } from '../../src/data/schema.js';
import { selectUsers, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { outcomeTable } from '../../src/eval/dr.js';
import { loadNativeModel, type NativeModel } from '../../src/native/index.js';
import { trainCodt } from '../../src/policy/train.js';
import { fitOutcomeModel, type OutcomeModel } from '../../src/sim/outcome.js';
import { fitSimulator, simUsers, traceSimulator, type Simulator } from '../../src/sim/simulator.js';
import { solve, type SolveResult } from '../../src/solve/index.js';
import { planEstimates } from '../../bench/sim-real.js';
import { SHARED_DATA } from '../helpers/fixtures.js';

const FILE = path.join(SHARED_DATA, 'starbucks_promotion_rct_train.csv');
const SCHEMA = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'schemas', 'starbucks.json');
const present = existsSync(FILE);
if (!present) console.warn(`skipping the Starbucks simulator tests: ${FILE} not found (the shared datasets are not part of the repository)`);

/** $0.15 per promotion (schemas/starbucks.json); arm 1 is "Yes". */
const PROMOTION_COST = 0.15;
const YES = 1;

/** Mean and standard error per arm (a plain loop). */
function armMeans(values: ArrayLike<number>, arms: ArrayLike<number>): Array<{ mean: number; se: number; n: number }> {
  return [0, 1].map((k) => {
    let n = 0;
    let s = 0;
    let ss = 0;
    for (let i = 0; i < values.length; i++) {
      if (arms[i] !== k) continue;
      n++;
      s += values[i];
      ss += values[i] * values[i];
    }
    const mean = s / n;
    return { mean, se: Math.sqrt((ss / n - mean * mean) / (n - 1)), n };
  });
}

describe.skipIf(!present)('the simulator on the Starbucks promotion RCT (shared data)', () => {
  let train: Trajectories;
  let test: Trajectories;
  let sim: Simulator;
  let outcome: OutcomeModel;
  let model: NativeModel;
  let plan: SolveResult;
  let budget: number;

  beforeAll(async () => {
    const { trajectories } = await readTrajectories(FILE, { schema: loadSchemaFile(SCHEMA) });
    const split = splitByUser(trajectories, { testFraction: 0.2, seed: 1 });
    // a seeded 20,000 of the training users (the first 20,000 of a seeded shuffle)
    const order = Array.from({ length: split.train.users }, (_, i) => i);
    let state = 12345;
    for (let i = order.length - 1; i > 0; i--) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      const j = state % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    train = selectUsers(split.train, order.slice(0, 20000).sort((a, b) => a - b));
    test = split.test;
    const { model: codt } = await trainCodt(train, { seed: 1, epochs: 2 });
    model = loadNativeModel(codt);
    sim = await fitSimulator(train, { seed: 1 });
    outcome = await fitOutcomeModel(train, { seed: 1, heads: { reward: true, cost: true, next: false } });
    // treat everyone with the promotion: $0.15 for each held-out user
    budget = 0.5 * PROMOTION_COST * test.users;
    plan = await solve({ model, users: test, budget, env: { kind: 'sim', simulator: sim, seed: 1 } });
  }, 120_000);

  afterAll(() => {
    model?.unload();
    outcome?.dispose();
    sim?.dispose();
  });

  it('the solve at 50% of the treat-everyone spend meets BARate in [0.98, 1], at $0.15 a promotion', () => {
    expect(plan.users).toBe(test.users);
    expect(plan.rounds).toBe(1);
    expect(plan.baRate).toBeGreaterThanOrEqual(0.98);
    expect(plan.baRate).toBeLessThanOrEqual(1);
    let promotions = 0;
    for (let i = 0; i < test.users; i++) if (plan.plan[i] === YES) promotions++;
    expect(plan.cost).toBeCloseTo(PROMOTION_COST * promotions, 2);
    expect(plan.cost / budget).toBeCloseTo(plan.baRate, 10);
  });

  it("the plan's IPS equals the closed form under 50/50 randomisation; DR is finite, its cost the plan's", async () => {
    const est = planEstimates(test, await outcomeTable(outcome, test), Int32Array.from(plan.plan), 0.5);
    // IPS total over N held-out users = N · (1/N) Σ_i [plan_i = a_i] y_i / 0.5 = 2 Σ_{plan_i = a_i} y_i
    const N = test.users;
    const termsR = new Float64Array(N);
    const termsC = new Float64Array(N);
    let promotions = 0;
    for (let i = 0; i < N; i++) {
      if (plan.plan[i] === YES) promotions++;
      if (plan.plan[i] !== test.actions[i]) continue;
      termsR[i] = test.rewards[i] / 0.5;
      termsC[i] = test.costs[i] / 0.5;
    }
    const meanSe = (t: Float64Array) => {
      const m = t.reduce((a, b) => a + b, 0) / N;
      return { total: N * m, se: N * Math.sqrt(t.reduce((s, x) => s + (x - m) ** 2, 0) / (N * (N - 1))) };
    };
    const r = meanSe(termsR);
    const c = meanSe(termsC);
    expect(est.ope.reward.ips.value).toBeCloseTo(r.total, 6);
    expect(est.ope.reward.ips.se).toBeCloseTo(r.se, 6);
    expect(est.ope.cost.ips.value).toBeCloseTo(c.total, 6);
    expect(r.total).toBeGreaterThan(0);
    for (const e of [est.reward.dr, est.cost.dr]) {
      expect(Number.isFinite(e.value)).toBe(true);
      expect(Number.isFinite(e.se) && e.se > 0).toBe(true);
    }
    // the cost is $0.15 per promotion, known exactly: DR's cost (model term + correction) is the plan's
    expect(est.cost.dr.value).toBeCloseTo(PROMOTION_COST * promotions, 0);
    // a loose sanity bound, not the gate (bench --only=sim-real measures the 95% interval)
    expect(Math.abs(plan.revenue - est.reward.dr.value)).toBeLessThan(4 * est.reward.dr.se);
  });

  it("the simulator's mean revenue per arm at round 0 is within 4 SE of the logged means on the held-out users", async () => {
    const trace = await traceSimulator(sim, simUsers(sim, test), 1, 7);
    const logged = armMeans(test.rewards, test.actions);
    const simulated = armMeans(trace.rewards, trace.actions);
    for (const k of [0, 1]) {
      expect(simulated[k].n).toBeGreaterThan(0.45 * test.users);
      expect(Math.abs(simulated[k].mean - logged[k].mean)).toBeLessThan(4 * Math.hypot(logged[k].se, simulated[k].se));
    }
    // the promotion's uplift has the logged sign
    expect(logged[1].mean).toBeGreaterThan(logged[0].mean);
    expect(simulated[1].mean).toBeGreaterThan(simulated[0].mean);
  });
});
