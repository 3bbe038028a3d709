/**
 * Schemas for real logs: the no-treatment (control) action, named or found as the one value
 * that never costs anything; reward and cost derived by SQL expressions evaluated by DuckDB;
 * and λ's range that no longer depends on the order values are listed in.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { readLog, readTrajectories } from '../../src/data/ingest.js';
import { inspectLog } from '../../src/data/inspect.js';
import { parseSchema } from '../../src/data/schema.js';
import { SchemaError } from '../../src/errors.js';
import { estimateLambdaMax } from '../../src/model/stats.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** A small offer log: offer 0 is no offer; purchase and completion flags; amounts per row. */
function offerLog(name: string): string {
  const lines = ['user,week,age,offer,purchase,completed'];
  for (let u = 0; u < 40; u++) {
    for (let w = 0; w < 3; w++) {
      const offer = (u + w) % 3; // 0, 1 or 2
      const purchase = (u * 7 + w * 3) % 4 === 0 ? 1 : (u + offer) % 2;
      const completed = offer > 0 && purchase === 1 && (u + w) % 2 === 0 ? 1 : 0;
      lines.push(`${u},${w},${20 + (u % 30)},${offer},${purchase},${completed}`);
    }
  }
  const file = tmp.file(name);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const base = { user: 'user', time: 'week', states: ['age'], actions: [{ column: 'offer' }] };

describe('derived reward and cost', () => {
  it('are evaluated by DuckDB; cost may use the derived reward', async () => {
    const file = offerLog('offers.csv');
    const schema = parseSchema({ ...base, reward: { sql: '10 * purchase' }, cost: { sql: 'reward * completed * 0.2' } });
    const { log } = await readLog(file, { schema });
    expect(log.rows).toBe(120);
    // recompute from the file, row by row (the log is ordered by user then week, as the file)
    const rows = (await import('node:fs')).readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    rows.forEach(([, , , , purchase, completed], r) => {
      expect(log.reward[r]).toBe(10 * purchase);
      expect(log.cost[r]).toBeCloseTo(10 * purchase * completed * 0.2, 12);
    });
    const report = await inspectLog(file, schema);
    expect(report.columns.find((c) => c.column === 'reward')?.role).toBe('reward');
  });

  it('the columns they are computed from are not default states (they hold the round’s outcome), through named columns too; listed states keep them', async () => {
    const file = offerLog('inputs.csv');
    const { states: _listed, ...unlisted } = base;
    // reward from purchase; cost from the derived reward and a named column computed from completed
    const schema = parseSchema({ ...unlisted, columns: { done: { sql: 'completed * 1.0' } }, reward: { sql: '10 * "purchase"' }, cost: { sql: 'reward * done * 0.2' } });
    const { log, report } = await readLog(file, { schema });
    expect(log.stateNames).toEqual(['age']);
    expect(report.outcomeInputs).toEqual(['purchase', 'completed', 'done']);
    const inspected = await inspectLog(file, schema);
    expect(inspected.columns.filter((c) => c.role === 'outcome input (not a state)').map((c) => c.column)).toEqual(['purchase', 'completed', 'done']);
    // a reward column that "columns" computes: what it reads is an outcome input too
    const viaNamed = await readLog(file, { schema: parseSchema({ ...unlisted, columns: { rev: { sql: '10 * purchase' } }, reward: 'rev', cost: 'completed' }) });
    expect(viaNamed.log.stateNames).toEqual(['age']);
    expect(viaNamed.report.outcomeInputs).toEqual(['purchase']);
    // a plain reward column: the other columns stay states, as before
    const plain = await readLog(file, { schema: parseSchema({ ...unlisted, reward: 'purchase', cost: 'completed' }) });
    expect(plain.log.stateNames).toEqual(['age']);
    expect(plain.report.outcomeInputs).toEqual([]);
    // states listed by the schema are taken as listed, even a column the reward reads
    const listed = await readLog(file, { schema: parseSchema({ ...base, states: ['age', 'completed'], reward: { sql: '10 * purchase' }, cost: { sql: '0.2 * completed' } }) });
    expect(listed.log.stateNames).toEqual(['age', 'completed']);
    expect(listed.report.outcomeInputs).toEqual([]);
  });

  it('a bad expression is a SchemaError naming the field', async () => {
    const file = offerLog('bad-sql.csv');
    await expect(readLog(file, { schema: parseSchema({ ...base, reward: { sql: '10 * no_such_column' }, cost: 'completed' }) })).rejects.toMatchObject({
      code: 'SCHEMA_BAD_SQL',
      field: 'reward.sql',
    });
    expect(() => parseSchema({ ...base, reward: { sql: '1; DROP TABLE raw' }, cost: 'completed' })).toThrow(SchemaError);
  });
});

describe('the control action', () => {
  it('is the one value that never costs anything, wherever it is listed', async () => {
    const file = offerLog('control.csv');
    for (const values of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
      const schema = parseSchema({ ...base, actions: [{ column: 'offer', values }], reward: { sql: '10 * purchase' }, cost: { sql: 'reward * completed * 0.2' } });
      const { trajectories } = await readTrajectories(file, { schema });
      const enc = trajectories.actionEncodings[0];
      expect(enc.values[enc.control as number]).toBe(0);
      expect(enc.controlStated).toBe(false);
    }
  });

  it("λ's range does not depend on the order the values are listed in", async () => {
    const file = offerLog('order.csv');
    const lambdaMax = async (values: number[]) => {
      const schema = parseSchema({ ...base, actions: [{ column: 'offer', values }], reward: { sql: '10 * purchase' }, cost: { sql: 'reward * completed * 0.2' } });
      return estimateLambdaMax((await readTrajectories(file, { schema })).trajectories);
    };
    const a = await lambdaMax([0, 1, 2]);
    expect(await lambdaMax([2, 1, 0])).toBe(a);
    expect(await lambdaMax([1, 0, 2])).toBe(a);
  });

  it('can be named; two free values or none are an error that asks for it', async () => {
    const file = offerLog('named.csv');
    const named = parseSchema({ ...base, actions: [{ column: 'offer', control: 1 }], reward: 'purchase', cost: { perAction: { '0': 0, '1': 0, '2': 0.5 } } });
    const { trajectories } = await readTrajectories(file, { schema: named });
    expect(trajectories.actionEncodings[0].control).toBe(1);
    expect(trajectories.actionEncodings[0].controlStated).toBe(true);
    const twoFree = parseSchema({ ...base, reward: 'purchase', cost: { perAction: { '0': 0, '1': 0, '2': 0.5 } } });
    await expect(readLog(file, { schema: twoFree })).rejects.toThrow(/values 0, 1 never cost anything.*"control"/);
    const noneFree = parseSchema({ ...base, reward: 'purchase', cost: { perAction: { '0': 0.1, '1': 0.2, '2': 0.5 } } });
    await expect(readLog(file, { schema: noneFree })).rejects.toMatchObject({ code: 'SCHEMA_NO_CONTROL' });
    expect(() => parseSchema({ ...base, actions: [{ column: 'offer', values: [0, 1], control: 5 }], reward: 'purchase', cost: 'completed' })).toThrow(/control/);
  });
});
