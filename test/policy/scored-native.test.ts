/**
 * The native scored and fixed-arm policies (native/policy_scored.cc, policy_fixed_arm.cc)
 * against their TypeScript references on SY (src/policy/scored.ts `scoredRollout`,
 * src/eval/fixed-arm.ts `fixedArmRollout`): the same users, the same budget rule, the same
 * plan action for action; and the probability each gives its issued actions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig, SY_BUNDLE_DIMS, type SyConfig, type SyOptions } from '../../src/data/synth.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { generateSy, nativeRollout, type NativeRolloutSpec } from '../../src/native/index.js';
import { fixedArmRollout } from '../../src/eval/fixed-arm.js';
import { greedyActions, nativeScoredSpec, outcomeScorer, scoredRollout, syActionMap } from '../../src/policy/scored.js';
import { buildFeatures } from '../../src/sim/features.js';
import { fitOutcomeModel, type OutcomeModel } from '../../src/sim/outcome.js';
import { fitSimulator, simUsers } from '../../src/sim/simulator.js';
import { solve } from '../../src/solve/index.js';

const ids = (n: number, from: number) => Uint32Array.from({ length: n }, (_, i) => from + i);

interface World {
  env: SyOptions;
  config: SyConfig;
  train: Trajectories;
  full: OutcomeModel;  // reward and cost heads (DFCL's kind)
  q: OutcomeModel;     // reward heads only (CMDP's kind)
  test: Uint32Array;
  logging: number;
}

async function world(env: SyOptions): Promise<World> {
  const config = resolveSyConfig({ ...env, users: 1 });
  const train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 500 })));
  const params = { rounds: 25, depth: 4, seed: 1, earlyStopping: 0 };
  const full = await fitOutcomeModel(train, { ...params, heads: { reward: true, cost: true, next: false } });
  const q = await fitOutcomeModel(train, { ...params, heads: { reward: true, cost: false, next: false } });
  const test = ids(300, 100000);
  const logging = (await nativeRollout({ env: config, rounds: config.rounds, budget: Infinity, policy: 'random', lambda: 0, userIds: test })).cost;
  return { env, config, train, full, q, test, logging };
}

let seq: World;
let bundle: World;

beforeAll(async () => {
  seq = await world({ seed: 5, rounds: 4 });
  bundle = await world({ seed: 6, rounds: 3, actionDims: SY_BUNDLE_DIMS });
}, 60_000);

afterAll(() => {
  for (const w of [seq, bundle]) for (const m of [w?.full, w?.q]) m?.dispose();
});

async function compareScored(w: World, model: OutcomeModel, policy: 'scored' | 'scored-fixed', lambda: number, budget: number) {
  const envAction = syActionMap(w.train.actionEncodings, w.config);
  const ts = await scoredRollout({ env: w.config, rounds: w.config.rounds, userIds: w.test, template: w.train, scorer: outcomeScorer(model, { cost: model.hasCost }), lambda, budget, recordPlan: true });
  const spec: NativeRolloutSpec = { env: w.config, rounds: w.config.rounds, budget, policy, lambda, userIds: w.test, scored: nativeScoredSpec({ model, envAction }), recordPlan: true, recordDetails: true };
  const nat = await nativeRollout(spec);
  expect(Array.from(nat.plan!)).toEqual(Array.from(ts.plan!));
  expect(nat.coupons).toBe(ts.coupons);
  expect(nat.blocked).toBe(ts.blocked);
  expect(nat.revenue).toBeCloseTo(ts.revenue, 6);
  expect(nat.cost).toBeCloseTo(ts.cost, 6);
  // deterministic: probability 1 of the proposal, 0 where the budget issued the control instead
  const d = nat.details!;
  for (let c = 0; c < d.withheld.length; c++) expect(d.probability[c]).toBe(d.withheld[c] ? 0 : 1);
  return { ts, nat };
}

describe('native scored policy = the TypeScript scoredRollout on SY', () => {
  it('DFCL kind (r̂ − λ·ĉ): the same plan at several λ, unbudgeted and with a budget that withholds coupons', async () => {
    let withheld = 0;
    for (const lambda of [0, 0.7, 3]) {
      for (const budget of [Infinity, 0.3 * seq.logging]) {
        const { nat } = await compareScored(seq, seq.full, 'scored', lambda, budget);
        withheld += nat.blocked;
        if (Number.isFinite(budget)) expect(nat.cost).toBeLessThanOrEqual(budget);
      }
    }
    expect(withheld).toBeGreaterThan(0); // the budget rule was exercised
  });

  it('two action dimensions (cash × discount): joint actions and the index map agree', async () => {
    const { nat } = await compareScored(bundle, bundle.full, 'scored', 0.5, 0.4 * bundle.logging);
    expect(nat.coupons).toBeGreaterThan(0);
  });

  it('CMDP kind (a Q model without cost heads, scored-fixed): the same plan under a budget', async () => {
    await compareScored(seq, seq.q, 'scored-fixed', 0, 0.5 * seq.logging);
  });

  it('solve() runs scored-fixed once (no λ search) and scored with the λ search, both within the budget', async () => {
    const envAction = syActionMap(seq.train.actionEncodings, seq.config);
    const budget = 0.4 * seq.logging;
    const fixed = await solve({ policy: 'scored-fixed', scored: { model: seq.q, envAction }, users: { ids: seq.test }, budget, env: seq.env });
    expect(fixed.method).toBe('none');
    expect(fixed.cost).toBeLessThanOrEqual(budget);
    const searched = await solve({ policy: 'scored', scored: { model: seq.full, envAction }, users: { ids: seq.test }, budget, env: seq.env, lambdaMax: 20 });
    expect(searched.method).toBe('bisection');
    expect(searched.cost).toBeLessThanOrEqual(budget);
    // the plan at λ* is the TypeScript rollout at λ*
    const ts = await scoredRollout({ env: seq.config, rounds: seq.config.rounds, userIds: seq.test, template: seq.train, scorer: outcomeScorer(seq.full), lambda: searched.lambda, budget });
    expect(searched.coupons).toBe(ts.coupons);
    expect(searched.revenue).toBeCloseTo(ts.revenue, 6);
    await expect(solve({ policy: 'scored', users: { ids: seq.test }, budget, env: seq.env })).rejects.toThrow(/needs an outcome model/);
  });
});

describe('native scored policy in the learned simulator', () => {
  it("one round from the test users' logged states: the plan is the greedy argmax of the model's scores on those rows, at every λ", async () => {
    const env = { seed: 8, rounds: 1 };
    const train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 600 })));
    const test = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, seed: 9, users: 200 })));
    const sim = await fitSimulator(train, { rounds: 20, seed: 1 });
    const model = await fitOutcomeModel(train, { rounds: 25, depth: 4, seed: 1, earlyStopping: 0, heads: { reward: true, cost: true, next: false } });
    try {
      const users = simUsers(sim, test, { round: 0 });
      const rows = buildFeatures(test, model.layout);
      const scorer = outcomeScorer(model);
      const scores = await scorer.score(rows.x);
      let distinct = 0;
      for (const lambda of [0, 0.5, 2]) {
        const r = await nativeRollout({ env: sim.nativeEnv({ seed: 1 }), rounds: 1, budget: Infinity, policy: 'scored', lambda, ...users, scored: nativeScoredSpec({ model }), recordPlan: true });
        const want = greedyActions(scores.reward, scores.cost, scorer.K, lambda);
        expect(Array.from(r.plan!)).toEqual(Array.from(want, (k) => scorer.actions[k]));
        distinct += new Set(want).size;
      }
      expect(distinct).toBeGreaterThan(3); // λ and the users' states changed the decisions
    } finally {
      model.dispose();
      sim.dispose();
    }
  }, 30_000);
});

describe('native fixed-arm policy = the TypeScript fixedArmRollout on SY', () => {
  it('the same revenue, spend, coupons and withheld coupons for every keep probability, with and without a budget', async () => {
    const c = seq.config;
    for (const arm of [[3], [1]]) {
      for (const keep of [0, 0.37, 1]) {
        for (const budget of [Infinity, 0.2 * seq.logging]) {
          const ts = fixedArmRollout({ env: c, rounds: c.rounds, userIds: seq.test, arm, keep, coinSeed: 9, budget });
          const nat = await nativeRollout({ env: c, rounds: c.rounds, budget, policy: 'fixed-arm', lambda: 0, userIds: seq.test, fixedArm: { arm, keep, seed: 9 }, recordPlan: true, recordDetails: true });
          const what = `arm ${arm}, keep ${keep}, budget ${budget}`;
          expect(nat.coupons, what).toBe(ts.coupons);
          expect(nat.blocked, what).toBe(ts.blocked);
          expect(nat.revenue, what).toBeCloseTo(ts.revenue, 6);
          expect(nat.cost, what).toBeCloseTo(ts.cost, 6);
          // its distribution: keep on the arm, 1 − keep on no coupon
          const d = nat.details!;
          for (let k = 0; k < d.probability.length; k++) expect(d.probability[k]).toBeCloseTo(nat.plan![k] === arm[0] ? keep : 1 - keep, 12);
        }
      }
    }
  });

  it('solve() refuses a fixed arm without an arm or with keep outside [0, 1]', async () => {
    await expect(solve({ policy: 'fixed-arm', users: { ids: seq.test }, budget: 10, env: seq.env })).rejects.toThrow(/fixedArm/);
    await expect(solve({ policy: 'fixed-arm', fixedArm: { arm: [1], keep: 1.5 }, users: { ids: seq.test }, budget: 10, env: seq.env })).rejects.toThrow(/keep/);
  });
});
