/**
 * The off-policy check of `saco eval` on a log (src/eval/round-zero.ts) on a log small enough to
 * work out by hand: IPS and SNIPS of a plan's round-0 actions, with the training users' round-0
 * action shares as propensities or the log's own, and a test user without a logged round 0 (a
 * calendar round filled as the control) left out.
 */
import { describe, expect, it } from 'vitest';
import type { InteractionLog } from '../../src/data/log.js';
import { buildTrajectories } from '../../src/data/trajectories.js';
import { roundZeroCheck, roundZeroLog } from '../../src/eval/round-zero.js';

/** One action dimension {0: control, 1}; users of two rounds, round 0's action, reward and cost given. */
function log(round0: Array<{ a: number; r: number; c: number; p?: number; filled?: boolean }>): InteractionLog {
  const users = round0.length;
  const rows = users * 2;
  const out: InteractionLog = {
    source: 'by hand',
    rows,
    userIndex: Int32Array.from({ length: rows }, (_, k) => k >> 1),
    roundIndex: Int32Array.from({ length: rows }, (_, k) => k & 1),
    userIds: round0.map((_, i) => String(i)),
    stateNames: ['x'],
    states: new Float64Array(rows),
    actionEncodings: [{ column: 'a', values: [0, 1], control: 0 }],
    actions: Int32Array.from({ length: rows }, (_, k) => (k & 1 ? 1 : round0[k >> 1].a)),
    cost: Float64Array.from({ length: rows }, (_, k) => (k & 1 ? 9 : round0[k >> 1].c)),
    reward: Float64Array.from({ length: rows }, (_, k) => (k & 1 ? 99 : round0[k >> 1].r)),
    categorical: [],
    filled: Uint8Array.from({ length: rows }, (_, k) => (k & 1 ? 0 : round0[k >> 1].filled ? 1 : 0)),
  };
  if (round0.some((u) => u.p !== undefined)) out.propensity = Float64Array.from({ length: rows }, (_, k) => (k & 1 ? 0.5 : (round0[k >> 1].p ?? 1)));
  return out;
}

const train = buildTrajectories(log([{ a: 0, r: 0, c: 0 }, { a: 0, r: 0, c: 0 }, { a: 1, r: 0, c: 1 }, { a: 1, r: 0, c: 1 }, { a: 1, r: 0, c: 1 }, { a: 0, r: 0, c: 0, filled: true }]));
const testUsers = [
  { a: 0, r: 1, c: 0, p: 0.8 },
  { a: 1, r: 2, c: 0.5, p: 0.25 },
  { a: 1, r: 3, c: 0.5, p: 0.5 },
  { a: 0, r: 4, c: 0, p: 0.1 },
  { a: 0, r: 7, c: 0, filled: true },
];
// planned round 0: users 0 and 1 as logged, 2 and 3 not; user 4 (filled) is left out whatever is planned
const plan = Int32Array.from([0, 1, 1, 1, 0, 1, 1, 1, 1, 1]); // [users, rounds 2, 1 dimension]

describe('the off-policy check of a plan’s round 0', () => {
  it("with the training users' round-0 action shares (filled rounds not counted) as propensities", () => {
    const test = buildTrajectories(log(testUsers.map(({ p: _p, ...u }) => u)));
    const z = roundZeroLog(test, train);
    expect(z.source).toBe('action shares');
    expect(Array.from(z.logged)).toEqual([0, 1, 1, 0, -1]);
    const c = roundZeroCheck(z, plan, 2);
    // shares over the 5 logged round-0 decisions of the training users: p(0) = 2/5, p(1) = 3/5
    const w0 = 1 / (2 / 5);
    const w1 = 1 / (3 / 5);
    expect(c.users).toBe(4);
    expect(c.agreement).toBe(0.5);
    expect(c.revenue.ips).toBeCloseTo((1 * w0 + 2 * w1) / 4, 12);
    expect(c.revenue.snips).toBeCloseTo((1 * w0 + 2 * w1) / (w0 + w1), 12);
    expect(c.cost.ips).toBeCloseTo((0.5 * w1) / 4, 12);
    // the SE of a mean of four per-user terms
    const terms = [1 * w0, 2 * w1, 0, 0];
    const m = terms.reduce((a, b) => a + b, 0) / 4;
    expect(c.revenue.ipsSe).toBeCloseTo(Math.sqrt(terms.reduce((a, b) => a + (b - m) ** 2, 0) / 3 / 4), 12);
  });

  it("with the log's own propensities", () => {
    const test = buildTrajectories(log(testUsers));
    const c = roundZeroCheck(roundZeroLog(test, train), plan, 2);
    expect(c.source).toBe('logged');
    expect(c.revenue.ips).toBeCloseTo((1 / 0.8 + 2 / 0.25) / 4, 6);
    expect(c.cost.ips).toBeCloseTo(0.5 / 0.25 / 4, 6);
  });

  it('refuses a plan of the wrong size, and a log with no logged round 0 (or no training user with one to take shares from)', () => {
    const test = buildTrajectories(log(testUsers));
    expect(() => roundZeroCheck(roundZeroLog(test, train), plan.subarray(2), 2)).toThrow(/plan/);
    const none = buildTrajectories(log([{ a: 0, r: 1, c: 0, filled: true }]));
    expect(() => roundZeroLog(none, train)).toThrow(/no test user has a logged round 0/);
    const untrained = buildTrajectories(log([{ a: 0, r: 0, c: 0, filled: true }]));
    expect(() => roundZeroLog(buildTrajectories(log(testUsers.map(({ p: _p, ...u }) => u))), untrained)).toThrow(/no training user has one/);
  });
});
