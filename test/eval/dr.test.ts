/**
 * Doubly robust off-policy estimates (src/eval/dr.ts): closed form on a hand-made log, the
 * identities that tie them to IPS, and on SY against the ground truth (as test/eval/ope.test.ts
 * does for IPS): an XGBoost outcome model fitted on training users, DR estimates of several
 * policies on other users within 3 SE of rolling the policy out in the true environment, with
 * a smaller SE than IPS's; and still within 3 SE with a deliberately wrong model.
 */
import { describe, expect, it } from 'vitest';
import { doublyRobustEstimates, outcomeTable, predictionsFor, predictionsFromActions, type DrLog, type DrResult } from '../../src/eval/dr.js';
import { deterministicTargetProbabilities, offPolicyEstimates, type OpeEstimate, type OpeLog } from '../../src/eval/ope.js';
import { ArgumentError } from '../../src/errors.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig, syCouponValue, syPurchaseProbability, syUserConstants, syWeights, type SyConfig, type SyLog } from '../../src/data/synth.js';
import { buildTrajectories, selectUsers } from '../../src/data/trajectories.js';
import { generateSy, nativeRollout } from '../../src/native/index.js';
import { fitOutcomeModel } from '../../src/sim/outcome.js';

/** The hand-made log of ope.test.ts: 3 users, 2 rounds, user 30 has no row in round 0. */
const TINY: OpeLog = {
  user: [20, 10, 30, 10, 20],
  round: [1, 0, 1, 1, 0],
  logging: [0.25, 0.5, 0.25, 0.5, 0.5],
  target: [0, 1, 0.5, 1, 1],
  reward: [5, 2, 8, 4, 3],
  cost: [2, 1, 1, 0, 0],
};

describe('doubly robust estimates: closed form', () => {
  // rows (as listed): q̂ (logged) and v̂ (target) of the reward
  const q = [4, 1, 6, 3, 2];
  const v = [1, 2, 7, 5, 3];
  const log: DrLog = { ...TINY, rewardModel: { logged: q, target: v }, costModel: { logged: [0, 0, 0, 0, 0], target: [0, 0, 0, 0, 0] } };
  const r = doublyRobustEstimates(log);

  it('per-decision and trajectory-wise DR by hand, SEs clustered by user', () => {
    // user 10: rows 1 (round 0: ρ 2) and 3 (round 1: ρ 2): w 1 → 2 → 4
    //   pddr = 1·v + 2·(2 − 1) + 2·v' + 4·(4 − 3) = 2 + 2 + 10 + 4 = 18; model term 2 + 10 = 12; dr = 12 + 4·(1 + 1) = 20
    // user 20: rows 4 (round 0: ρ 2) and 0 (round 1: ρ 0): w 1 → 2 → 0
    //   pddr = 3 + 2·(3 − 2) + 2·1 + 0 = 7; model term 3 + 2 = 5; dr = 5 + 0 = 5
    // user 30: row 2 (round 1: ρ 2), w 1 → 2: pddr = 7 + 2·(8 − 6) = 11; model 7; dr = 7 + 2·2 = 11
    const pd = [18, 7, 11];
    const dr = [20, 5, 11];
    const se = (t: number[]) => {
      const m = t.reduce((a, b) => a + b, 0) / t.length;
      return Math.sqrt(t.reduce((s, x) => s + (x - m) ** 2, 0) / (t.length * (t.length - 1)));
    };
    expect(r.reward.pddr.value).toBeCloseTo(12, 12);
    expect(r.reward.pddr.se).toBeCloseTo(se(pd), 12);
    expect(r.reward.dr.value).toBeCloseTo(12, 12);
    expect(r.reward.dr.se).toBeCloseTo(se(dr), 12);
    expect(r.reward.modelTerm.value).toBeCloseTo(8, 12);
    expect(r.users).toBe(3);
    expect(r.rounds).toEqual([0, 1]);
    expect(r.reward.pddr.ess).toBeCloseTo(1.8, 12);
  });

  it('with a zero model DR is IPS exactly; the IPS family comes along; scaleTo scales', () => {
    const ips = offPolicyEstimates(TINY);
    // cost had q̂ = v̂ = 0
    expect(r.cost.pddr.value).toBeCloseTo(ips.cost.pdis.value, 12);
    expect(r.cost.pddr.se).toBeCloseTo(ips.cost.pdis.se, 12);
    expect(r.cost.dr.value).toBeCloseTo(ips.cost.ips.value, 12);
    expect(r.cost.dr.se).toBeCloseTo(ips.cost.ips.se, 12);
    expect(r.ope.reward.pdis).toEqual(ips.reward.pdis);
    const scaled = doublyRobustEstimates(log, { scaleTo: 100 });
    expect(scaled.reward.pddr.value).toBeCloseTo(1200, 9);
    expect(scaled.reward.dr.se).toBeCloseTo(100 * r.reward.dr.se, 9);
  });

  it('a target equal to the logger with an exact model of a noiseless world: zero SE from the correction', () => {
    // every ratio 1: pddr_i = Σ v̂ + Σ (y − q̂); with q̂ = y the estimate is the model's expectation
    const e = doublyRobustEstimates({ ...TINY, target: TINY.logging, rewardModel: { logged: TINY.reward, target: [9, 9, 9, 9, 9] }, costModel: { logged: TINY.cost, target: TINY.cost } });
    // users 10 and 20 have two rows (18 each), user 30 one (9): mean 15, SE √((9 + 9 + 36) / 6) = 3
    expect(e.reward.pddr.value).toBeCloseTo(15, 12);
    expect(e.reward.pddr.se).toBeCloseTo(3, 12);
    expect(e.reward.dr.value).toBeCloseTo(15, 12);
  });

  it('predictions from per-action tables; bad input is an ArgumentError naming the field', () => {
    // 2 rows, K = 3
    const per = [1, 2, 3, 10, 20, 30];
    expect(predictionsFromActions(per, 3, [2, 0], { actions: [0, 1] })).toEqual({ logged: Float64Array.of(3, 10), target: Float64Array.of(1, 20) });
    expect(Array.from(predictionsFromActions(per, 3, [2, 0], { probabilities: [0.5, 0.5, 0, 0, 0, 1] }).target)).toEqual([1.5, 30]);
    expect(() => predictionsFromActions(per, 3, [3, 0], { actions: [0, 1] })).toThrow(/logged\[0\]/);
    expect(() => predictionsFromActions(per, 3, [2, 0], { probabilities: [0.5, 0.4, 0, 0, 0, 1] })).toThrow(/sums to/);
    expect(() => doublyRobustEstimates({ ...log, rewardModel: { logged: [1, 2], target: v } })).toThrow(/ope\.rewardModel\.logged: has 2 entries, expected 5/);
    expect(() => doublyRobustEstimates({ ...log, costModel: { logged: q, target: [0, 0, NaN, 0, 0] } })).toThrow(/ope\.costModel\.target\[2\]: must be a finite number/);
    expect(() => doublyRobustEstimates({ ...log, costModel: undefined as never })).toThrow(ArgumentError);
    expect(() => doublyRobustEstimates({ ...log, round: [1, 0, 1, 0, 0] })).toThrow(/user 10 has two rows in round 0/);
  });
});

// ---------------------------------------------------------------------------------------------
// SY: a uniform log; the outcome model is fitted on the first TRAIN users and scores the others.

const TRAIN = 8_000;
const EVAL = 30_000;
const ROUNDS = 5;
const SEED = 11;

/** The myopic Oracle's coupon on every logged row (argmax E[r] − λ·E[c], first on ties: native/policy_oracle.cc), from the logged state (σ_obs = 0). */
function oracleActions(config: SyConfig, log: SyLog, users: number[], lambda: number): Int32Array {
  const w = syWeights(config);
  const F = config.features;
  const S = F + 3;
  const K = config.actionDims[0].values.length;
  const T = config.rounds;
  const out = new Int32Array(users.length * T);
  const action = new Int32Array(1);
  users.forEach((i, n) => {
    const consts = syUserConstants(config, w, log.states.subarray(i * T * S, i * T * S + F));
    for (let t = 0; t < T; t++) {
      const row = i * T + t;
      let best = -Infinity;
      for (let k = 0; k < K; k++) {
        action[0] = k;
        const v = syCouponValue(config, action, consts.basket);
        const p = syPurchaseProbability(config, consts, log.states[row * S + F], log.states[row * S + F + 1], v);
        const score = p * consts.basket - lambda * (p * v);
        if (score > best) {
          best = score;
          out[n * T + t] = k;
        }
      }
    }
  });
  return out;
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const cell = (e: OpeEstimate): string => `${fmt(e.value)} ± ${fmt(e.se)}`;

describe('doubly robust estimates on SY against the ground truth', () => {
  it(`6 policies on a uniform log: DR and per-decision DR within 3 SE of the truth, with smaller SEs than IPS (XGBoost outcome model fitted on ${TRAIN} other users)`, async () => {
    const started = Date.now();
    const config = resolveSyConfig({ users: TRAIN + EVAL, rounds: ROUNDS, seed: SEED });
    const sy = await generateSy(config);
    expect(config.logging.kind).toBe('uniform');
    const all = buildTrajectories(syLogToInteractionLog(sy));
    const trainUsers = Array.from({ length: TRAIN }, (_, i) => i);
    const evalUsers = Array.from({ length: EVAL }, (_, i) => TRAIN + i);
    const train = selectUsers(all, trainUsers);
    const test = selectUsers(all, evalUsers);
    const model = await fitOutcomeModel(train, { seed: 1, heads: { reward: true, cost: true, next: false } });
    const fitted = Date.now();
    const table = await outcomeTable(model, test);
    model.dispose();
    expect(table.cells.length).toBe(EVAL * ROUNDS);
    const K = 4;
    const rows = EVAL * ROUNDS;
    const user = new Float64Array(rows);
    const round = new Float64Array(rows);
    const reward = new Float64Array(rows);
    const cost = new Float64Array(rows);
    const logged = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      user[r] = TRAIN + Math.floor(r / ROUNDS);
      round[r] = r % ROUNDS;
      reward[r] = test.rewards[r];
      cost[r] = test.costs[r];
      logged[r] = test.actions[r];
    }
    const userIds = Uint32Array.from(evalUsers);
    type Row = { policy: string; truth: { reward: number; cost: number }; est: DrResult; bad: DrResult };
    const results: Row[] = [];
    const run = async (name: string, target: { actions: Int32Array } | { probabilities: Float64Array }, pi: Float64Array | number, truth: { revenue: number; cost: number }) => {
      const p = predictionsFor(table, target);
      const est = doublyRobustEstimates({ user, round, logging: 1 / K, target: pi, reward, cost, rewardModel: p.reward, costModel: p.cost });
      // a wrong model: every reward prediction 5 too high and every cost prediction halved; DR stays unbiased
      const shift = (a: ArrayLike<number>, f: (x: number) => number) => Float64Array.from(a, f);
      const bad = doublyRobustEstimates({
        user, round, logging: 1 / K, target: pi, reward, cost,
        rewardModel: { logged: shift(p.reward.logged, (x) => x + 5), target: shift(p.reward.target, (x) => x + 5) },
        costModel: { logged: shift(p.cost.logged, (x) => x / 2), target: shift(p.cost.target, (x) => x / 2) },
      });
      results.push({ policy: name, truth: { reward: truth.revenue / EVAL, cost: truth.cost / EVAL }, est, bad });
    };
    for (const lambda of [0, 0.5, 1, 2.5, 1e6]) {
      const actions = oracleActions(config, sy, evalUsers, lambda);
      const truth = await nativeRollout({ env: config, rounds: ROUNDS, budget: Infinity, policy: 'oracle', lambda, userIds, recordPlan: true });
      // round 0 states are the same in the log and the rollout: the TS Oracle chooses as the native one
      let mismatches = 0;
      for (let n = 0; n < EVAL; n++) if (actions[n * ROUNDS] !== truth.plan![n * ROUNDS]) mismatches++;
      expect(mismatches).toBe(0);
      await run(lambda === 1e6 ? 'no coupon (Oracle λ=1e6)' : `Oracle λ=${lambda}`, { actions }, deterministicTargetProbabilities(logged, actions, 1), truth);
    }
    {
      // Random: native 'random' replays the uniform logger's own stream, so its rollout is the log itself
      const truth = await nativeRollout({ env: config, rounds: ROUNDS, budget: Infinity, policy: 'random', lambda: 0, userIds });
      await run('Random (π = 1/4)', { probabilities: new Float64Array(rows * K).fill(1 / K) }, 1 / K, truth);
    }
    const elapsed = (Date.now() - started) / 1000;

    const lines = [
      `SY ${EVAL} evaluation users × ${ROUNDS} rounds (outcome model: XGBoost on ${TRAIN} other users, fitted in ${((fitted - started) / 1000).toFixed(1)} s), seed ${SEED}, uniform logging; value per user; ± = SE clustered by user`,
      '| policy | outcome | truth | PD-DR | PDIS | DR | IPS | SE ratio PD-DR / PDIS | DR / IPS | PD-DR, wrong model |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ];
    for (const r of results) {
      for (const o of ['reward', 'cost'] as const) {
        const e = r.est[o];
        const i = r.est.ope[o];
        lines.push(`| ${r.policy} | ${o === 'reward' ? 'revenue' : 'cost'} | ${fmt(r.truth[o])} | ${cell(e.pddr)} | ${cell(i.pdis)} | ${cell(e.dr)} | ${cell(i.ips)} | ${fmt(e.pddr.se / i.pdis.se, 3)} | ${fmt(e.dr.se / i.ips.se, 3)} | ${cell(r.bad[o].pddr)} |`);
      }
    }
    lines.push(`(${elapsed.toFixed(1)} s)`);
    console.log(lines.join('\n'));

    expect(results.length).toBeGreaterThanOrEqual(4);
    const within = (e: OpeEstimate, truth: number) => Math.abs(e.value - truth) <= 3 * e.se;
    for (const r of results) {
      for (const o of ['reward', 'cost'] as const) {
        const e = r.est[o];
        const i = r.est.ope[o];
        const spends = r.truth.cost > 0;
        if (o === 'cost' && !spends) {
          // no coupon: nothing is spent, and the model knows the control costs nothing
          expect(e.pddr.value).toBe(0);
          continue;
        }
        expect(within(e.pddr, r.truth[o]), `${r.policy} ${o}: PD-DR ${cell(e.pddr)} vs truth ${r.truth[o]}`).toBe(true);
        expect(within(e.dr, r.truth[o]), `${r.policy} ${o}: DR ${cell(e.dr)} vs truth ${r.truth[o]}`).toBe(true);
        expect(within(r.bad[o].pddr, r.truth[o]), `${r.policy} ${o}: PD-DR with a wrong model ${cell(r.bad[o].pddr)} vs truth ${r.truth[o]}`).toBe(true);
        // a good model takes variance out: the DR SEs are well below the IPS ones for targets unlike the logger
        // (for Random, the logger itself, the plain mean is already nearly as good: no more than 1% above it)
        const random = r.policy.startsWith('Random');
        expect(e.pddr.se / i.pdis.se, `${r.policy} ${o}: SE ratio PD-DR / PDIS`).toBeLessThan(random ? 1.01 : 0.9);
        expect(e.dr.se / i.ips.se, `${r.policy} ${o}: SE ratio DR / IPS`).toBeLessThan(random ? 1.01 : 0.7);
      }
    }
  }, 120_000);
});
