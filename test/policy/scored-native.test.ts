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
import { dfclScorer, type DfclCorrection } from '../../src/policy/dfcl.js';
import { greedyActions, nativeScoredSpec, outcomeScorer, scoredRollout, syActionMap } from '../../src/policy/scored.js';
import { buildFeatures, loggedJointActions } from '../../src/sim/features.js';
import { fitOutcomeModel, type OutcomeModel } from '../../src/sim/outcome.js';
import { disposeArms, fitPerArm, jointCount, rowsByArm, type ArmOutcomes } from '../../src/sim/arm-outcomes.js';
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

async function compareScored(w: World, model: OutcomeModel | ArmOutcomes, policy: 'scored' | 'scored-fixed', lambda: number, budget: number, correction: DfclCorrection | null = null) {
  const envAction = syActionMap(w.train.actionEncodings, w.config);
  const scorer = correction ? dfclScorer(model, correction) : outcomeScorer(model, { cost: ('outcomes' in model ? model.outcomes[0] : model).hasCost });
  const ts = await scoredRollout({ env: w.config, rounds: w.config.rounds, userIds: w.test, template: w.train, scorer, lambda, budget, recordPlan: true });
  const spec: NativeRolloutSpec = { env: w.config, rounds: w.config.rounds, budget, policy, lambda, userIds: w.test, scored: { ...nativeScoredSpec({ model, envAction }), correction }, recordPlan: true, recordDetails: true };
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

  it('models per joint action (each scores its own action): the same plan on one and two action dimensions, not the pooled plan; a bad armModel is refused', async () => {
    const perArm = async (w: World): Promise<ArmOutcomes> => {
      const layout = w.full.layout;
      const m = buildFeatures(w.train, layout);
      const rowsOf = rowsByArm(loggedJointActions(w.train), m, jointCount(layout));
      expect(rowsOf.every((rows) => rows.length > 0)).toBe(true);
      return fitPerArm(w.train, m, rowsOf, layout, { held: new Uint8Array(w.train.users), params: { rounds: 25, depth: 4, seed: 1, earlyStopping: 0 }, next: false });
    };
    const arms = await perArm(seq);
    let bundled: ArmOutcomes | undefined;
    try {
      bundled = await perArm(bundle);
      expect(arms.outcomes.length).toBe(4);
      let moved = 0;
      for (const [lambda, budget] of [[0, Infinity], [0.7, 0.3 * seq.logging]]) {
        const { nat } = await compareScored(seq, arms, 'scored', lambda, budget);
        const { nat: pooledPlan } = await compareScored(seq, seq.full, 'scored', lambda, budget);
        moved += Array.from(nat.plan!).filter((a, c) => a !== pooledPlan.plan![c]).length;
      }
      expect(moved).toBeGreaterThan(0); // the models per arm decide otherwise than the pooled one
      // a permuted armModel scores actions by other arms' models: another plan, still the TypeScript one
      const swapped: ArmOutcomes = { outcomes: arms.outcomes, armModel: [...arms.armModel].reverse() };
      const { nat: s1 } = await compareScored(seq, swapped, 'scored', 0.7, Infinity);
      const { nat: s0 } = await compareScored(seq, arms, 'scored', 0.7, Infinity);
      expect(Array.from(s1.plan!)).not.toEqual(Array.from(s0.plan!));
      await compareScored(bundle, bundled, 'scored', 0.5, 0.4 * bundle.logging);
      const envAction = syActionMap(seq.train.actionEncodings, seq.config);
      const run = (scored: NativeRolloutSpec['scored']) => nativeRollout({ env: seq.config, rounds: seq.config.rounds, budget: Infinity, policy: 'scored', lambda: 0, userIds: seq.test, scored });
      const good = nativeScoredSpec({ model: arms, envAction });
      await expect(run({ ...good, armModel: [0, 1, 2] })).rejects.toThrow(/armModel needs one model index per joint action \(4\)/);
      await expect(run({ ...good, armModel: [0, 1, 2, 4] })).rejects.toThrow(/armModel\[3\] holds an index outside/);
      await expect(run({ ...good, armModel: undefined })).rejects.toThrow(/armModel must give/);
      await expect(run({ ...nativeScoredSpec({ model: seq.full, envAction }), armModel: [0, 0, 0, 0] })).rejects.toThrow(/armModel goes with an array/);
      await expect(run({ ...good, outcome: [arms.outcomes[0].id, seq.q.id, arms.outcomes[2].id, arms.outcomes[3].id] })).rejects.toThrow(/all have cost heads, or none/);
    } finally {
      disposeArms(arms);
      if (bundled) disposeArms(bundled);
    }
  }, 30_000);

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

/**
 * A DFCL correction (src/policy/dfcl.ts) made by hand, every basis term weighted: the intercept,
 * a state column and a history column (standardised on the log's rows), and the reward and
 * cost uplifts over the control; weights of about half the score spread, so decisions move.
 */
async function handCorrection(w: World, model: OutcomeModel): Promise<DfclCorrection> {
  const L = model.layout;
  const rows = buildFeatures(w.train, L);
  const scorer = outcomeScorer(model);
  const s = await scorer.score(rows.x);
  const P = L.names.length;
  const sd = (v: ArrayLike<number>) => {
    const m = Array.from(v).reduce((a, b) => a + b, 0) / v.length;
    return Math.sqrt(Array.from(v).reduce((a, b) => a + (b - m) ** 2, 0) / v.length) || 1;
  };
  const columns = [L.offsets.state, L.offsets.history];
  const column = (j: number) => Array.from({ length: rows.rows }, (_, r) => rows.x[r * P + j]);
  const mean = columns.map((j) => column(j).reduce((a, b) => a + b, 0) / rows.rows);
  const scale = columns.map((j) => sd(column(j)));
  const [sr, sc] = [sd(s.reward), sd(s.cost)];
  const K = scorer.K;
  const Q = 1 + columns.length + 2;
  const control = L.control.reduce((k, v, j) => k * L.actionSizes[j] + v, 0);
  const reward = Array.from({ length: K * Q }, (_, i) => 0.5 * sr * Math.sin(1 + 3 * i));
  const cost = Array.from({ length: K * Q }, (_, i) => 0.5 * sc * Math.cos(2 + 5 * i));
  return { columns, mean, scale, upliftScale: [sr, sc], control, K, reward, cost };
}

describe("native scored policy with DFCL's correction = the TypeScript dfclScorer", () => {
  it('the same plan as scoredRollout with dfclScorer(model, correction), not the uncorrected plan; solve() passes it on; a bad one is refused', async () => {
    const correction = await handCorrection(seq, seq.full);
    let moved = 0;
    for (const [lambda, budget] of [[0, Infinity], [0.7, 0.3 * seq.logging], [3, Infinity]]) {
      const { nat } = await compareScored(seq, seq.full, 'scored', lambda, budget, correction);
      const { nat: plain } = await compareScored(seq, seq.full, 'scored', lambda, budget);
      moved += Array.from(nat.plan!).filter((a, c) => a !== plain.plan![c]).length;
    }
    expect(moved).toBeGreaterThan(0); // the correction changed decisions, so the equality above tests it
    const bundled = await handCorrection(bundle, bundle.full);
    await compareScored(bundle, bundle.full, 'scored', 0.5, 0.4 * bundle.logging, bundled);
    // solve({ scored: { model, correction } }): scored-fixed runs once at λ = 0
    const envAction = syActionMap(seq.train.actionEncodings, seq.config);
    const budget = 0.4 * seq.logging;
    const solved = await solve({ policy: 'scored-fixed', scored: { model: seq.full, envAction, correction }, users: { ids: seq.test }, budget, env: seq.env });
    const ts = await scoredRollout({ env: seq.config, rounds: seq.config.rounds, userIds: seq.test, template: seq.train, scorer: dfclScorer(seq.full, correction), lambda: 0, budget, recordPlan: true });
    expect(Array.from(solved.plan!)).toEqual(Array.from(ts.plan!));
    // sizes that disagree: NATIVE_ARGUMENT, naming the field
    const spec = (c: DfclCorrection): NativeRolloutSpec => ({ env: seq.config, rounds: seq.config.rounds, budget: Infinity, policy: 'scored', lambda: 0, userIds: seq.test, scored: { ...nativeScoredSpec({ model: seq.full, envAction }), correction: c } });
    const refused = async (c: DfclCorrection, field: RegExp) => {
      const e = await nativeRollout(spec(c)).then(() => null, (err: unknown) => err as { code?: string; message: string });
      expect(e?.code).toBe('NATIVE_ARGUMENT');
      expect(e?.message).toMatch(field);
    };
    await refused({ ...correction, reward: correction.reward.slice(1) }, /correction\.reward/);
    await refused({ ...correction, cost: [...correction.cost, 0] }, /correction\.cost/);
    await refused({ ...correction, scale: [1] }, /correction\.scale/);
    await refused({ ...correction, K: correction.K + 1, reward: [...correction.reward, 0, 0, 0, 0, 0], cost: [...correction.cost, 0, 0, 0, 0, 0] }, /correction/);
    await refused({ ...correction, columns: [seq.full.layout.offsets.action, seq.full.layout.offsets.history] }, /correction\.columns/);
  }, 20_000);
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
