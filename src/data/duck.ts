/**
 * DuckDB plumbing shared by the reader, the writer and `data inspect`: one in-memory
 * database per call, SQL quoting, and the table function that reads a log file.
 */
import { existsSync, statSync } from 'node:fs';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { ArgumentError, DataError } from '../errors.js';

export type LogFormat = 'csv' | 'parquet';

/** The format of a log file from its name: .csv, .csv.gz, .tsv, .parquet, .pq. */
export function formatOf(file: string): LogFormat {
  const lower = file.toLowerCase();
  if (/\.(csv|tsv)(\.gz)?$/.test(lower)) return 'csv';
  if (/\.(parquet|pq)$/.test(lower)) return 'parquet';
  throw new ArgumentError('file', `${file}: unknown format (use .csv, .csv.gz, .tsv or .parquet)`, 'ARGUMENT_FORMAT');
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Opens an in-memory DuckDB and runs `body` with a connection; always closes both. */
export async function withDuck<T>(body: (conn: DuckDBConnection) => Promise<T>, threads?: number): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:', threads ? { threads: String(threads) } : {});
  const conn = await instance.connect();
  try {
    return await body(conn);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The table function that reads a log file; CSV columns come in as text and are cast later, so a bad value anywhere is found with its row. */
export function readerSql(file: string): string {
  if (!existsSync(file)) throw new DataError('DATA_FILE_MISSING', 'file not found', { file });
  if (statSync(file).size === 0) throw new DataError('DATA_EMPTY', 'the file is empty', { file });
  const path = quoteLiteral(file);
  return formatOf(file) === 'csv' ? `read_csv(${path}, header = true, all_varchar = true)` : `read_parquet(${path})`;
}

/** Runs a query and returns its rows as plain JS values. */
export async function queryRows(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}
