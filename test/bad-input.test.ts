import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { readLog } from '../src/data/ingest.js';
import { applySchemaFlags, DEFAULT_SCHEMA, loadSchemaFile, parseSchema } from '../src/data/schema.js';
import { DataError, SchemaError } from '../src/errors.js';
import { tempDir } from './helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const HEADER = 'user_id,time,x,action,cost,reward';
const GOOD = ['1,0,0.5,0,0,1', '1,1,0.25,5,5,20', '2,0,1.5,5,0,0'];

function csv(name: string, rows: string[], header = HEADER): string {
  return tmp.file(name, [header, ...rows].join('\n') + '\n');
}

async function dataError(file: string, options: Parameters<typeof readLog>[1] = {}): Promise<DataError> {
  try {
    await readLog(file, options);
  } catch (e) {
    if (e instanceof DataError) return e;
    throw e;
  }
  throw new Error(`expected a DataError for ${file}`);
}

describe('bad data files: a typed error naming file, row and column', () => {
  it('a missing value', async () => {
    const file = csv('missing.csv', [...GOOD, '3,0,,0,0,1']);
    const e = await dataError(file);
    expect(e.code).toBe('DATA_MISSING_VALUE');
    expect(e.row).toBe(4);
    expect(e.column).toBe('x');
    expect(e.message).toContain(file);
    expect(e.message).toContain('row 4');
  });

  it('a wrong type (text in a number column)', async () => {
    const e = await dataError(csv('type.csv', [...GOOD, '3,0,abc,0,0,1']));
    expect(e).toMatchObject({ code: 'DATA_WRONG_TYPE', row: 4, column: 'x', value: 'abc' });
  });

  it('a wrong type deep in a large file is found with its row', async () => {
    const rows: string[] = [];
    for (let i = 0; i < 200000; i++) rows.push(`${i},0,${i % 7},0,0,1`);
    rows[150001] = '150001,0,0.5,0,0,12x';
    const e = await dataError(csv('deep.csv', rows));
    expect(e).toMatchObject({ code: 'DATA_WRONG_TYPE', row: 150002, column: 'reward', value: '12x' });
  });

  it('NaN and infinite values', async () => {
    expect(await dataError(csv('nan.csv', [...GOOD, '3,0,nan,0,0,1']))).toMatchObject({ code: 'DATA_NOT_FINITE', row: 4, column: 'x' });
    expect(await dataError(csv('inf.csv', ['3,0,1,0,0,inf', ...GOOD]))).toMatchObject({ code: 'DATA_NOT_FINITE', row: 1, column: 'reward' });
    expect(await dataError(csv('ninf.csv', [...GOOD, '3,-Infinity,1,0,0,1']))).toMatchObject({ code: 'DATA_NOT_FINITE', row: 4, column: 'time' });
  });

  it('a negative cost', async () => {
    expect(await dataError(csv('neg.csv', [...GOOD, '3,0,1,5,-5,1']))).toMatchObject({ code: 'DATA_NEGATIVE_COST', row: 4, column: 'cost', value: '-5' });
  });

  it('an action value outside the declared values', async () => {
    const file = csv('act.csv', [...GOOD, '3,0,1,7,0,1']);
    const schema = { ...DEFAULT_SCHEMA, actions: [{ column: 'action', values: [0, 5] }] };
    expect(await dataError(file, { schema })).toMatchObject({ code: 'DATA_UNKNOWN_ACTION', row: 4, column: 'action', value: '7' });
    const labelled = csv('act2.csv', ['1,0,1,none,0,1', '2,0,1,gold,0,1']);
    expect(await dataError(labelled, { schema: { ...DEFAULT_SCHEMA, actions: [{ column: 'action', values: ['none', 'silver'] }] } })).toMatchObject({
      code: 'DATA_UNKNOWN_ACTION',
      row: 2,
      value: 'gold',
    });
  });

  it('an action value with no stated cost', async () => {
    const file = tmp.file('nocost.csv', 'id,segment,spend\n1,Mail,3\n2,Phone,0\n');
    const schema = parseSchema({ user: 'id', time: null, actions: ['segment'], cost: { perAction: { Mail: 0.1 } }, reward: 'spend', states: ['spend'] });
    // spend is both reward and state: refused before reading values
    await expect(readLog(file, { schema })).rejects.toThrow(SchemaError);
    const ok = parseSchema({ user: 'id', time: null, actions: ['segment'], cost: { perAction: { Mail: 0.1 } }, reward: 'spend', states: ['id'] });
    const fixed = { ...ok, user: null };
    expect(await dataError(file, { schema: fixed })).toMatchObject({ code: 'DATA_UNKNOWN_ACTION', row: 2, column: 'segment', value: 'Phone' });
  });

  it('an empty file, and a file with a header but no rows', async () => {
    expect(await dataError(tmp.file('empty.csv', ''))).toMatchObject({ code: 'DATA_EMPTY' });
    expect(await dataError(tmp.file('header.csv', `${HEADER}\n`))).toMatchObject({ code: 'DATA_EMPTY' });
  });

  it('a file that does not exist, or is not a log', async () => {
    expect(await dataError(tmp.file('nope.csv'))).toMatchObject({ code: 'DATA_FILE_MISSING' });
    const notParquet = tmp.file('fake.parquet', 'this is not parquet');
    expect(await dataError(notParquet)).toMatchObject({ code: 'DATA_UNREADABLE' });
  });

  it('a user with two rows at the same time', async () => {
    const e = await dataError(csv('dup.csv', [...GOOD, '2,1,1,0,0,1', '1,1,0.3,0,0,1']));
    expect(e).toMatchObject({ code: 'DATA_DUPLICATE_TIME', row: 5, column: 'time', value: '1' });
    expect(e.message).toMatch(/user 1 has two rows at time 1 \(the other is row 2\)/);
  });

  it('the first problem in the file is reported, with the count of the others', async () => {
    const e = await dataError(csv('many.csv', ['1,0,abc,0,0,1', '2,0,1,0,-1,1', '3,0,1,0,0,nan']));
    expect(e.row).toBe(1);
    expect(e.message).toMatch(/2 more bad value\(s\)/);
  });

  it('--skip-bad-rows skips and counts instead of failing; nothing is dropped silently', async () => {
    const file = csv('skip.csv', [...GOOD, '3,0,abc,0,0,1', '4,0,1,0,-1,1', '5,0,1,0,0,nan', '1,1,9,0,0,1', '6,0,1,0,0,1']);
    const { log, report } = await readLog(file, { skipBadRows: true });
    expect(report.rowsRead).toBe(8);
    expect(report.rowsUsed).toBe(4);
    expect(report.skipped).toEqual({
      'DATA_WRONG_TYPE (x)': 1,
      'DATA_NEGATIVE_COST (cost)': 1,
      'DATA_NOT_FINITE (reward)': 1,
      DATA_DUPLICATE_TIME: 1,
    });
    expect(log.userIds).toEqual(['1', '2', '6']);
    // the first of the duplicate rows is kept
    expect(log.states[1]).toBe(0.25);
  });
});

describe('bad schemas: a SchemaError naming the field', () => {
  const file = () => csv('ok.csv', GOOD);

  it('a missing or misnamed column, with a did-you-mean', async () => {
    await expect(readLog(file(), { schema: { ...DEFAULT_SCHEMA, reward: 'Reward ' } })).rejects.toThrow(/column "Reward " is not in .*Did you mean "reward"/);
    await expect(readLog(file(), { schema: { ...DEFAULT_SCHEMA, cost: 'price' } })).rejects.toMatchObject({ code: 'SCHEMA_MISSING_COLUMN', field: 'cost' });
    const noAction = csv('noaction.csv', ['1,0,1,0,1'], 'user_id,time,x,cost,reward');
    await expect(readLog(noAction)).rejects.toThrow(/no action column/);
  });

  it('a column named twice', async () => {
    await expect(readLog(file(), { schema: { ...DEFAULT_SCHEMA, states: ['x', 'x'] } })).rejects.toMatchObject({ code: 'SCHEMA_DUPLICATE_COLUMN' });
    await expect(readLog(file(), { schema: { ...DEFAULT_SCHEMA, states: ['x', 'cost'] } })).rejects.toThrow(/"cost" is already used as cost/);
    await expect(readLog(file(), { schema: { ...DEFAULT_SCHEMA, user: 'x', states: ['x'] } })).rejects.toThrow(SchemaError);
  });

  it('bad JSON, unknown fields and wrong shapes', () => {
    const bad = tmp.file('bad.json', '{ "user": 3 ');
    expect(() => loadSchemaFile(bad)).toThrow(/not valid JSON/);
    expect(() => parseSchema({ users: 'id' })).toThrow(/unknown field/);
    expect(() => parseSchema({ user: 3 })).toThrow(/schema.user/);
    expect(() => parseSchema({ actions: [] })).toThrow(/schema.actions/);
    expect(() => parseSchema({ actions: [{ column: 'a', values: [1, 1] }] })).toThrow(/twice/);
    expect(() => parseSchema({ cost: { perAction: { a: -1 } } })).toThrow(/perAction.a/);
    expect(() => parseSchema({ categorical: { c: 'embed' } })).toThrow(/categorical/);
    expect(() => applySchemaFlags(DEFAULT_SCHEMA, { reward: '' })).toThrow(/reward/);
    writeFileSync(tmp.file('arr.json'), '[1]');
    expect(() => loadSchemaFile(tmp.file('arr.json'))).toThrow(/JSON object/);
  });

  it('a categorical column that is not a state, and an unknown file format', async () => {
    await expect(readLog(file(), { schema: { ...DEFAULT_SCHEMA, categorical: { cost: 'onehot' } } })).rejects.toThrow(/not a state column/);
    await expect(readLog(tmp.file('log.xlsx', 'x'))).rejects.toThrow(/unknown format/);
  });
});
