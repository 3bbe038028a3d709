import { describe, expect, it } from 'vitest';
import { DataError } from '../src/errors.js';
import { sampleLambdas, withLambdaCopies } from '../src/data/lambda.js';
import type { InteractionLog } from '../src/data/log.js';
import { buildTrajectories, sampleUsers, splitByUser, unloggedActionValues } from '../src/data/trajectories.js';

/** Two users: "a" with 3 rounds given out of order, "b" with 1 round. */
function smallLog(): InteractionLog {
  return {
    source: 'hand',
    rows: 4,
    userIndex: Int32Array.from([0, 1, 0, 0]),
    roundIndex: Int32Array.from([2, 0, 0, 1]),
    userIds: ['a', 'b'],
    stateNames: ['s'],
    states: Float64Array.from([0.3, 1.0, 0.1, 0.2]),
    actionEncodings: [{ column: 'action', values: [0, 5] }],
    actions: Int32Array.from([1, 0, 1, 0]),
    cost: Float64Array.from([5, 0, 5, 0]),
    reward: Float64Array.from([30, 7, 10, 0]),
    categorical: [],
  };
}

describe('trajectories', () => {
  it('RTG and CTG match a hand-checked case (gamma = 1)', () => {
    const t = buildTrajectories(smallLog());
    expect(t.rounds).toBe(3);
    expect(Array.from(t.lengths)).toEqual([3, 1]);
    expect(Array.from(t.mask)).toEqual([1, 1, 1, 1, 0, 0]);
    // user a: rewards 10, 0, 30 -> RTG 40, 30, 30; costs 5, 0, 5 -> CTG 10, 5, 5
    expect(Array.from(t.rtg)).toEqual([40, 30, 30, 7, 0, 0]);
    expect(Array.from(t.ctg)).toEqual([10, 5, 5, 0, 0, 0]);
    expect(Array.from(t.states)).toEqual([0.1, 0.2, 0.3, 1, 0, 0].map(Math.fround));
    expect(Array.from(t.actions)).toEqual([1, 0, 1, 0, 0, 0]);
  });

  it('warns of declared action values no round it trains on holds (padding does not count; filled rounds do)', () => {
    const t = buildTrajectories(smallLog());
    expect(unloggedActionValues(t)).toEqual([]);
    const declared = { ...smallLog(), actionEncodings: [{ column: 'action', values: [0, 5, 10] }] };
    expect(unloggedActionValues(buildTrajectories(declared))).toEqual(['action column "action": value(s) 10 never occur in the log, so nothing learned from it will choose them']);
    // every control round filled (a log of coupons given only): the control is still learned from them
    const allFilled = { ...declared, filled: Uint8Array.from([0, 1, 0, 1]) };
    expect(unloggedActionValues(buildTrajectories(allFilled))).toHaveLength(1);
    // user a has no round 2 in a 3-round trajectory set: its padding holds action index 0 and must not count
    const noControl = { ...declared, actions: Int32Array.from([1, 1, 1, 1]) };
    expect(unloggedActionValues(buildTrajectories(noControl))).toEqual(['action column "action": value(s) 0, 10 never occur in the log, so nothing learned from it will choose them']);
  });

  it('RTG and CTG discount with gamma', () => {
    const t = buildTrajectories(smallLog(), { gamma: 0.5 });
    // RTG_0 = 10 + 0.5*0 + 0.25*30 = 17.5; RTG_1 = 0 + 0.5*30 = 15; CTG_0 = 5 + 0.25*5 = 6.25
    expect(Array.from(t.rtg.subarray(0, 3))).toEqual([17.5, 15, 30]);
    expect(Array.from(t.ctg.subarray(0, 3))).toEqual([6.25, 2.5, 5]);
    expect(() => buildTrajectories(smallLog(), { gamma: 0 })).toThrow(/gamma/);
  });

  it('refuses a repeated round', () => {
    const log = smallLog();
    log.roundIndex[3] = 0;
    expect(() => buildTrajectories(log)).toThrow(/out of range or repeated/);
  });

  it('refuses values whose float32 trajectories would not be finite (issue 11 item 4)', () => {
    const log = smallLog();
    log.reward[2] = 1e200;
    expect(() => buildTrajectories(log)).toThrow(DataError);
    expect(() => buildTrajectories(log)).toThrow(/user a, round 0: reward 1e\+200 .*1e\+?30/);
    const cost = smallLog();
    cost.cost[0] = 3e38;
    // fits a float32, but sums and squares of it do not
    expect(() => buildTrajectories(cost)).toThrow(/user a, round 2: cost 3e\+38/);
    const state = smallLog();
    state.states[1] = -Infinity;
    expect(() => buildTrajectories(state)).toThrow(/user b, round 0: state "s"/);
  });

  it('splits 80/20 by user, seeded, disjoint and complete', () => {
    const n = 1000;
    const log: InteractionLog = {
      ...smallLog(),
      rows: n,
      userIndex: Int32Array.from({ length: n }, (_, i) => i),
      roundIndex: new Int32Array(n),
      userIds: Array.from({ length: n }, (_, i) => `u${i}`),
      states: new Float64Array(n),
      actions: new Int32Array(n),
      cost: new Float64Array(n),
      reward: Float64Array.from({ length: n }, (_, i) => i),
    };
    const t = buildTrajectories(log);
    const a = splitByUser(t, { seed: 7 });
    const b = splitByUser(t, { seed: 7 });
    const c = splitByUser(t, { seed: 8 });
    expect(a.test.users).toBe(200);
    expect(a.train.users).toBe(800);
    expect(a.test.userIds).toEqual(b.test.userIds);
    expect(a.test.userIds).not.toEqual(c.test.userIds);
    const all = new Set([...a.train.userIds, ...a.test.userIds]);
    expect(all.size).toBe(n);
    // rows travel with their user
    for (let k = 0; k < a.test.users; k++) expect(a.test.rewards[k]).toBe(Number(a.test.userIds[k].slice(1)));
    // a seeded sample of at most 200 users is that split's test part; fewer users: all of them
    const sample = sampleUsers(t, 200, 7);
    expect(sample.users).toBe(200);
    const ids = new Set(t.userIds);
    expect(new Set(sample.userIds).size).toBe(200);
    expect(sample.userIds.every((id) => ids.has(id))).toBe(true);
    expect(sampleUsers(t, 200, 8).userIds).not.toEqual(sample.userIds);
    expect(sample.userIds).toEqual(a.test.userIds); // the contract: the split's test part
    for (let k = 0; k < sample.users; k++) expect(sample.rewards[k]).toBe(Number(sample.userIds[k].slice(1)));
    expect(sampleUsers(t, 5000, 7)).toBe(t);
  });
});

describe('λ sampling', () => {
  it('draws U(0, λmax) per sample, a pure function of (seed, step)', () => {
    const a = sampleLambdas(10000, 3, { seed: 1, lambdaMax: 2 });
    expect(Array.from(sampleLambdas(10000, 3, { seed: 1, lambdaMax: 2 }))).toEqual(Array.from(a));
    expect(Array.from(sampleLambdas(10000, 4, { seed: 1, lambdaMax: 2 }))).not.toEqual(Array.from(a));
    let mean = 0;
    for (const v of a) {
      expect(v).toBeGreaterThan(0);
      expect(v).toBeLessThan(2);
      mean += v / a.length;
    }
    // U(0, 2): mean 1, sd of the mean sqrt(4/12/n)
    expect(Math.abs(mean - 1)).toBeLessThan(4 * Math.sqrt(4 / 12 / a.length));
    expect(() => sampleLambdas(3, 0, { seed: 1, lambdaMax: 0 })).toThrow(/lambdaMax/);
  });

  it('lambdaPower reshapes the same draws: λmax · u^p (p = 1: the uniform draw)', () => {
    const u = sampleLambdas(1000, 5, { seed: 2, lambdaMax: 1 });
    expect(Array.from(sampleLambdas(1000, 5, { seed: 2, lambdaMax: 1, power: 1 }))).toEqual(Array.from(u));
    const sq = sampleLambdas(1000, 5, { seed: 2, lambdaMax: 3, power: 2 });
    for (let i = 0; i < u.length; i++) expect(sq[i]).toBeCloseTo(3 * u[i] * u[i], 5);
    expect(() => sampleLambdas(3, 0, { seed: 1, lambdaMax: 1, power: 0 })).toThrow(/lambdaPower/);
  });

  it('lambdaMargin stretches the same draws below zero: λmax · ((1 + m) · u − m), within [−m · λmax, λmax]', () => {
    const u = sampleLambdas(5000, 6, { seed: 3, lambdaMax: 1 });
    const stretched = sampleLambdas(5000, 6, { seed: 3, lambdaMax: 4, margin: 0.1 });
    let below = 0;
    for (let i = 0; i < u.length; i++) {
      expect(stretched[i]).toBeCloseTo(4 * (1.1 * u[i] - 0.1), 5);
      expect(stretched[i]).toBeGreaterThanOrEqual(-0.4);
      expect(stretched[i]).toBeLessThanOrEqual(4);
      if (stretched[i] < 0) below++;
    }
    // P(λ < 0) = 0.1 / 1.1: the binomial's mean ± 4 sd
    const p = 0.1 / 1.1;
    expect(Math.abs(below - p * u.length)).toBeLessThan(4 * Math.sqrt(u.length * p * (1 - p)));
    expect(Array.from(sampleLambdas(50, 6, { seed: 3, lambdaMax: 1, margin: 0 }))).toEqual(Array.from(u.subarray(0, 50)));
    for (const margin of [-0.1, 1, NaN]) expect(() => sampleLambdas(3, 0, { seed: 1, lambdaMax: 1, margin })).toThrow(/lambdaMargin/);
  });

  it('the literal recipe copies each trajectory with its own fixed λ', () => {
    const t = buildTrajectories(smallLog());
    const c = withLambdaCopies(t, 10, { seed: 2 });
    expect(c.users).toBe(20);
    expect(c.userIds.slice(0, 10).every((id) => id === 'a')).toBe(true);
    expect(c.lambda).toBeDefined();
    expect(new Set(c.lambda).size).toBe(20);
    expect(Array.from(c.rtg.subarray(0, 3))).toEqual([40, 30, 30]);
    expect(Array.from(c.rtg.subarray(27, 30))).toEqual([40, 30, 30]);
    expect(() => withLambdaCopies(t, 0, { seed: 2 })).toThrow(/lambdaCopies/);
  });
});
