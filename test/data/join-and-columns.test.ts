/**
 * Schemas that join other files onto a log and compute named columns first (`"join"`,
 * `"columns"`), so a campaign log whose dates live in a campaign table needs no preprocessing:
 * rounds = campaigns ranked by start date, an action column that is 1 on every logged row and
 * control in the filled rounds, demographics joined left with missing values filled.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLog, readTrajectories } from '../../src/data/ingest.js';
import { loadSchemaFile, parseSchema } from '../../src/data/schema.js';
import { SchemaError } from '../../src/errors.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** A coupon log (one row per coupon given), its campaign table (dates in two formats) and a partial customer table. */
function campaignFiles(dir: string): { log: string } {
  mkdirSync(dir, { recursive: true });
  // campaign 7 starts first, 3 second, 5 and 9 on the same day last
  writeFileSync(path.join(dir, 'campaigns.csv'), 'campaign_id,start_date\n3,21/10/12\n5,7/1/2013\n7,12/8/2012\n9,07/01/13\n');
  writeFileSync(path.join(dir, 'customers.csv'), 'customer_id,income\n1,4\n3,7\n');
  const rows = ['row,campaign_id,customer_id,redeemed', '1,3,1,0', '2,3,1,1', '3,7,2,0', '4,5,1,0', '5,9,3,1', '6,7,3,0'];
  const log = path.join(dir, 'coupons.csv');
  writeFileSync(log, rows.join('\n') + '\n');
  return { log };
}

const schemaJson = {
  join: [
    { file: 'campaigns.csv', on: 'campaign_id', how: 'inner' },
    { file: 'customers.csv', on: 'customer_id' },
  ],
  columns: {
    start: { sql: "CASE WHEN length(split_part(start_date, '/', 3)) = 2 THEN strptime(start_date, '%d/%m/%y') ELSE strptime(start_date, '%d/%m/%Y') END" },
    campaign_round: { sql: 'dense_rank() OVER (ORDER BY start) - 1' },
    coupon: { sql: '1' },
    income_or_zero: { sql: 'coalesce(income, 0)' },
  },
  user: 'customer_id',
  time: 'campaign_round',
  round: { every: 1, start: 0 },
  states: ['income_or_zero'],
  actions: [{ column: 'coupon', values: [0, 1], control: 0 }],
  combine: { reward: 'sum', cost: 'sum', action: 'max' },
  reward: 'redeemed',
  cost: { sql: '0.5 + 2 * redeemed' },
};

describe('joined files and named columns', () => {
  it('rank campaigns by start date into rounds, fill the rounds without a row as control, join demographics left', async () => {
    const { log } = campaignFiles(tmp.file('campaigns'));
    const { trajectories: t, report } = await readTrajectories(log, { schema: parseSchema(schemaJson) });
    // rounds: campaign 7 (2012-08-12) → 0, 3 (2012-10-21) → 1, 5 and 9 (2013-01-07) → 2
    expect(t.rounds).toBe(3);
    expect(t.users).toBe(3);
    const byUser = new Map(t.userIds.map((id, i) => [String(id), i]));
    const at = (user: string, r: number) => (byUser.get(user) as number) * t.rounds + r;
    // user 1: two coupons in campaign 3 (round 1, one redeemed), one in campaign 5 (round 2)
    expect([0, 1, 2].map((r) => t.actions[at('1', r)])).toEqual([0, 1, 1]);
    expect([0, 1, 2].map((r) => t.rewards[at('1', r)])).toEqual([0, 1, 0]);
    expect(t.costs[at('1', 1)]).toBeCloseTo(0.5 + 0.5 + 2, 6);
    expect(t.costs[at('1', 0)]).toBe(0);
    // user 2: only campaign 7 (round 0); no demographics: income filled with 0
    expect([0, 1, 2].map((r) => t.actions[at('2', r)])).toEqual([1, 0, 0]);
    expect(t.states[at('2', 0) * t.stateDim]).toBe(0);
    // user 3: campaigns 7 (round 0) and 9 (round 2, redeemed); income 7 joined
    expect([0, 1, 2].map((r) => t.actions[at('3', r)])).toEqual([1, 0, 1]);
    expect(t.rewards[at('3', 2)]).toBe(1);
    expect(t.states[at('3', 1) * t.stateDim]).toBe(7);
    expect(report.filledRounds).toBe(4);
  });

  it("finds a joined file beside the log, else beside the schema file; says where it looked", async () => {
    const dir = tmp.file('lookup');
    const { log } = campaignFiles(dir);
    // the same rows in another folder, without the joined files beside them
    const elsewhere = tmp.file('lookup-held');
    mkdirSync(elsewhere, { recursive: true });
    const held = path.join(elsewhere, 'held.csv');
    writeFileSync(held, (await import('node:fs')).readFileSync(log));
    await expect(readLog(held, { schema: parseSchema(schemaJson) })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[0].file', message: expect.stringContaining(elsewhere) });
    const schemaFile = path.join(dir, 'schema.json');
    writeFileSync(schemaFile, JSON.stringify(schemaJson));
    const fromFile = await readTrajectories(held, { schema: loadSchemaFile(schemaFile) });
    const direct = await readTrajectories(log, { schema: parseSchema(schemaJson) });
    expect(Array.from(fromFile.trajectories.actions)).toEqual(Array.from(direct.trajectories.actions));
  });

  it('a joined file that lists a key twice, lacks the key, or repeats a log column is a SchemaError naming the join', async () => {
    const dir = tmp.file('bad-joins');
    const { log } = campaignFiles(dir);
    writeFileSync(path.join(dir, 'twice.csv'), 'campaign_id,start_date\n3,21/10/12\n3,22/10/12\n');
    writeFileSync(path.join(dir, 'nokey.csv'), 'id,start_date\n3,21/10/12\n');
    writeFileSync(path.join(dir, 'clash.csv'), 'campaign_id,redeemed\n3,1\n');
    const read = (join: unknown) => readLog(log, { schema: parseSchema({ ...schemaJson, join: [join], columns: { coupon: { sql: '1' } }, time: null, round: undefined, combine: undefined, states: ['row'] }) });
    await expect(read({ file: 'twice.csv', on: 'campaign_id' })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[0].on', message: expect.stringContaining('campaign_id = \'3\'') });
    await expect(read({ file: 'nokey.csv', on: 'campaign_id' })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[0].on' });
    await expect(read({ file: 'clash.csv', on: 'campaign_id' })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[0].file', message: expect.stringContaining('"redeemed"') });
    await expect(read({ file: 'absent.csv', on: 'campaign_id' })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[0].file' });
  });

  it('a bad named column is a SchemaError naming it; malformed join and columns fields are refused', async () => {
    const { log } = campaignFiles(tmp.file('bad-columns'));
    await expect(readLog(log, { schema: parseSchema({ ...schemaJson, columns: { ...schemaJson.columns, income_or_zero: { sql: 'coalesce(no_such, 0)' } } }) })).rejects.toMatchObject({
      code: 'SCHEMA_BAD_SQL',
      field: 'columns.income_or_zero',
    });
    expect(() => parseSchema({ ...schemaJson, join: { file: 'x.csv', on: 'id' } })).toThrow(SchemaError);
    expect(() => parseSchema({ ...schemaJson, join: [{ file: 'x.csv', on: 'id', how: 'outer' }] })).toThrow(/left" or "inner/);
    expect(() => parseSchema({ ...schemaJson, columns: { x: 'coalesce(a, 0)' } })).toThrow(/columns\.x/);
    expect(() => parseSchema({ ...schemaJson, columns: { __x: { sql: '1' } } })).toThrow(SchemaError);
  });
  it('an event file aggregated per (customer, campaign) key, and only the listed columns of a table that shares a column name', async () => {
    const dir = tmp.file('aggregate');
    campaignFiles(dir);
    // the redemption events: customer 1 redeemed twice in campaign 3, once in 5; customer 3 once in 9 (day as text numbers)
    writeFileSync(path.join(dir, 'redemptions.csv'), 'customer_id,campaign_id,day\n1,3,9\n1,3,12\n1,5,40\n3,9,41\n');
    // a campaign table with a column the log also has ("redeemed"): only start_date is taken
    writeFileSync(path.join(dir, 'campaigns2.csv'), 'campaign_id,start_date,redeemed\n3,21/10/12,x\n5,7/1/2013,x\n7,12/8/2012,x\n9,07/01/13,x\n');
    const rows = ['row,campaign_id,customer_id,redeemed', '1,3,1,0', '2,7,2,0', '3,5,1,0', '4,9,3,1', '5,7,3,0'];
    const log = path.join(dir, 'mailed.csv');
    writeFileSync(log, rows.join('\n') + '\n');
    const schema = parseSchema({
      ...schemaJson,
      join: [
        { file: 'campaigns2.csv', on: 'campaign_id', how: 'inner', columns: ['start_date'] },
        { file: 'redemptions.csv', on: ['customer_id', 'campaign_id'], aggregate: { redemptions: 'count(*)', last_day: 'max(day)' } },
        { file: 'customers.csv', on: 'customer_id' },
      ],
      reward: { sql: 'coalesce(redemptions, 0)' },
      cost: { sql: '0.5 + 2 * reward' },
    });
    const { trajectories: t } = await readTrajectories(log, { schema });
    const byUser = new Map(t.userIds.map((id, i) => [String(id), i]));
    const at = (user: string, r: number) => (byUser.get(user) as number) * t.rounds + r;
    // rounds as before: campaign 7 → 0, 3 → 1, 5 and 9 → 2; rewards = redemption events of the pair
    expect([0, 1, 2].map((r) => t.rewards[at('1', r)])).toEqual([0, 2, 1]);
    expect([0, 1, 2].map((r) => t.rewards[at('2', r)])).toEqual([0, 0, 0]);
    expect([0, 1, 2].map((r) => t.rewards[at('3', r)])).toEqual([0, 0, 1]);
    expect(t.costs[at('1', 1)]).toBeCloseTo(0.5 + 2 * 2, 6);
    // max(day) compares numbers (12 > 9), not text ("9" > "12"); a pair without events: none
    const withDay = parseSchema({ ...schemaJson, join: schema.join, states: ['last_day'], columns: { ...schemaJson.columns, last_day: { sql: 'coalesce(last_day, -1)' } } });
    const { trajectories: d } = await readTrajectories(log, { schema: withDay });
    expect(d.states[at('1', 1)]).toBe(12);
    expect(d.states[at('1', 2)]).toBe(40);
    expect(d.states[at('2', 0)]).toBe(-1);
  });

  it('an aggregate join without a key column, a listed column the file lacks, a bad aggregate, a name that differs only in case: SchemaErrors naming the field', async () => {
    const dir = tmp.file('aggregate-bad');
    const { log } = campaignFiles(dir);
    writeFileSync(path.join(dir, 'redemptions.csv'), 'customer_id,campaign_id,day\n1,3,10\n1,3,12\n');
    const read = (join: unknown, columns: object = schemaJson.columns) => readLog(log, { schema: parseSchema({ ...schemaJson, join: [schemaJson.join[0], join], columns }) });
    await expect(read({ file: 'redemptions.csv', on: ['customer_id', 'campaign'], aggregate: { n: 'count(*)' } })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[1].on', message: expect.stringContaining('"campaign"') });
    await expect(read({ file: 'customers.csv', on: 'customer_id', columns: ['salary'] })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[1].columns', message: expect.stringContaining('"salary"') });
    await expect(read({ file: 'redemptions.csv', on: ['customer_id', 'campaign_id'], aggregate: { n: 'no_such_fn(day)' } })).rejects.toMatchObject({ code: 'SCHEMA_BAD_SQL', field: 'join[1].aggregate.n' });
    // without aggregate, the events file has a key twice: the message points to "aggregate"
    await expect(read({ file: 'redemptions.csv', on: ['customer_id', 'campaign_id'] })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[1].on', message: expect.stringMatching(/customer_id = '1', campaign_id = '3'.*aggregate/) });
    // an aggregate named like a log column in another case (DuckDB's names ignore case)
    await expect(read({ file: 'redemptions.csv', on: ['customer_id', 'campaign_id'], aggregate: { REDEEMED: 'count(*)' } })).rejects.toMatchObject({ code: 'SCHEMA_BAD_JOIN', field: 'join[1].aggregate' });
    await expect(read({ file: 'customers.csv', on: 'customer_id' }, { ...schemaJson.columns, Coupon_ID: { sql: '1' }, CAMPAIGN_ID: { sql: '2' } })).rejects.toMatchObject({ code: 'SCHEMA_INVALID', field: 'columns.CAMPAIGN_ID', message: expect.stringContaining('"campaign_id"') });
    expect(() => parseSchema({ ...schemaJson, join: [{ file: 'x.csv', on: 'id', columns: ['a'], aggregate: { n: 'count(*)' } }] })).toThrow(/cannot both/);
    expect(() => parseSchema({ ...schemaJson, join: [{ file: 'x.csv', on: ['id', 'id'] }] })).toThrow(/twice/);
    expect(() => parseSchema({ ...schemaJson, join: [{ file: 'x.csv', on: 'id', aggregate: { n: 'count(*); DROP TABLE raw' } }] })).toThrow(/one SQL expression/);
    expect(() => parseSchema({ ...schemaJson, join: [{ file: 'x.csv', on: 'id', aggregate: { '': 'count(*)' } }] })).toThrow(/aggregate: names a column ""/);
  });
});
