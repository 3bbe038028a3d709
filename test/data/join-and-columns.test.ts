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
});
