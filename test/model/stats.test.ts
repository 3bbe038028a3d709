import { describe, expect, it } from 'vitest';
import type { InteractionLog } from '../../src/data/log.js';
import { CounterStream } from '../../src/data/rng.js';
import { buildTrajectories } from '../../src/data/trajectories.js';
import { epochOrder, EpochStream } from '../../src/model/batches.js';
import { computeNormalization, estimateLambdaMax, lagrangianWeight, roundMoments, targetsAt, targetTable } from '../../src/model/stats.js';

/** n users, T rounds, random rewards/costs, action k costs k when bought. */
function randomTrajectories(n: number, T: number, seed: number) {
  const s = new CounterStream(seed, 0, 0, 50);
  const rows = n * T;
  const actions = Int32Array.from({ length: rows }, () => Math.floor(s.uniform() * 3));
  const log: InteractionLog = {
    source: 'random',
    rows,
    userIndex: Int32Array.from({ length: rows }, (_, r) => Math.floor(r / T)),
    roundIndex: Int32Array.from({ length: rows }, (_, r) => r % T),
    userIds: Array.from({ length: n }, (_, i) => String(i)),
    stateNames: ['a', 'b', 'const'],
    states: Float64Array.from({ length: rows * 3 }, (_, k) => (k % 3 === 2 ? 7 : s.normal() * (1 + (k % 3)))),
    actionEncodings: [{ column: 'action', values: [0, 1, 2] }],
    actions,
    cost: Float64Array.from(actions, (a) => (s.uniform() < 0.5 ? a : 0)),
    reward: Float64Array.from(actions, (a) => (s.uniform() < 0.3 + 0.1 * a ? 10 : 0)),
    categorical: [],
  };
  return buildTrajectories(log);
}

describe('training statistics', () => {
  const t = randomTrajectories(2000, 3, 1);
  const m = roundMoments(t);

  it('the closed-form standardisation equals brute force at any λ', () => {
    for (const lambda of [0, 0.7, 2.5]) {
      for (let round = 0; round < 3; round++) {
        const L: number[] = [];
        for (let i = 0; i < t.users; i++) L.push(t.rtg[i * 3 + round] - lambda * t.ctg[i * 3 + round]);
        const mean = L.reduce((a, b) => a + b, 0) / L.length;
        const sd = Math.sqrt(L.reduce((a, b) => a + (b - mean) ** 2, 0) / L.length);
        for (const i of [0, 5, 77]) {
          const z = (L[i] - mean) / sd;
          const expected = Math.exp(Math.min(3, Math.max(-3, z)) / 0.5);
          expect(lagrangianWeight(t.rtg[i * 3 + round], t.ctg[i * 3 + round], round, lambda, m, 0.5)).toBeCloseTo(expected, 8);
        }
      }
    }
  });

  it('normalisation: z-scores of states, constant columns keep scale 1', () => {
    const n = computeNormalization(t, 2);
    expect(n.stateStd[2]).toBe(1);
    expect(n.stateMean[2]).toBeCloseTo(7, 5);
    expect(n.stateStd[1]).toBeCloseTo(2, 1);
    expect(n.lambdaMax).toBe(2);
  });

  it('the target table: unweighted is the plain mean; weighted CTG*_0 falls as λ rises', () => {
    const flat = targetTable(t, m, 3, null, 5);
    expect(flat.rtg.every((v) => Math.abs(v - m.meanR[0]) < 1e-9)).toBe(true);
    const w = targetTable(t, m, 3, 0.5, 5);
    for (let g = 1; g < 5; g++) expect(w.ctg[g]).toBeLessThan(w.ctg[g - 1]);
    const mid = targetsAt(w, 0.375);
    expect(mid.ctg).toBeCloseTo((w.ctg[0] + w.ctg[1]) / 2, 9);
    expect(targetsAt(w, 99).ctg).toBe(w.ctg[4]);
  });

  it('λmax from the data: twice the best revenue per unit cost over no coupon', () => {
    // action 1: +1 revenue for 0.5 cost (2/unit); action 2: +3 revenue for 3 cost (1/unit)
    const rows = 6;
    const log: InteractionLog = {
      source: 'hand', rows, userIndex: Int32Array.from([0, 1, 2, 3, 4, 5]), roundIndex: new Int32Array(rows), userIds: ['0', '1', '2', '3', '4', '5'],
      stateNames: ['x'], states: new Float64Array(rows), actionEncodings: [{ column: 'action', values: [0, 1, 2] }],
      actions: Int32Array.from([0, 0, 1, 1, 2, 2]), cost: Float64Array.from([0, 0, 1, 0, 3, 3]), reward: Float64Array.from([1, 1, 2, 2, 4, 4]), categorical: [],
    };
    expect(estimateLambdaMax(buildTrajectories(log))).toBeCloseTo(4, 9);
  });

  it('epoch order is a seeded permutation', () => {
    const a = epochOrder(100, 1, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(epochOrder(100, 1, 0))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(100, 1, 1))).not.toEqual(Array.from(a));
  });

  it('epochs smaller than the users walk through whole passes in turn', () => {
    const whole = new EpochStream(10, 10, 3);
    for (const e of [0, 1, 5]) expect(Array.from(whole.epoch(e))).toEqual(Array.from(epochOrder(10, 3, e)));
    // 10 users in epochs of 4: epochs 0-4 are passes 0 and 1 end to end; epoch 2 straddles them
    const sliced = new EpochStream(10, 4, 3);
    const walked = [0, 1, 2, 3, 4].flatMap((e) => Array.from(sliced.epoch(e)));
    expect(walked).toEqual([...epochOrder(10, 3, 0), ...epochOrder(10, 3, 1)]);
    expect(Array.from(sliced.epoch(7))).toEqual([...epochOrder(10, 3, 2)].slice(8).concat([...epochOrder(10, 3, 3)].slice(0, 2)));
  });
});
