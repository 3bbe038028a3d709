import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { constants, createGzip, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readLog } from '../src/data/ingest.js';
import { formatInspectReport, inspectLog } from '../src/data/inspect.js';
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
    // a state: the message shows the schema line that fills it, and that line reads the file
    const hint = /"columns": (\{ "x": \{ "sql": "[^"]+" \} \})/.exec(e.message);
    expect(hint, e.message).not.toBeNull();
    const filled = await readLog(file, { schema: { ...DEFAULT_SCHEMA, columns: JSON.parse((hint as RegExpExecArray)[1]) as Record<string, { sql: string }> } });
    expect(filled.log.rows).toBe(4);
    expect(filled.log.states[3 * filled.log.stateNames.length]).toBe(0);
    // a missing reward is not a state: no fill is suggested
    const reward = await dataError(csv('missing-reward.csv', [...GOOD, '3,0,1,0,0,']));
    expect(reward).toMatchObject({ code: 'DATA_MISSING_VALUE', column: 'reward' });
    expect(reward.message).not.toContain('coalesce');
  });

  it('a wrong type (text in a number column)', async () => {
    const e = await dataError(csv('type.csv', [...GOOD, '3,0,abc,0,0,1']));
    expect(e).toMatchObject({ code: 'DATA_WRONG_TYPE', row: 4, column: 'x', value: 'abc' });
    // a state: the message names both ways out, and its "columns" line reads the file ("NA" as 0)
    const na = csv('type-na.csv', [...GOOD, '3,0,NA,0,0,1']);
    const text = await dataError(na);
    expect(text.message).toContain('list "x" in "categorical"');
    const hint = /"columns", e\.g\. (\{ "x": \{ "sql": "[^"]+" \} \})/.exec(text.message);
    expect(hint, text.message).not.toBeNull();
    const read = await readLog(na, { schema: { ...DEFAULT_SCHEMA, columns: JSON.parse((hint as RegExpExecArray)[1]) as Record<string, { sql: string }> } });
    expect(read.log.rows).toBe(4);
    expect(Array.from({ length: 4 }, (_, r) => read.log.states[r * read.log.stateNames.length])).toEqual([0.5, 0.25, 1.5, 0]);
    // text booleans in a number column are numbers: true/false, t/f, yes/no, y/n read as 1/0
    // (DuckDB's casts; under an inferred schema such a column is a category instead)
    const flags = csv('type-bool.csv', ['1,0,true,0,0,1', '1,1,False,5,5,20', '2,0,Y,5,0,0', '3,0,n,0,0,1']);
    const bools = await readLog(flags, { schema: { ...DEFAULT_SCHEMA, states: ['x'] } });
    expect(Array.from({ length: 4 }, (_, r) => bools.log.states[r * bools.log.stateNames.length])).toEqual([1, 0, 1, 0]);
    // numbers with a comma ("0,5"): not one-hot categories under an inferred schema but a
    // SchemaError naming both readings (decimal comma, thousands separator), and with a declared
    // state the same hint; following its decimal-comma line reads 0.5, 0.25, 1.5
    const comma = csv('type-comma.csv', ['1,0,"0,5",0,0,1', '1,1,"0,25",5,5,20', '2,0,"1,5",5,0,0']);
    const inferred = await readLog(comma).catch((e: unknown) => e);
    expect(inferred).toBeInstanceOf(SchemaError);
    expect(inferred).toMatchObject({ field: 'states', message: expect.stringContaining('thousands separator') });
    const declared = await dataError(comma, { schema: { ...DEFAULT_SCHEMA, states: ['x'] } });
    expect(declared).toMatchObject({ code: 'DATA_WRONG_TYPE', row: 1, column: 'x', value: '0,5' });
    const fix = /(\{ "x": \{ "sql": "CAST[^}]+\} \}) reads a decimal comma/.exec((inferred as Error).message);
    expect(fix, (inferred as Error).message).not.toBeNull();
    expect(declared.message).toContain((fix as RegExpExecArray)[1]);
    const fixed = await readLog(comma, { schema: { ...DEFAULT_SCHEMA, columns: JSON.parse((fix as RegExpExecArray)[1]) as Record<string, { sql: string }> } });
    expect(Array.from({ length: 3 }, (_, r) => fixed.log.states[r * fixed.log.stateNames.length])).toEqual([0.5, 0.25, 1.5]);
    // not a state: no such hint
    const reward = await dataError(csv('type-reward.csv', [...GOOD, '3,0,1,0,0,abc']));
    expect(reward).toMatchObject({ code: 'DATA_WRONG_TYPE', column: 'reward' });
    expect(reward.message).not.toContain('categorical');
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

describe('values too large to sum (issue 11 item 4): a typed error, counted under --skip-bad-rows', () => {
  it('a reward of 1e200 names file, row and column', async () => {
    const file = csv('huge-reward.csv', [...GOOD, '3,0,1,0,0,1e200']);
    const e = await dataError(file);
    expect(e).toMatchObject({ code: 'DATA_OUT_OF_RANGE', row: 4, column: 'reward', value: '1e200' });
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/1e\+?30/);
  });

  it('states and costs beyond the bound, and numbers beyond a double', async () => {
    expect(await dataError(csv('huge-state.csv', ['3,0,-2e31,0,0,1', ...GOOD]))).toMatchObject({ code: 'DATA_OUT_OF_RANGE', row: 1, column: 'x' });
    expect(await dataError(csv('huge-cost.csv', [...GOOD, '3,0,1,5,1e35,1']))).toMatchObject({ code: 'DATA_OUT_OF_RANGE', row: 4, column: 'cost' });
    // '1e400' is a number, just not one a double holds: out of range, not "not a number"
    expect(await dataError(csv('e400.csv', [...GOOD, '3,0,1,0,0,1e400']))).toMatchObject({ code: 'DATA_OUT_OF_RANGE', row: 4, column: 'reward', value: '1e400' });
  });

  it('values up to the bound are accepted', async () => {
    const { log } = await readLog(csv('at-bound.csv', [...GOOD, '3,0,1e30,0,0,-1e30']));
    expect(log.reward[log.rows - 1]).toBe(-1e30);
  });

  it('--skip-bad-rows counts them like other bad rows', async () => {
    const { report } = await readLog(csv('skip-huge.csv', [...GOOD, '3,0,1,0,0,1e200', '4,0,1e300,0,0,1']), { skipBadRows: true });
    expect(report.rowsUsed).toBe(3);
    expect(report.skipped).toEqual({ 'DATA_OUT_OF_RANGE (x)': 1, 'DATA_OUT_OF_RANGE (reward)': 1 });
  });

  it('a stated per-action cost beyond the bound is a schema error', () => {
    expect(() => parseSchema({ cost: { perAction: { a: 1e200 } } })).toThrow(/perAction.a/);
  });

  it('data inspect reports them instead of dying in DuckDB', async () => {
    const r = await inspectLog(csv('inspect-huge.csv', [...GOOD, '3,0,1,0,0,1e200']));
    expect(r.columns.find((c) => c.column === 'reward')).toMatchObject({ outOfRange: 1 });
    expect(r.reward.count).toBe(3);
    expect(Number.isFinite(r.reward.sd)).toBe(true);
    expect(r.actions[0].mix.every((m) => Number.isFinite(m.meanReward))).toBe(true);
    expect(formatInspectReport(r)).toMatch(/out of range/);
  });
});

describe('unreadable files name the real cause (issue 11 item 8)', () => {
  const header = HEADER.split(',').length;
  const many = (n: number) => Array.from({ length: n }, (_, i) => `${i},0,${i % 7},0,0,1`);

  it('a ragged row among the first rows (where DuckDB cannot sniff the dialect)', async () => {
    const short = await dataError(csv('ragged-short.csv', ['1,0,0.5,0,0,1', '2,0,0.5,0,0', '3,0,1,0,0,1']));
    expect(short).toMatchObject({ code: 'DATA_RAGGED_ROW', row: 2 });
    expect(short.message).toMatch(new RegExp(`row 2: the row has 5 fields, the header has ${header}`));
    const long = await dataError(csv('ragged-long.csv', ['1,0,0.5,0,0,1', '2,0,0.5,0,0,1,9']));
    expect(long).toMatchObject({ code: 'DATA_RAGGED_ROW', row: 2 });
    expect(long.message).toMatch(/has 7 fields, the header has 6/);
  });

  it('a ragged row deep in a large file', async () => {
    const rows = many(200000);
    rows[149999] = '149999,0,1,0,0';
    const e = await dataError(csv('ragged-deep.csv', rows));
    expect(e).toMatchObject({ code: 'DATA_RAGGED_ROW', row: 150000 });
    expect(e.message).toMatch(/has 5 fields, the header has 6/);
  });

  it('a truncated .csv.gz, cut mid-line or at a line boundary', async () => {
    const body = Buffer.from([HEADER, ...many(20000)].join('\n') + '\n');
    const gz = gzipSync(body);
    const cut = tmp.file('trunc.csv.gz');
    writeFileSync(cut, gz.subarray(0, gz.length >> 1));
    const e = await dataError(cut);
    expect(e.code).toBe('DATA_TRUNCATED');
    expect(e.message).toMatch(/gzip stream ends early: the file is truncated/);
    // a cut after a full flush at a line boundary reads as fewer, whole rows in DuckDB: still refused
    const head = Buffer.from([HEADER, ...many(100)].join('\n') + '\n');
    const z = createGzip();
    const parts: Buffer[] = [];
    z.on('data', (b: Buffer) => parts.push(b));
    await new Promise<void>((done) => z.write(head, () => z.flush(constants.Z_FULL_FLUSH, () => done())));
    const atLine = tmp.file('trunc-line.csv.gz');
    writeFileSync(atLine, Buffer.concat(parts));
    z.destroy();
    expect(await dataError(atLine)).toMatchObject({ code: 'DATA_TRUNCATED' });
    // whole files still read, and a .gz name on plain text is named as such
    const whole = tmp.file('whole.csv.gz');
    writeFileSync(whole, gz);
    expect((await readLog(whole)).report.rowsUsed).toBe(20000);
    const plain = tmp.file('plain.csv.gz', [HEADER, ...GOOD].join('\n'));
    const p = await dataError(plain);
    expect(p.code).toBe('DATA_NOT_GZIP');
    expect(p.message).toMatch(/not gzip/);
  });

  it('bytes that are not UTF-8, near the top and deep in the file', async () => {
    const near = tmp.file('latin1.csv');
    writeFileSync(near, Buffer.concat([Buffer.from(`${HEADER}\n1,0,0.5,0,0,1\n`), Buffer.from('2,0,caf\xe9,0,0,1\n', 'latin1')]));
    const e = await dataError(near);
    expect(e).toMatchObject({ code: 'DATA_ENCODING', row: 2 });
    expect(e.message).toMatch(/not UTF-8/);
    const rows = many(200000);
    rows[149999] = '149999,0,caf\xe9,0,0,1';
    const far = tmp.file('latin1-deep.csv');
    writeFileSync(far, Buffer.from([HEADER, ...rows].join('\n') + '\n', 'latin1'));
    expect(await dataError(far)).toMatchObject({ code: 'DATA_ENCODING', row: 150000 });
  });
});

describe('paths are literal; globs only when asked (issue 11 item 10)', () => {
  const dir = () => {
    const d = mkdtempSync(path.join(tmp.dir, 'many-'));
    writeFileSync(path.join(d, 'a1.csv'), `${HEADER}\n1,0,0.5,0,0,1\n`);
    writeFileSync(path.join(d, 'a2.csv'), `${HEADER}\n2,0,0.5,0,0,1\n2,1,0.5,0,0,1x\n`);
    return d;
  };

  it('a path with glob characters reads that file and nothing else', async () => {
    const d = dir();
    for (const name of ['a[12].csv', 'a*.csv', 'a?.csv']) {
      const literal = path.join(d, name);
      writeFileSync(literal, `${HEADER}\n7,0,0.5,0,0,1\n8,0,1,5,5,1\n`);
      const { log, report } = await readLog(literal);
      expect(log.userIds).toEqual(['7', '8']);
      expect(report.files).toEqual([literal]);
      const r = await inspectLog(literal);
      expect(r.rows).toBe(2);
      rmSync(literal);
    }
    const inBrackets = mkdtempSync(path.join(tmp.dir, 'x[1]-'));
    const nested = path.join(inBrackets, 'log.csv');
    writeFileSync(nested, `${HEADER}\n9,0,0.5,0,0,1\n`);
    expect((await readLog(nested)).log.userIds).toEqual(['9']);
  });

  it('a pattern that is not a file is refused, pointing at the glob option', async () => {
    const d = dir();
    const e = await dataError(path.join(d, 'a[12].csv'));
    expect(e.code).toBe('DATA_FILE_MISSING');
    expect(e.message).toMatch(/paths are literal.*glob: true.*--glob/);
  });

  it('with glob: true, every match is read, listed in the report, and errors name the file and its own row', async () => {
    const d = dir();
    const pattern = path.join(d, 'a[12].csv');
    const e = await dataError(pattern, { glob: true });
    expect(e).toMatchObject({ code: 'DATA_WRONG_TYPE', file: path.join(d, 'a2.csv'), row: 2, column: 'reward' });
    const { log, report } = await readLog(pattern, { glob: true, skipBadRows: true });
    expect(report.files).toEqual([path.join(d, 'a1.csv'), path.join(d, 'a2.csv')]);
    expect(log.userIds).toEqual(['1', '2']);
    expect((await inspectLog(pattern, undefined, { glob: true })).files).toHaveLength(2);
    await expect(readLog(path.join(d, 'z*.csv'), { glob: true })).rejects.toMatchObject({ code: 'DATA_FILE_MISSING' });
  });

  it('among several files, a ragged row or different columns name that file', async () => {
    const d = dir();
    const ragged = path.join(d, 'b.csv');
    writeFileSync(ragged, `${HEADER}\n5,0,0.5,0,0,1\n6,0,0.5,0,0\n`);
    expect(await dataError(path.join(d, '*.csv'), { glob: true })).toMatchObject({ code: 'DATA_RAGGED_ROW', file: ragged, row: 2 });
    writeFileSync(ragged, `${HEADER.replace(',x,', ',y,')}\n5,0,0.5,0,0,1\n`);
    const e = await dataError(path.join(d, '*.csv'), { glob: true });
    expect(e).toMatchObject({ code: 'DATA_COLUMNS_DIFFER', file: ragged });
    expect(e.message).toMatch(/its columns \(user_id, time, y, .*\) differ from those of .*a1\.csv/);
  });

  it('a list of files is read as one log', async () => {
    const d = dir();
    const files = [path.join(d, 'a2.csv'), path.join(d, 'a1.csv')];
    const { report } = await readLog(files, { skipBadRows: true });
    expect(report.files).toEqual(files);
    expect(report.rowsRead).toBe(3);
  });
});
