/**
 * Rounds by calendar (schema `round`): users who started late or skipped a round line up on
 * the campaign's rounds, empty rounds are filled as the control action and marked; several
 * rows of a user in one round are refused with the rows named, or combined as the schema says.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readLog, readTrajectories } from '../../src/data/ingest.js';
import { formatInspectReport, inspectLog } from '../../src/data/inspect.js';
import { parseDuration, parseSchema } from '../../src/data/schema.js';
import { DataError, SchemaError } from '../../src/errors.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/**
 * Hours since the campaign opened; rounds of 168 h from the earliest time (0):
 *   user 1: hours 0, 170, 400        -> rounds 0, 1, 2 (round 3 empty)
 *   user 2: hours 350, 510           -> rounds 2, 3 (started late: 0, 1 empty)
 *   user 3: hours 5, 345, 520        -> rounds 0, 2, 3 (skipped round 1)
 * File rows are deliberately out of order.
 */
const HEADER = 'uid,hour,x,offer,paid,spent';
const ROWS = [
  '2,510,2.5,1,1,9', // row 1
  '1,0,1.0,0,0,4', // row 2
  '3,345,3.5,0,0,1', // row 3
  '1,170,1.5,1,2,7', // row 4
  '3,5,3.0,1,0,0', // row 5
  '2,350,2.0,0,0,3', // row 6
  '1,400,1.25,1,2,8', // row 7
  '3,520,3.75,1,2,6', // row 8
];
const SCHEMA = { user: 'uid', time: 'hour', states: ['x'], actions: [{ column: 'offer', control: 0 }], cost: 'paid', reward: 'spent', round: { every: 168 } };

function csv(name: string, rows: string[]): string {
  return tmp.file(name, [HEADER, ...rows].join('\n') + '\n');
}

/** user, round -> [x, offer index, cost, reward, filled] */
const EXPECTED: Array<[number, number, number, number, number]>[] = [
  // user 1
  [
    [1.0, 0, 0, 4, 0],
    [1.5, 1, 2, 7, 0],
    [1.25, 1, 2, 8, 0],
    [1.25, 0, 0, 0, 1], // empty: control, state carried from round 2
  ],
  // user 2 (late)
  [
    [2.0, 0, 0, 0, 1], // empty before the first row: state carried back from round 2
    [2.0, 0, 0, 0, 1],
    [2.0, 0, 0, 3, 0],
    [2.5, 1, 1, 9, 0],
  ],
  // user 3 (skipped round 1)
  [
    [3.0, 1, 0, 0, 0],
    [3.0, 0, 0, 0, 1], // empty: state of round 0
    [3.5, 0, 0, 1, 0],
    [3.75, 1, 2, 6, 0],
  ],
];

describe('calendar rounds', () => {
  it('line up late starters and skipped rounds; empty rounds are the control action, reward 0, cost 0, marked filled', async () => {
    const file = csv('calendar.csv', ROWS);
    const { trajectories: t, report } = await readTrajectories(file, { schema: parseSchema(SCHEMA) });
    expect(t.userIds).toEqual(['1', '2', '3']);
    expect(t.rounds).toBe(4);
    expect(Array.from(t.lengths)).toEqual([4, 4, 4]);
    expect(Array.from(t.mask)).toEqual(new Array(12).fill(1));
    for (let i = 0; i < 3; i++) {
      for (let r = 0; r < 4; r++) {
        const c = i * 4 + r;
        const got = [t.states[c], t.actions[c], t.costs[c], t.rewards[c], t.filled![c]];
        expect(got, `user ${i + 1}, round ${r}`).toEqual(EXPECTED[i][r]);
      }
    }
    // RTG / CTG run over the filled rounds too (they add 0)
    expect(Array.from(t.rtg.subarray(4, 8))).toEqual([12, 12, 12, 9]);
    expect(Array.from(t.ctg.subarray(8, 12))).toEqual([2, 2, 2, 2]);
    expect(report.filledRounds).toBe(4);
    expect(report.combinedRows).toBe(0);
    expect(report.maxRounds).toBe(4);
    expect(report.calendar).toMatchObject({ every: 168, start: 0, startStated: false, temporal: false, rounds: 4 });
    expect(t.actionEncodings[0]).toMatchObject({ values: [0, 1], control: 0 });
  });

  it('a stated start shifts the rounds; a row before it is an error naming the row', async () => {
    const file = csv('calendar-start.csv', ROWS.filter((r) => !r.startsWith('3,5,') && !r.startsWith('1,0,')));
    // start 168: user 1's hour 170 is round 0, 400 is round 1; user 2's 350 round 1, 510 round 2; user 3's 345 round 1, 520 round 2
    const { trajectories: t } = await readTrajectories(file, { schema: parseSchema({ ...SCHEMA, round: { every: 168, start: 168 } }) });
    expect(t.rounds).toBe(3);
    expect(Array.from(t.filled!)).toEqual([0, 0, 1, 1, 0, 0, 1, 0, 0]);
    expect(Array.from(t.states)).toEqual([1.5, 1.25, 1.25, 2.0, 2.0, 2.5, 3.5, 3.5, 3.75]);
    const err = await readLog(csv('calendar-early.csv', ROWS), { schema: parseSchema({ ...SCHEMA, round: { every: 168, start: 168 } }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err).toMatchObject({ code: 'DATA_BEFORE_START', row: 2, column: 'hour' });
    expect((err as Error).message).toMatch(/before the campaign start 168/);
  });

  it('several rows of one user in one round are refused, naming every row', async () => {
    const file = csv('calendar-dup.csv', [...ROWS, '1,200,1.6,0,0,5', '1,300,1.7,1,1,2']);
    const err = await readLog(file, { schema: parseSchema(SCHEMA) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err).toMatchObject({ code: 'DATA_DUPLICATE_ROUND', file });
    // hours 170, 200 and 300 of user 1 are all round 1: file rows 4, 9 and 10
    expect((err as Error).message).toMatch(/user 1 has 3 rows in calendar round 1 \(row 4, row 9, row 10\)/);
    expect((err as Error).message).toMatch(/"combine"/);
    // --skip-bad-rows keeps the earliest and counts the others
    const { log, report } = await readLog(file, { schema: parseSchema(SCHEMA), skipBadRows: true });
    expect(report.skipped).toEqual({ DATA_DUPLICATE_ROUND: 2 });
    expect(log.reward[1]).toBe(7);
  });

  it('or combined as the schema says: reward and cost summed (or max, first), the action first or max, the earliest row’s state', async () => {
    const file = csv('calendar-combine.csv', [...ROWS, '1,200,1.6,0,0,5', '1,300,1.7,1,1,2', '2,400,9,1,4,1']);
    const sum = await readTrajectories(file, { schema: parseSchema({ ...SCHEMA, combine: { reward: 'sum', cost: 'sum', action: 'first' } }) });
    const t = sum.trajectories;
    expect(sum.report.combinedRows).toBe(3);
    // user 1 round 1: hours 170 (x 1.5, offer 1, paid 2, spent 7), 200 (0, 0, 5), 300 (1, 1, 2)
    expect([t.states[1], t.actions[1], t.costs[1], t.rewards[1], t.filled![1]]).toEqual([1.5, 1, 3, 14, 0]);
    // user 2 round 2: hours 350 (x 2, offer 0, paid 0, spent 3) and 400 (9, 1, 4, 1): first action is the control
    expect([t.states[6], t.actions[6], t.costs[6], t.rewards[6]]).toEqual([2, 0, 4, 4]);
    // so the control now costs in one of its 3 rounds (user 1 round 0, user 2 round 2, user 3
    // round 2): a warning, since a budget kept by giving the control can then pass B
    expect(sum.report.warnings).toEqual([expect.stringMatching(/^the control action \(offer=0\) costs something in 1 of its 3 rows \(up to 4\).*"action": "max"/)]);
    const maxRead = await readTrajectories(file, { schema: parseSchema({ ...SCHEMA, combine: { reward: 'max', cost: 'first', action: 'max' } }) });
    expect(maxRead.report.warnings).toEqual([]);
    const max = maxRead.trajectories;
    expect([max.states[1], max.actions[1], max.costs[1], max.rewards[1]]).toEqual([1.5, 1, 2, 7]);
    expect([max.states[6], max.actions[6], max.costs[6], max.rewards[6]]).toEqual([2, 1, 0, 3]);
    // other cells are as without combining
    expect([max.states[12 - 1], max.rewards[11]]).toEqual([3.75, 6]);
    // combine without calendar rounds merges rows at the same time
    const same = tmp.file('same-time.csv', 'user_id,time,x,action,cost,reward\n1,0,1,0,0,1\n1,0,2,1,1,2\n1,1,3,1,0,4\n');
    const plain = { user: 'user_id', time: 'time', states: ['x'], cost: 'cost', reward: 'reward', actions: [{ column: 'action', control: 0 }] };
    await expect(readLog(same, { schema: parseSchema(plain) })).rejects.toMatchObject({ code: 'DATA_DUPLICATE_TIME', row: 2 });
    const merged = await readTrajectories(same, { schema: parseSchema({ ...plain, combine: { action: 'max' } }) });
    expect(merged.trajectories.rounds).toBe(2);
    expect(Array.from(merged.trajectories.rewards)).toEqual([3, 4]);
    expect(Array.from(merged.trajectories.actions)).toEqual([1, 1]);
    expect(merged.trajectories.filled).toBeUndefined();
  });

  it('with combine, a bad value after a merged round is still refused, not dropped with its row', async () => {
    // rows 9 and 10 are a round merged by `combine`; row 11 holds "NA" as its state. Before the
    // fix the earlier duplicate hid the bad value and the row vanished from the trajectories.
    const file = csv('calendar-combine-bad.csv', [...ROWS, '1,200,1.6,0,0,5', '1,300,1.7,1,1,2', '3,600,NA,1,0,1']);
    const schema = parseSchema({ ...SCHEMA, combine: { reward: 'sum', cost: 'sum', action: 'first' } });
    const err = await readLog(file, { schema }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err).toMatchObject({ code: 'DATA_WRONG_TYPE', file, row: 11, column: 'x', value: 'NA' });
    // the merged rows are not bad values: none are counted beside the one
    expect((err as Error).message).not.toMatch(/more bad value/);
    const skipped = await readLog(file, { schema, skipBadRows: true });
    expect(skipped.report.skipped).toEqual({ 'DATA_WRONG_TYPE (x)': 1 });
    expect(skipped.report.combinedRows).toBe(2);
  });

  it('timestamps: every in hours or as a duration, a stated start as a date', async () => {
    const lines = ['user,at,x,offer,paid,spent'];
    // week 0 starts 2024-01-01; user b starts in week 2; user a skips week 1
    lines.push('a,2024-01-01 00:00:00,1,1,1,5', 'a,2024-01-16 09:00:00,2,0,0,1', 'b,2024-01-15 00:00:00,3,1,0,2', 'b,2024-01-22 12:30:00,4,0,0,0');
    const file = tmp.file('stamps.csv', lines.join('\n') + '\n');
    const base = { user: 'user', time: 'at', states: ['x'], actions: [{ column: 'offer', control: 0 }], cost: 'paid', reward: 'spent' };
    const hours = await readTrajectories(file, { schema: parseSchema({ ...base, round: { every: 168 } }) });
    const days = await readTrajectories(file, { schema: parseSchema({ ...base, round: { every: '7 days', start: '2024-01-01' } }) });
    for (const { trajectories: t } of [hours, days]) {
      expect(t.rounds).toBe(4);
      expect(Array.from(t.filled!)).toEqual([0, 1, 0, 1, 1, 1, 0, 0]);
      expect(Array.from(t.states)).toEqual([1, 1, 2, 2, 3, 3, 3, 4]);
      expect(Array.from(t.actions)).toEqual([1, 0, 0, 0, 0, 0, 1, 0]);
    }
    expect(hours.report.calendar).toMatchObject({ every: 604800, temporal: true, startText: '2024-01-01T00:00:00.000Z' });
    expect(days.report.calendar).toMatchObject({ every: 604800, startStated: true, startText: '2024-01-01' });
    // saco data inspect reads the text timestamps and the rounds as training does: no problem,
    // rounds with a row per user a: 2 (weeks 0, 2), b: 2 (weeks 2, 3); with a second row in
    // a's week 2 (hours apart, so no two rows share a time) one duplicate of a calendar round
    const twice = tmp.file('stamps-twice.csv', [...lines, 'a,2024-01-17 10:00:00,5,1,1,1'].join('\n') + '\n');
    const inspected = await inspectLog(twice, parseSchema({ ...base, round: { every: '7 days', start: '2024-01-01' }, combine: { reward: 'sum' } }));
    expect(inspected.columns.find((c) => c.column === 'at')).toMatchObject({ type: 'timestamp (text)', nonNumeric: 0 });
    expect(inspected.calendar).toMatchObject({ every: 604800, rounds: 4, startText: '2024-01-01' });
    expect(inspected.roundsPerUser.histogram).toEqual([{ rounds: 2, users: 2 }]);
    expect(inspected.duplicateTimes).toBe(1);
    const text = formatInspectReport(inspected);
    expect(text).toContain('1 row(s) share a (user, calendar round) with an earlier one: merged');
    expect(text).toContain('no problems found');
    const merged = await readTrajectories(twice, { schema: parseSchema({ ...base, round: { every: '7 days', start: '2024-01-01' }, combine: { reward: 'sum' } }) });
    expect(merged.report.combinedRows).toBe(inspected.duplicateTimes);
    // a duration on a numeric time column, a date start on numbers, no time column: schema errors naming the field
    const numeric = csv('calendar-num.csv', ROWS);
    await expect(readLog(numeric, { schema: parseSchema({ ...SCHEMA, round: { every: '7 days' } }) })).rejects.toMatchObject({ field: 'round.every' });
    await expect(readLog(numeric, { schema: parseSchema({ ...SCHEMA, round: { every: 168, start: '2024-01-01' } }) })).rejects.toMatchObject({ field: 'round.start' });
    await expect(readLog(numeric, { schema: parseSchema({ ...SCHEMA, time: null }) })).rejects.toMatchObject({ field: 'round' });
    await expect(readLog(numeric, { schema: parseSchema({ ...SCHEMA, round: { every: 0.01 } }) })).rejects.toMatchObject({ field: 'round.every', message: /make the rounds longer/ });
  });

  it('schema shapes are checked', () => {
    expect(parseDuration('7 days')).toBe(604800);
    expect(parseDuration('12h')).toBe(43200);
    expect(parseDuration('1.5 hours')).toBe(5400);
    expect(parseDuration('90 minutes')).toBe(5400);
    expect(parseDuration('2 ms')).toBeUndefined();
    expect(parseDuration('soon')).toBeUndefined();
    const bad = (round: unknown, field: string) => {
      expect(() => parseSchema({ ...SCHEMA, round }), JSON.stringify(round)).toThrow(SchemaError);
      try {
        parseSchema({ ...SCHEMA, round });
      } catch (e) {
        expect((e as SchemaError).field).toBe(field);
      }
    };
    bad({ every: 0 }, 'schema.round.every');
    bad({ every: 'a fortnight' }, 'schema.round.every');
    bad({}, 'schema.round.every');
    bad({ every: 168, begin: 0 }, 'schema.round.begin');
    bad({ every: 168, start: '' }, 'schema.round.start');
    bad(7, 'schema.round');
    expect(() => parseSchema({ ...SCHEMA, combine: { reward: 'mean' } })).toThrow(/combine.reward: must be one of "sum", "max", "first"/);
    expect(() => parseSchema({ ...SCHEMA, combine: { action: 'sum' } })).toThrow(/combine.action/);
    expect(() => parseSchema({ ...SCHEMA, combine: { state: 'first' } })).toThrow(/combine.state: unknown field/);
  });
});
