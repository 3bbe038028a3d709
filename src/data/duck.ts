/**
 * DuckDB plumbing shared by the reader, the writer and `data inspect`: one in-memory
 * database per call, SQL quoting, the files a log is read from (paths are literal; globs
 * only when asked), and the table function that reads them.
 */
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
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

/** The characters DuckDB expands in any path it is given (`**` is two `*`). */
const GLOB_CHARS = /[*?[]/;

/**
 * The path as DuckDB reads it literally: absolute (DuckDB expands a leading `~`), with each
 * glob character in a one-character class, `[*]`, `[?]`, `[[]`, which DuckDB's glob matches
 * as that character only. Its `\` is no escape, so a class is the only way.
 */
export function literalPath(file: string): string {
  return path.resolve(file).replace(/[*?[]/g, (c) => `[${c}]`);
}

/** The files of one log, as the user named them (or as a pattern matched them), in reading order. */
export interface LogSource {
  /** What the user gave, for messages and the report: a path, a pattern, or a list. */
  label: string;
  files: string[];
  format: LogFormat;
  /** The user's name of a file from the absolute path DuckDB reports. */
  nameOf: (absolute: string) => string;
}

function checkFile(file: string): void {
  if (!existsSync(file)) {
    const hint = GLOB_CHARS.test(file) ? ' (paths are literal; to read every file matching a pattern, pass glob: true or --glob)' : '';
    throw new DataError('DATA_FILE_MISSING', `file not found${hint}`, { file });
  }
  if (statSync(file).isDirectory()) throw new DataError('DATA_FILE_MISSING', 'is a directory, not a log file', { file });
  if (statSync(file).size === 0) throw new DataError('DATA_EMPTY', 'the file is empty', { file });
}

function sourceOf(label: string, files: string[]): LogSource {
  const formats = new Set(files.map(formatOf));
  if (formats.size > 1) throw new ArgumentError('file', `${label}: mixes CSV and Parquet files; read them separately`, 'ARGUMENT_FORMAT');
  files.forEach(checkFile);
  const names = new Map(files.map((f) => [path.resolve(f), f]));
  return { label, files, format: [...formats][0], nameOf: (abs) => names.get(path.resolve(abs)) ?? abs };
}

/**
 * The files to read: a path is one literal file; a list is those files; a pattern with
 * `glob` is every file DuckDB's glob matches, sorted, shown relative when the pattern was.
 */
export async function resolveSource(conn: DuckDBConnection, input: string | readonly string[], glob = false): Promise<LogSource> {
  if (typeof input !== 'string') {
    if (input.length === 0) throw new ArgumentError('file', 'an empty list of files');
    return sourceOf(input.join(', '), [...input]);
  }
  if (!glob) return sourceOf(input, [input]);
  const matched = (await queryRows(conn, `SELECT file FROM glob(${quoteLiteral(path.resolve(input))}) ORDER BY file`)).map((r) => String(r.file));
  if (matched.length === 0) throw new DataError('DATA_FILE_MISSING', 'no file matches the pattern', { file: input });
  return sourceOf(input, path.isAbsolute(input) ? matched : matched.map((f) => path.relative(process.cwd(), f)));
}

/** The table function that reads a log; CSV columns come in as text and are cast later, so a bad value anywhere is found with its row. */
export function readerSql(source: LogSource, csvDialect = ''): string {
  const paths = source.files.map((f) => quoteLiteral(literalPath(f)));
  const list = paths.length === 1 ? paths[0] : `[${paths.join(', ')}]`;
  // which file a row came from matters only when there are several
  const fileColumn = paths.length > 1 ? `, filename = '__file'` : '';
  // skip = 0: the sniffer otherwise may take a later line for the header and drop the rows above it
  return source.format === 'csv' ? `read_csv(${list}, header = true, skip = 0, all_varchar = true${csvDialect}${fileColumn})` : `read_parquet(${list}${fileColumn})`;
}

export function isGzip(file: string): boolean {
  return file.toLowerCase().endsWith('.gz');
}

/**
 * Reads a .gz file through zlib to its end. DuckDB reads a gzip stream that stops early as
 * if the file ended there, so a cut download would pass as a shorter log; this refuses it.
 */
export async function checkGzip(file: string): Promise<void> {
  const head = Buffer.alloc(2);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] !== 0x1f || head[1] !== 0x8b) throw new DataError('DATA_NOT_GZIP', 'the name ends in .gz but the file is not gzip-compressed', { file });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  try {
    await pipeline(createReadStream(file), createGunzip(), sink);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(err.message)) {
      throw new DataError('DATA_TRUNCATED', 'the gzip stream ends early: the file is truncated (an interrupted download or copy?)', { file });
    }
    throw new DataError('DATA_CORRUPT', `the gzip stream is corrupt (${err.message})`, { file });
  }
}

/** Runs a query and returns its rows as plain JS values. */
export async function queryRows(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}
