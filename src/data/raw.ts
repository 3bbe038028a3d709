/**
 * The first step of reading a log: its files into DuckDB table `raw` (a 1-based `__row`,
 * and `__file` when there are several files), with DuckDB's read errors turned into
 * DataErrors that name the real cause: a ragged row, bytes that are not UTF-8, a cut
 * gzip stream. Shared by ingestion and `data inspect`.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { DataError } from '../errors.js';
import { checkGzip, isGzip, queryRows, quoteLiteral, readerSql, resolveSource, type LogSource } from './duck.js';

export interface RawTable {
  source: LogSource;
  /** DuckDB type of each log column (without `__row` and `__file`), in file order. */
  types: Map<string, string>;
  header: string[];
  rowsRead: number;
}

/** Where a DuckDB CSV error happened, from the "file = …" and "CSV Error on Line: N" lines of its message. */
function errorPlace(message: string, source: LogSource): { file: string; row?: number } {
  const file = /\n\s*file = (.+)\n/.exec(message)?.[1];
  const line = /CSV Error on Line: (\d+)/.exec(message)?.[1];
  // line 1 is the header, so data row = line - 1
  const row = line !== undefined && Number(line) > 1 ? Number(line) - 1 : undefined;
  return { file: file !== undefined ? source.nameOf(file.trim()) : source.files.length === 1 ? source.files[0] : source.label, row };
}

/** A DuckDB read error as a DataError with a code and a one-line cause. */
export function readError(e: unknown, source: LogSource): DataError {
  const message = e instanceof Error ? e.message : String(e);
  const where = errorPlace(message, source);
  const fields = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(message);
  if (fields) return new DataError('DATA_RAGGED_ROW', `the row has ${fields[2]} fields, the header has ${fields[1]}`, where);
  if (/invalid unicode|not utf-8 encoded/i.test(message)) {
    return new DataError('DATA_ENCODING', 'the file is not UTF-8 (an invalid byte sequence); convert it first, e.g. iconv -f latin1 -t utf-8', where);
  }
  if (/not possible to automatically detect the CSV parsing dialect/.test(message)) {
    return new DataError('DATA_UNREADABLE', 'DuckDB cannot tell how the CSV is delimited or quoted (are some rows ragged?)', where);
  }
  return new DataError('DATA_UNREADABLE', `DuckDB cannot read it: ${message.split('\n')[0]}`, { file: where.file });
}

async function createRaw(conn: DuckDBConnection, reader: string): Promise<unknown> {
  try {
    await conn.run(`CREATE OR REPLACE TABLE raw AS SELECT CAST(row_number() OVER () AS BIGINT) AS __row, * FROM ${reader}`);
    return null;
  } catch (e) {
    return e;
  }
}

/** DuckDB type of each column of `raw`, without `__row` and `__file`. */
export async function columnTypes(conn: DuckDBConnection): Promise<Map<string, string>> {
  const described = await queryRows(conn, 'DESCRIBE raw');
  const types = new Map<string, string>(described.map((r) => [String(r.column_name), String(r.column_type)]));
  types.delete('__row');
  types.delete('__file');
  return types;
}

/** The fields of one CSV header line (double quotes, "" inside them). */
export function splitHeader(line: string, delim: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') field += line[++i];
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === delim) {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

/**
 * DuckDB's sniffer gives up on the delimiter when a row in its sample has the wrong number
 * of fields, and reads the file as one column named after the whole header line. Reading
 * again with the dialect stated makes DuckDB name the ragged row (or succeed).
 */
async function rereadWithDialect(conn: DuckDBConnection, source: LogSource, headerLine: string): Promise<void> {
  const delim = /\.tsv(\.gz)?$/i.test(source.files[0]) ? '\t' : ',';
  const names = splitHeader(headerLine, delim);
  const columns = `{${names.map((n) => `${quoteLiteral(n)}: 'VARCHAR'`).join(', ')}}`;
  const dialect = `, auto_detect = false, delim = ${quoteLiteral(delim)}, quote = '"', escape = '"', columns = ${columns}`;
  const error = await createRaw(conn, readerSql(source, dialect));
  if (error) throw readError(error, source);
}

/**
 * DuckDB reads several files as one table only when their columns agree, and says so
 * without the cause: that file alone gives the cause (a ragged row, the encoding), or
 * its columns are really different.
 */
async function mismatchError(conn: DuckDBConnection, source: LogSource, message: string): Promise<DataError | null> {
  const other = /Failed to read file "([^"]+)": schema mismatch/.exec(message)?.[1];
  if (other === undefined || source.files.length < 2) return null;
  const file = source.nameOf(other);
  const first = await loadRawTable(conn, [source.files[0]]);
  const alone = await loadRawTable(conn, [file]);
  return new DataError('DATA_COLUMNS_DIFFER', `its columns (${alone.header.join(', ')}) differ from those of ${source.files[0]} (${first.header.join(', ')})`, { file });
}

/** The log's files as table `raw`; see the module comment. */
export async function loadRawTable(conn: DuckDBConnection, input: string | readonly string[], glob = false): Promise<RawTable> {
  const source = await resolveSource(conn, input, glob);
  // zlib and DuckDB each read the whole file: run them side by side, the gzip verdict first
  const gzip = Promise.all(source.files.filter(isGzip).map(checkGzip)).then(
    () => null,
    (e: unknown) => e,
  );
  const loadError = await createRaw(conn, readerSql(source));
  const gzipError = await gzip;
  if (gzipError) throw gzipError;
  if (loadError) throw (await mismatchError(conn, source, String((loadError as Error).message))) ?? readError(loadError, source);
  let types = await columnTypes(conn);
  const only = types.size === 1 ? [...types.keys()][0] : '';
  if (source.format === 'csv' && /[,\t]/.test(only)) {
    await rereadWithDialect(conn, source, only);
    types = await columnTypes(conn);
  }
  const rowsRead = Number((await queryRows(conn, 'SELECT count(*) AS n FROM raw'))[0].n);
  if (rowsRead === 0) throw new DataError('DATA_EMPTY', 'no data rows', { file: source.label });
  return { source, types, header: [...types.keys()], rowsRead };
}

/** The file and its own 1-based data row of a row of `raw`. */
export async function locateRow(conn: DuckDBConnection, source: LogSource, row: number): Promise<{ file: string; row: number }> {
  if (source.files.length === 1) return { file: source.files[0], row };
  const r = (await queryRows(conn, `SELECT a.__file AS f, (SELECT count(*) FROM raw b WHERE b.__file = a.__file AND b.__row <= a.__row) AS n FROM raw a WHERE a.__row = ${row}`))[0];
  return { file: source.nameOf(String(r.f)), row: Number(r.n) };
}
