/**
 * Writes an interaction log as CSV, CSV.gz or Parquet through DuckDB, with the default
 * column names (user_id, time, states..., action or action_*, cost, reward), so the file
 * reads back without a schema. Written to a temporary name and renamed: a failed write
 * never leaves a half-written file at the target path.
 */
import { renameSync } from 'node:fs';
import { DOUBLE, DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBType } from '@duckdb/node-api';
import { removeQuietly, tempPathFor } from './atomic.js';
import { formatOf, quoteIdent, quoteLiteral, withDuck } from './duck.js';
import type { InteractionLog } from './log.js';

const CHUNK_ROWS = 2048;

/** One column of a file written by {@link writeColumns}: its name, types and the value of each row. */
export interface OutColumn {
  name: string;
  type: DuckDBType;
  sqlType: string;
  value: (row: number) => number | string;
}

/**
 * A `user_id` column: INTEGER when every id is a whole number of at most 9 digits written
 * without leading zeros (so a file says 17 where the log said 17), else text. `ids` are the
 * distinct ids; `idOf(row)` a row's.
 */
export function userIdColumn(ids: ArrayLike<string | number>, idOf: (row: number) => string | number): OutColumn {
  // only ids that print back as themselves: "007" written as 7 would no longer match the user's system
  const integers = Array.prototype.every.call(ids, (id: string | number) => /^(0|-?[1-9]\d{0,8})$/.test(String(id)));
  return integers ? { name: 'user_id', type: INTEGER, sqlType: 'INTEGER', value: (r) => Number(idOf(r)) } : { name: 'user_id', type: VARCHAR, sqlType: 'VARCHAR', value: (r) => String(idOf(r)) };
}

/**
 * An action dimension's labels (face values or names): INTEGER when every label is a whole
 * number (a CSV would write a DOUBLE 10 as "10.0", not as the log has it), DOUBLE for other
 * numbers, else text. `values` are the labels the column can hold; `labelOf(row)` a row's.
 */
export function labelColumn(name: string, values: ReadonlyArray<number | string>, labelOf: (row: number) => number | string): OutColumn {
  const numbers = values.every((v) => typeof v === 'number');
  if (numbers && values.every((v) => Number.isInteger(v) && Math.abs(v as number) < 2 ** 31)) return { name, type: INTEGER, sqlType: 'INTEGER', value: (r) => Number(labelOf(r)) };
  return numbers ? { name, type: DOUBLE, sqlType: 'DOUBLE', value: (r) => Number(labelOf(r)) } : { name, type: VARCHAR, sqlType: 'VARCHAR', value: (r) => String(labelOf(r)) };
}

function logColumns(log: InteractionLog): OutColumn[] {
  const d = log.stateNames.length;
  const A = log.actionEncodings.length;
  const cols: OutColumn[] = [userIdColumn(log.userIds, (r) => log.userIds[log.userIndex[r]]), { name: 'time', type: INTEGER, sqlType: 'INTEGER', value: (r) => log.roundIndex[r] }];
  log.stateNames.forEach((name, j) => cols.push({ name, type: DOUBLE, sqlType: 'DOUBLE', value: (r) => log.states[r * d + j] }));
  log.actionEncodings.forEach((enc, j) => cols.push(labelColumn(enc.column, enc.values, (r) => enc.values[log.actions[r * A + j]])));
  cols.push({ name: 'cost', type: DOUBLE, sqlType: 'DOUBLE', value: (r) => log.cost[r] });
  cols.push({ name: 'reward', type: DOUBLE, sqlType: 'DOUBLE', value: (r) => log.reward[r] });
  return cols;
}

/**
 * Writes `log` to `file` (format from the extension); returns the number of rows written. A
 * logging propensity (`log.propensity`) is not written: the default names would read it back
 * as a state.
 */
export async function writeLog(log: InteractionLog, file: string): Promise<number> {
  await writeColumns(logColumns(log), log.rows, file);
  return log.rows;
}

/**
 * Writes `rows` rows of the given columns to `file` (CSV, CSV.gz or Parquet by extension)
 * through a temporary file and a rename: a failed write leaves nothing at `file`. `threads`:
 * DuckDB's (default: every core).
 */
export async function writeColumns(cols: OutColumn[], rows: number, file: string, threads?: number): Promise<void> {
  const format = formatOf(file);
  const gz = file.toLowerCase().endsWith('.gz');
  const tmp = tempPathFor(file);
  await withDuck(async (conn) => {
    await conn.run(`CREATE TABLE out (${cols.map((c) => `${quoteIdent(c.name)} ${c.sqlType}`).join(', ')})`);
    const appender = await conn.createAppender('out');
    const types = cols.map((c) => c.type);
    for (let start = 0; start < rows; start += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, rows - start);
      const chunk = DuckDBDataChunk.create(types, n);
      cols.forEach((c, k) => {
        const vector = chunk.getColumnVector(k);
        for (let i = 0; i < n; i++) vector.setItem(i, c.value(start + i) as never);
        vector.flush();
      });
      appender.appendDataChunk(chunk);
    }
    appender.closeSync();
    const options = format === 'parquet' ? 'FORMAT parquet' : `FORMAT csv, HEADER true${gz ? ", COMPRESSION 'gzip'" : ''}`;
    try {
      await conn.run(`COPY out TO ${quoteLiteral(tmp)} (${options})`);
      renameSync(tmp, file);
    } catch (e) {
      removeQuietly(tmp);
      throw e;
    }
  }, threads);
}
