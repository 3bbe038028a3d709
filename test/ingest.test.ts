import { afterAll, describe, expect, it } from 'vitest';
import { readLog, readTrajectories } from '../src/data/ingest.js';
import { formatInspectReport, inspectLog } from '../src/data/inspect.js';
import { syLogToInteractionLog } from '../src/data/log.js';
import { DEFAULT_SCHEMA } from '../src/data/schema.js';
import { SY_BUNDLE_DIMS, type SyOptions } from '../src/data/synth.js';
import { buildTrajectories, type Trajectories } from '../src/data/trajectories.js';
import { writeLog } from '../src/data/write.js';
import { generateSy } from '../src/native/index.js';
import { firstMismatch, tempDir } from './helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function expectSameTrajectories(a: Trajectories, b: Trajectories): void {
  expect(a.users).toBe(b.users);
  expect(a.rounds).toBe(b.rounds);
  expect(a.stateNames).toEqual(b.stateNames);
  // the same values and control; where the control came from (controlStated) is the reading's own
  const encodings = (t: Trajectories) => t.actionEncodings.map(({ column, values, control }) => ({ column, values, control }));
  expect(encodings(a)).toEqual(encodings(b));
  expect(a.userIds).toEqual(b.userIds);
  for (const key of ['states', 'actions', 'rewards', 'costs', 'rtg', 'ctg', 'mask', 'lengths'] as const) {
    expect(firstMismatch(a[key], b[key]), key).toBeNull();
  }
}

describe('round trip: SY -> file -> DuckDB -> trajectories', () => {
  const cases: Array<[string, SyOptions]> = [
    ['sy.csv', { users: 1500, rounds: 10, seed: 4 }],
    ['sy.csv.gz', { users: 700, rounds: 5, seed: 5, sigmaObs: 0.3 }],
    ['sy.parquet', { users: 1500, rounds: 10, seed: 4 }],
    ['bundle.parquet', { users: 800, rounds: 4, seed: 6, actionDims: SY_BUNDLE_DIMS }],
    ['bundle.csv', { users: 800, rounds: 4, seed: 6, actionDims: SY_BUNDLE_DIMS }],
  ];
  for (const [name, options] of cases) {
    it(`${name} gives the same trajectories as the in-memory log`, async () => {
      const sy = await generateSy(options);
      const expected = buildTrajectories(syLogToInteractionLog(sy));
      const file = tmp.file(name);
      await writeLog(syLogToInteractionLog(sy), file);
      const { trajectories, report } = await readTrajectories(file);
      expectSameTrajectories(trajectories, expected);
      expect(report.rowsRead).toBe(report.rowsUsed);
      expect(report.skipped).toEqual({});
    });
  }

  it('rows given out of order in the file are ordered by user and time', async () => {
    const sy = await generateSy({ users: 50, rounds: 3, seed: 2 });
    const log = syLogToInteractionLog(sy);
    const expected = buildTrajectories(log);
    const file = tmp.file('sy-shuffled.parquet');
    await writeLog(log, file);
    const csv = tmp.file('sy-shuffled.csv');
    await writeLog(log, csv);
    const { readFileSync, writeFileSync } = await import('node:fs');
    const [header, ...lines] = readFileSync(csv, 'utf8').trimEnd().split('\n');
    lines.reverse();
    writeFileSync(csv, [header, ...lines].join('\n') + '\n');
    const { trajectories } = await readTrajectories(csv);
    expectSameTrajectories(trajectories, expected);
  });
});

describe('schemas', () => {
  it('map renamed columns, encode categories, order by timestamp, use a composite user key', async () => {
    const file = tmp.file(
      'shop.csv',
      [
        'customer,store,visited_at,region,spend_30d,offer,subsidy,revenue,note',
        'c1,s1,2024-03-02 10:00:00,north,10.5,big,3,12,x',
        'c1,s1,2024-03-01 09:00:00,south,8,none,0,0,y',
        'c2,s1,2024-03-01 12:00:00,north,1,small,1,4,z',
        'c1,s2,2024-03-05 08:00:00,north,2,none,0,5,w',
      ].join('\n'),
    );
    const { log } = await readLog(file, {
      schema: {
        user: ['customer', 'store'],
        time: 'visited_at',
        categorical: { region: 'onehot' },
        actions: [{ column: 'offer', values: ['none', 'small', 'big'] }],
        cost: 'subsidy',
        reward: 'revenue',
        exclude: ['note'],
      },
    });
    expect(log.userIds).toEqual(['c1|s1', 'c1|s2', 'c2|s1']);
    expect(log.stateNames).toEqual(['region=north', 'region=south', 'spend_30d']);
    expect(log.categorical).toEqual([{ column: 'region', kind: 'onehot', levels: ['north', 'south'] }]);
    const t = buildTrajectories(log);
    expect(t.rounds).toBe(2);
    // c1|s1: first the 03-01 row (south, none), then 03-02 (north, big)
    expect(Array.from(t.states.subarray(0, 6))).toEqual([0, 1, 8, 1, 0, 10.5]);
    expect(Array.from(t.actions.subarray(0, 2))).toEqual([0, 2]);
    expect(Array.from(t.rtg.subarray(0, 2))).toEqual([12, 12]);
    expect(Array.from(t.ctg.subarray(0, 2))).toEqual([3, 3]);
  });

  it('index-encodes a category and keeps the levels', async () => {
    const file = tmp.file('idx.csv', 'user_id,time,tier,action,cost,reward\n1,0,gold,0,0,1\n1,1,bronze,1,1,2\n2,0,silver,1,0,0\n');
    const { log } = await readLog(file, { schema: { user: 'user_id', time: 'time', categorical: { tier: 'index' }, cost: 'cost', reward: 'reward' } });
    expect(log.categorical[0]).toEqual({ column: 'tier', kind: 'index', levels: ['bronze', 'gold', 'silver'] });
    expect(Array.from(log.states)).toEqual([1, 0, 2]);
  });

  it('without a schema, text state columns are one-hot encoded and reported', async () => {
    const file = tmp.file('text.csv', 'user_id,time,channel,x,action,cost,reward\n1,0,web,0.5,0,0,1\n1,1,app,0.25,1,1,2\n');
    const { log, report } = await readLog(file);
    expect(report.inferredCategorical).toEqual(['channel']);
    expect(log.stateNames).toEqual(['channel=app', 'channel=web', 'x']);
  });

  it('without declared values, near-duplicate action values are kept apart but warned about (issue 11 item 11)', async () => {
    const file = tmp.file('near.csv', 'user_id,time,x,action,cost,reward\n1,0,1,5,1,1\n2,0,1,5.0000001,1,1\n3,0,1,0,0,0\n4,0,1,7,1,1\n');
    const { log, report } = await readLog(file);
    expect(log.actionEncodings[0].values).toEqual([0, 5, 5.0000001, 7]);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/action column "action": values 5 and 5.0000001 are within 1e-6/);
    const apart = tmp.file('apart.csv', 'user_id,time,x,action,cost,reward\n1,0,1,5,1,1\n2,0,1,5.001,1,1\n3,0,1,0,0,0\n');
    expect((await readLog(apart)).report.warnings).toEqual([]);
    // declared values are the user's word: no warning
    const declared = await readLog(file, { schema: { ...DEFAULT_SCHEMA, actions: [{ column: 'action', values: [0, 5, 5.0000001, 7] }] } });
    expect(declared.report.warnings).toEqual([]);
  });

  it('data inspect counts rounds, the action mix and problems without failing', async () => {
    const file = tmp.file('inspect.csv', 'user_id,time,x,action,cost,reward\n1,0,0.5,0,0,1\n1,1,,2,2,5\n2,0,nan,2,-1,0\n2,0,1,0,0,0\n3,0,1,0,0,0\n');
    const r = await inspectLog(file);
    expect(r.rows).toBe(5);
    expect(r.users).toBe(3);
    expect(r.roundsPerUser).toMatchObject({ min: 1, max: 2 });
    expect(r.actions[0].mix.map((m) => [m.value, m.rows])).toEqual([['0', 3], ['2', 2]]);
    expect(r.columns.find((c) => c.column === 'x')).toMatchObject({ missing: 1, nonFinite: 1 });
    expect(r.negativeCost).toBe(1);
    expect(r.duplicateTimes).toBe(1);
    expect(formatInspectReport(r)).toMatch(/problems: .*1 duplicate \(user, time\) row/);
    // a schema that says how to combine them: merged, not a problem
    const combined = await inspectLog(file, { ...DEFAULT_SCHEMA, combine: { reward: 'sum' } });
    expect(combined).toMatchObject({ duplicateTimes: 1, combinesDuplicates: true });
    expect(formatInspectReport(combined)).toMatch(/1 row\(s\) share a \(user, time\) with an earlier one: merged/);
    expect(formatInspectReport(combined)).not.toMatch(/duplicate \(user, time\)/);
  });
});
