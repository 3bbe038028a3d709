import { describe, expect, it } from 'vitest';
import {
  deterministicTargetProbabilities,
  factoredProbabilities,
  offPolicyEstimates,
  uniformPropensities,
  type OpeEstimate,
  type OpeLog,
  type OpeResult,
} from '../../src/eval/ope.js';
import { ArgumentError } from '../../src/errors.js';
import { resolveSyConfig, syCouponValue, syInitialUser, syPurchaseProbability, syStep, syUserConstants, syWeights, type SyConfig, type SyLog, type SyUser } from '../../src/data/synth.js';
import { generateSy, nativeRollout } from '../../src/native/index.js';

/**
 * A hand-made log: 3 users, 2 rounds, user 30 has no row in round 0.
 *
 *   user round  μ     π    ratio  w_t  reward cost
 *   10   0      0.5   1    2      2    2      1
 *   10   1      0.5   1    2      4    4      0
 *   20   0      0.5   1    2      2    3      0
 *   20   1      0.25  0    0      0    5      2
 *   30   1      0.25  0.5  2      2    8      1      (w_0 = 1: no decision in round 0)
 *
 * Trajectory weights W = (4, 0, 2), returns G = (6, 8, 8) → W·G = (24, 0, 16).
 */
const TINY: OpeLog = {
  // Rows deliberately out of order.
  user: [20, 10, 30, 10, 20],
  round: [1, 0, 1, 1, 0],
  logging: [0.25, 0.5, 0.25, 0.5, 0.5],
  target: [0, 1, 0.5, 1, 1],
  reward: [5, 2, 8, 4, 3],
  cost: [2, 1, 1, 0, 0],
};

describe('off-policy estimates: closed form on a hand-made log', () => {
  const r = offPolicyEstimates(TINY);

  it('groups users and rounds', () => {
    expect(r.users).toBe(3);
    expect(r.rows).toBe(5);
    expect(r.rounds).toEqual([0, 1]);
    expect(r.scale).toBe(1);
  });

  it('IPS and SNIPS (trajectory weights)', () => {
    // IPS = (24 + 0 + 16) / 3; terms deviate by (32/3, -40/3, 8/3): SE = sqrt(Σ d² / (N (N-1))).
    expect(r.reward.ips.value).toBeCloseTo(40 / 3, 12);
    const d = [24 - 40 / 3, -40 / 3, 16 - 40 / 3];
    expect(r.reward.ips.se).toBeCloseTo(Math.sqrt((d[0] ** 2 + d[1] ** 2 + d[2] ** 2) / 6), 12);
    // SNIPS = 40 / 6; φ_i = (W_i G_i − V W_i) / mean(W) = (−4/3, 0, 4/3).
    expect(r.reward.snips.value).toBeCloseTo(20 / 3, 12);
    expect(r.reward.snips.se).toBeCloseTo(Math.sqrt((16 / 9 + 0 + 16 / 9) / 6), 12);
    // ESS = (4 + 0 + 2)² / (16 + 0 + 4).
    expect(r.reward.ips.ess).toBeCloseTo(1.8, 12);
    expect(r.reward.snips.ess).toBeCloseTo(1.8, 12);
  });

  it('per-decision IPS and its self-normalised form', () => {
    // Σ_t w_t r_t per user: 2·2 + 4·4 = 20, 2·3 + 0·5 = 6, 1·0 + 2·8 = 16.
    expect(r.reward.pdis.value).toBeCloseTo(14, 12);
    expect(r.reward.pdis.se).toBeCloseTo(Math.sqrt((36 + 64 + 4) / 6), 12);
    // Round 0: Σw = 2 + 2 + 1 = 5, Σwr = 4 + 6 → 2; round 1: Σw = 4 + 0 + 2 = 6, Σwr = 16 + 16 → 16/3.
    expect(r.reward.pdsnips.value).toBeCloseTo(2 + 16 / 3, 12);
    // φ_i = Σ_t (w_it r_it − V_t w_it) / (Σw_t / N) = (−8/3, 6/5, −6/5 + 8/3).
    const phi = [-8 / 3, 6 / 5, -6 / 5 + 8 / 3];
    expect(phi[0] + phi[1] + phi[2]).toBeCloseTo(0, 12);
    expect(r.reward.pdsnips.se).toBeCloseTo(Math.sqrt((phi[0] ** 2 + phi[1] ** 2 + phi[2] ** 2) / 6), 12);
    // ESS per round: (5²/9, 6²/20); the per-decision estimators report the smaller.
    expect(r.diagnostics.essByRound[0]).toBeCloseTo(25 / 9, 12);
    expect(r.diagnostics.essByRound[1]).toBeCloseTo(1.8, 12);
    expect(r.reward.pdis.ess).toBeCloseTo(1.8, 12);
    expect(r.diagnostics.meanWeight).toBeCloseTo(2, 12);
    expect(r.diagnostics.meanWeightByRound[0]).toBeCloseTo(5 / 3, 12);
    expect(r.diagnostics.meanWeightByRound[1]).toBeCloseTo(2, 12);
    expect(r.diagnostics.maxRatio).toBe(2);
  });

  it('cost the same way', () => {
    // G = (1, 2, 1): IPS = (4 + 0 + 2) / 3; PDIS: 2·1 + 4·0, 2·0 + 0·2, 2·1 → (2 + 0 + 2) / 3.
    expect(r.cost.ips.value).toBeCloseTo(2, 12);
    expect(r.cost.snips.value).toBeCloseTo(1, 12);
    expect(r.cost.pdis.value).toBeCloseTo(4 / 3, 12);
    expect(r.cost.pdis.se).toBeCloseTo(Math.sqrt(((2 / 3) ** 2 * 2 + (4 / 3) ** 2) / 6), 12);
    // Round 0: Σwc = 2 → 2/5; round 1: Σwc = 0 + 0 + 2 → 1/3.
    expect(r.cost.pdsnips.value).toBeCloseTo(2 / 5 + 1 / 3, 12);
  });

  it('does not depend on row order; scaleTo scales values and SEs; T = 1 makes the per-decision forms equal the trajectory ones', () => {
    const perm = [3, 0, 4, 2, 1];
    const pick = <T>(a: ArrayLike<T>): T[] => perm.map((i) => a[i]);
    const shuffled = offPolicyEstimates({
      user: pick(TINY.user),
      round: pick(TINY.round),
      logging: pick(TINY.logging as number[]),
      target: pick(TINY.target as number[]),
      reward: pick(TINY.reward),
      cost: pick(TINY.cost),
    });
    expect(shuffled.reward.pdsnips.value).toBeCloseTo(r.reward.pdsnips.value, 12);
    expect(shuffled.reward.pdsnips.se).toBeCloseTo(r.reward.pdsnips.se, 12);
    expect(shuffled.cost.snips.se).toBeCloseTo(r.cost.snips.se, 12);

    const scaled = offPolicyEstimates(TINY, { scaleTo: 1000 });
    expect(scaled.reward.pdis.value).toBeCloseTo(14000, 8);
    expect(scaled.reward.snips.se).toBeCloseTo(1000 * r.reward.snips.se, 8);

    const oneRound = offPolicyEstimates({ user: [1, 2, 3, 4], round: [0, 0, 0, 0], logging: 0.25, target: [1, 0, 1, 0.5], reward: [1, 2, 3, 4], cost: [0, 1, 0, 1] });
    expect(oneRound.reward.ips.value).toBeCloseTo((4 + 12 + 8) / 4, 12);
    expect(oneRound.reward.pdis.value).toBeCloseTo(oneRound.reward.ips.value, 12);
    expect(oneRound.reward.pdis.se).toBeCloseTo(oneRound.reward.ips.se, 12);
    expect(oneRound.reward.pdsnips.value).toBeCloseTo(oneRound.reward.snips.value, 12);
    expect(oneRound.reward.pdsnips.se).toBeCloseTo(oneRound.reward.snips.se, 12);
    expect(oneRound.reward.snips.value).toBeCloseTo(24 / 10, 12);
  });

  it('a target equal to the logger gives weight 1: the logged mean and its clustered SE', () => {
    const e = offPolicyEstimates({ ...TINY, target: TINY.logging });
    // Returns per user: 6, 8, 8.
    expect(e.reward.ips.value).toBeCloseTo(22 / 3, 12);
    expect(e.reward.snips.value).toBeCloseTo(22 / 3, 12);
    expect(e.reward.pdis.value).toBeCloseTo(22 / 3, 12);
    expect(e.reward.pdis.se).toBeCloseTo(Math.sqrt(((6 - 22 / 3) ** 2 + 2 * (8 - 22 / 3) ** 2) / 6), 12);
    expect(e.diagnostics.ess).toBeCloseTo(3, 12);
  });

  it('a target that never takes a logged action: IPS 0, self-normalised NaN', () => {
    const e = offPolicyEstimates({ ...TINY, target: 0 });
    expect(e.reward.ips.value).toBe(0);
    expect(e.reward.pdis.value).toBe(0);
    expect(e.reward.snips.value).toBeNaN();
    expect(e.reward.pdsnips.value).toBeNaN();
    expect(e.diagnostics.ess).toBe(0);
  });

  it('helpers: uniform propensities, deterministic and factored target probabilities', () => {
    expect(Array.from(uniformPropensities([0, 3, 2], [4]))).toEqual([0.25, 0.25, 0.25]);
    expect(Array.from(uniformPropensities([0, 1, 2, 0], [3, 3]))).toEqual([1 / 9, 1 / 9]);
    expect(Array.from(deterministicTargetProbabilities([0, 1, 2, 2], [0, 1, 2, 1], 2))).toEqual([1, 0]);
    const probs = [Float64Array.from([0.5, 0.5, 0.1, 0.9]), Float64Array.from([1, 0, 0, 0.2, 0.3, 0.5])];
    expect(Array.from(factoredProbabilities([1, 0, 1, 2], [2, 3], probs))).toEqual([0.5, 0.9 * 0.5]);
  });

  it('bad input: ArgumentError naming the field', () => {
    const bad = (patch: Partial<Record<keyof OpeLog, unknown>>, field: RegExp): void => {
      let err: unknown;
      try {
        offPolicyEstimates({ ...TINY, ...patch } as OpeLog);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).message).toMatch(field);
    };
    bad({ reward: [1, 2, 3] }, /^ope\.reward: has 3 entries, expected 5/);
    bad({ cost: [1, 2, 3, 4, 5, 6] }, /^ope\.cost: has 6 entries/);
    bad({ round: [0, 0] }, /^ope\.round: has 2 entries/);
    bad({ logging: [0.5, 0, 0.5, 0.5, 0.5] }, /^ope\.logging\[1\]: must be a probability in \(0, 1\]/);
    bad({ logging: [0.5, 0.5, 1.5, 0.5, 0.5] }, /^ope\.logging\[2\]/);
    bad({ logging: [0.5, 0.5, 0.5, NaN, 0.5] }, /^ope\.logging\[3\]/);
    bad({ logging: 0 }, /^ope\.logging: must be a probability in \(0, 1\], got 0/);
    bad({ target: [0, 1, 1.01, 1, 1] }, /^ope\.target\[2\]: must be a probability in \[0, 1\]/);
    bad({ target: [0, 1, -0.1, 1, 1] }, /^ope\.target\[2\]/);
    bad({ target: 'x' }, /^ope\.target/);
    bad({ reward: [5, 2, NaN, 4, 3] }, /^ope\.reward\[2\]: must be a finite number/);
    bad({ cost: [5, 2, 1, Infinity, 3] }, /^ope\.cost\[3\]/);
    bad({ user: [20, 10, 30.5, 10, 20] }, /^ope\.user\[2\]: must be a safe integer/);
    bad({ round: [1, 0, -1, 1, 0] }, /^ope\.round\[2\]/);
    bad({ round: [1, 0, 1, 0, 0] }, /user 10 has two rows in round 0/);
    bad({ user: [], round: [], logging: [], target: [], reward: [], cost: [] }, /^ope\.user: the log has no rows/);
    expect(() => offPolicyEstimates(TINY, { scaleTo: 0 })).toThrow(ArgumentError);
    expect(() => uniformPropensities([0, 4], [4])).toThrow(/ope\.actions\[1\]: row 1, dimension 0: must be an action index in \[0, 4\)/);
    expect(() => uniformPropensities([0, 1, 2], [4, 4])).toThrow(ArgumentError);
    expect(() => deterministicTargetProbabilities([0, 1], [0], 1)).toThrow(ArgumentError);
    expect(() => factoredProbabilities([0], [2], [[0.5, 0.6]])).toThrow(/sums to/);
  });
});

// ---------------------------------------------------------------------------------------------
// SY: estimates on a uniform log against the truth of rolling the policy out on the same users.

const USERS = 100_000;
const ROUNDS = 5;
const SEED = 11;

/** The myopic Oracle's choice: argmax E[r] − λ·E[c] over the coupons, first on ties (native/policy_oracle.cc). */
function oracleChoice(config: SyConfig, consts: SyUser, engagement: number, fatigue: number, lambda: number): number {
  const action = new Int32Array(1);
  let best = -Infinity;
  let bestK = 0;
  for (let k = 0; k < config.actionDims[0].values.length; k++) {
    action[0] = k;
    const v = syCouponValue(config, action, consts.basket);
    const p = syPurchaseProbability(config, consts, engagement, fatigue, v);
    const score = p * consts.basket - lambda * (p * v);
    if (score > best) {
      best = score;
      bestK = k;
    }
  }
  return bestK;
}

/** E[purchase] of every logged row under each coupon k, [rows, K], from the logged state (equal to the latent one: σ_obs = 0). */
function purchaseTable(config: SyConfig, log: SyLog): { p: Float64Array; basket: Float64Array; value: Float64Array } {
  const w = syWeights(config);
  const F = config.features;
  const S = F + 3;
  const K = config.actionDims[0].values.length;
  const rows = config.users * config.rounds;
  const p = new Float64Array(rows * K);
  const basket = new Float64Array(rows);
  const value = new Float64Array(rows * K);
  const action = new Int32Array(1);
  for (let i = 0; i < config.users; i++) {
    const consts = syUserConstants(config, w, log.states.subarray(i * config.rounds * S, i * config.rounds * S + F));
    for (let t = 0; t < config.rounds; t++) {
      const row = i * config.rounds + t;
      basket[row] = consts.basket;
      for (let k = 0; k < K; k++) {
        action[0] = k;
        const v = syCouponValue(config, action, consts.basket);
        value[row * K + k] = v;
        p[row * K + k] = syPurchaseProbability(config, consts, log.states[row * S + F], log.states[row * S + F + 1], v);
      }
    }
  }
  return { p, basket, value };
}

/** The Oracle's action on every logged row: the same scores as {@link oracleChoice}, from the table. */
function oracleActions(table: ReturnType<typeof purchaseTable>, K: number, lambda: number): Int32Array {
  const rows = table.basket.length;
  const out = new Int32Array(rows);
  for (let row = 0; row < rows; row++) {
    let best = -Infinity;
    let bestK = 0;
    for (let k = 0; k < K; k++) {
      const p = table.p[row * K + k];
      const score = p * table.basket[row] - lambda * (p * table.value[row * K + k]);
      if (score > best) {
        best = score;
        bestK = k;
      }
    }
    out[row] = bestK;
  }
  return out;
}

/** A small seeded generator (mulberry32) for the ε-greedy policy's own coin flips. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Rolls ε-greedy-Oracle(λ) out in the TypeScript SY reference (the same equations and draws as
 * the native environment): with probability ε a uniform coupon, else the Oracle's. Totals over users.
 */
function rolloutEpsilonOracle(config: SyConfig, lambda: number, epsilon: number, seed: number, users = config.users): { revenue: number; cost: number } {
  const w = syWeights(config);
  const K = config.actionDims[0].values.length;
  const rand = mulberry32(seed);
  const action = new Int32Array(1);
  let revenue = 0;
  let cost = 0;
  for (let i = 0; i < users; i++) {
    const user = syInitialUser(config, w, i);
    for (let t = 0; t < config.rounds; t++) {
      const greedy = oracleChoice(config, user.consts, user.engagement, user.fatigue, lambda);
      action[0] = rand() < epsilon ? Math.min(K - 1, Math.floor(rand() * K)) : greedy;
      const step = syStep(config, user, t, action);
      revenue += step.reward;
      cost += step.cost;
    }
  }
  return { revenue, cost };
}

interface Row {
  policy: string;
  truth: { reward: number; cost: number };
  est: OpeResult;
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const cell = (e: OpeEstimate): string => `${fmt(e.value)} ± ${fmt(e.se)}`;
const within = (e: OpeEstimate, truth: number, k = 3): boolean => Math.abs(e.value - truth) <= k * e.se;

describe('off-policy estimates on SY against the ground truth', () => {
  it(`7 target policies on a uniform log of ${USERS} × ${ROUNDS}: every estimator within 3 SE of the rollout, for revenue and cost`, async () => {
    const started = Date.now();
    const config = resolveSyConfig({ users: USERS, rounds: ROUNDS, seed: SEED });
    const log = await generateSy(config);
    const rows = USERS * ROUNDS;
    const F = config.features;
    const S = F + 3;
    expect(config.sigmaObs).toBe(0);
    expect(config.logging.kind).toBe('uniform');

    // The rollout draws each user's static features from the seed by id, as the generator did.
    const w = syWeights(config);
    const features = new Float64Array(USERS * F);
    for (let i = 0; i < USERS; i++) {
      const x = syInitialUser(config, w, i).x;
      for (let j = 0; j < F; j++) {
        features[i * F + j] = log.states[i * ROUNDS * S + j];
        if (x[j] !== features[i * F + j]) throw new Error(`user ${i} feature ${j}: drawn ${x[j]}, logged ${features[i * F + j]}`);
      }
    }
    const userIds = Uint32Array.from({ length: USERS }, (_, i) => i);
    const user = new Float64Array(rows);
    const round = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      user[r] = Math.floor(r / ROUNDS);
      round[r] = r % ROUNDS;
    }
    const K = config.actionDims[0].values.length;
    const table = purchaseTable(config, log);
    const mu = uniformPropensities(log.actions, [K]);
    const rollout = (policy: 'oracle' | 'random', lambda: number, withFeatures = false) =>
      nativeRollout({ env: config, rounds: ROUNDS, budget: Infinity, policy, lambda, userIds, recordPlan: true, ...(withFeatures ? { features } : {}) });

    const results: Row[] = [];
    const policies: Array<{ name: string; lambda: number }> = [
      { name: 'Oracle λ=0 (always $10)', lambda: 0 },
      { name: 'Oracle λ=0.5', lambda: 0.5 },
      { name: 'Oracle λ=1', lambda: 1 },
      { name: 'Oracle λ=2.5', lambda: 2.5 },
      { name: 'no coupon (Oracle λ=1e6)', lambda: 1e6 },
    ];
    for (const p of policies) {
      const actions = oracleActions(table, K, p.lambda);
      const truth = await rollout('oracle', p.lambda);
      // Round 0 states are the same in the log and the rollout: the TS Oracle must choose as the native one.
      let mismatches = 0;
      for (let i = 0; i < USERS; i++) if (actions[i * ROUNDS] !== truth.plan![i * ROUNDS]) mismatches++;
      expect(mismatches).toBe(0);
      if (p.lambda === 1e6) {
        expect(truth.coupons).toBe(0);
        expect(actions.every((a) => a === 0)).toBe(true);
      }
      if (p.lambda === 1) {
        // Features given explicitly (the log's) roll out to the same bits as features drawn from the seed.
        const given = await rollout('oracle', p.lambda, true);
        expect(given.revenue).toBe(truth.revenue);
        expect(given.cost).toBe(truth.cost);
        // The TypeScript rollout used for the ε-greedy truth below agrees with the native one at ε = 0 (first 10,000 users).
        const few = 10_000;
        const ts = rolloutEpsilonOracle(config, p.lambda, 0, 1, few);
        const nat = await nativeRollout({ env: config, rounds: ROUNDS, budget: Infinity, policy: 'oracle', lambda: p.lambda, userIds: userIds.subarray(0, few) });
        expect(ts.revenue).toBeCloseTo(nat.revenue, 6);
        expect(ts.cost).toBeCloseTo(nat.cost, 6);
      }
      const pi = deterministicTargetProbabilities(log.actions, actions, 1);
      const est = offPolicyEstimates({ user, round, logging: mu, target: pi, reward: log.reward, cost: log.cost });
      results.push({ policy: p.name, truth: { reward: truth.revenue / USERS, cost: truth.cost / USERS }, est });
    }
    {
      // A stochastic target: ε-greedy Oracle(λ = 1), π = (1 − ε)·[a = Oracle's] + ε/4; truth from the TypeScript rollout.
      const eps = 0.5;
      const greedy = oracleActions(table, K, 1);
      const pi = new Float64Array(rows);
      for (let r = 0; r < rows; r++) pi[r] = (1 - eps) * (log.actions[r] === greedy[r] ? 1 : 0) + eps / 4;
      const truth = rolloutEpsilonOracle(config, 1, eps, 12345);
      const est = offPolicyEstimates({ user, round, logging: mu, target: pi, reward: log.reward, cost: log.cost });
      results.push({ policy: `ε-greedy Oracle λ=1 (ε=${eps})`, truth: { reward: truth.revenue / USERS, cost: truth.cost / USERS }, est });
    }
    {
      // Random (π = 1/4): native 'random' replays the uniform logger's own stream, so its rollout is the log itself.
      const truth = await rollout('random', 0);
      expect(Array.from(truth.plan!)).toEqual(Array.from(log.actions));
      const est = offPolicyEstimates({ user, round, logging: mu, target: 0.25, reward: log.reward, cost: log.cost });
      results.push({ policy: 'Random (π = 1/4)', truth: { reward: truth.revenue / USERS, cost: truth.cost / USERS }, est });
    }
    const elapsed = (Date.now() - started) / 1000;

    const lines = [
      `SY ${USERS} users × ${ROUNDS} rounds, seed ${SEED}, uniform logging (μ = 1/4); value = sum over rounds per user, mean over users; ± = SE clustered by user`,
      '| policy | outcome | truth (rollout) | PDIS | PD-SNIPS | IPS | SNIPS | z (PDIS) | ESS traj / last round |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ];
    for (const r of results) {
      for (const o of ['reward', 'cost'] as const) {
        const e = r.est[o];
        const z = e.pdis.se > 0 ? (e.pdis.value - r.truth[o]) / e.pdis.se : 0;
        lines.push(`| ${r.policy} | ${o === 'reward' ? 'revenue' : 'cost'} | ${fmt(r.truth[o])} | ${cell(e.pdis)} | ${cell(e.pdsnips)} | ${cell(e.ips)} | ${cell(e.snips)} | ${fmt(z)} | ${fmt(r.est.diagnostics.ess, 0)} / ${fmt(r.est.diagnostics.essByRound[ROUNDS - 1], 0)} |`);
      }
    }
    lines.push(`(${elapsed.toFixed(1)} s)`);
    console.log(lines.join('\n'));

    expect(results.length).toBeGreaterThanOrEqual(7);
    for (const r of results) {
      for (const o of ['reward', 'cost'] as const) {
        const e = r.est[o];
        // The gate, for every estimator: per-decision IPS (unbiased; the one to use for T > 1), its self-normalised
        // form, and the trajectory-wise ones (unbiased too, with an SE about 3× larger here: ESS ≈ N / 4^5).
        for (const k of ['pdis', 'pdsnips', 'ips', 'snips'] as const) {
          expect(within(e[k], r.truth[o]), `${r.policy} ${o}: ${k} ${cell(e[k])} vs truth ${r.truth[o]}`).toBe(true);
        }
        // The mean weight of round 0 is 1 in expectation (SD ≈ √3/√N with a deterministic target): a check of the propensities.
        expect(Math.abs(r.est.diagnostics.meanWeightByRound[0] - 1)).toBeLessThan(0.05);
      }
    }
  });
});
