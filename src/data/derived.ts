/**
 * What a schema adds to the log's table `raw` before roles are resolved, so real logs need no
 * preprocessing outside saco: files joined on a key (`"join"`, e.g. a campaign table with
 * start dates), named columns computed by DuckDB (`"columns"`, in order, window functions
 * allowed), then reward and cost given as SQL expressions (`"reward": { "sql": "10 * purchase" }`,
 * `"cost": { "sql": "reward * offer_completed" }`) and the logging propensity likewise.
 * Reward is derived before cost, so the cost expression may use it by the name `reward`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { SchemaError } from '../errors.js';
import { queryRows, quoteIdent as q, quoteLiteral, readerSql, resolveSource } from './duck.js';
import { columnTypes, readError } from './raw.js';
import { joinKeys, type DataSchema, type DerivedColumn, type JoinedFile } from './schema.js';

export function isDerived(v: unknown): v is DerivedColumn {
  return typeof v === 'object' && v !== null && typeof (v as DerivedColumn).sql === 'string';
}

interface Table {
  header: string[];
  types: Map<string, string>;
  /** The text columns whose values are all numbers, once scanned (kept up to date as columns are added). */
  numeric?: Set<string>;
}

/**
 * Applies the schema's joins, named columns and derived reward and cost to the table `raw`
 * (read from a file in `logDir`) and returns the schema with plain column names, and the new
 * header and types.
 * @throws {SchemaError} naming the field when a joined file cannot be joined or DuckDB cannot evaluate an expression.
 */
export async function applyDerivedColumns(
  conn: DuckDBConnection,
  schema: DataSchema,
  header: string[],
  types: Map<string, string>,
  logDir = '.',
): Promise<{ schema: DataSchema; header: string[]; types: Map<string, string>; outcomeInputs: string[] }> {
  const out: DataSchema = { ...schema };
  let table: Table = { header: [...header], types };
  for (const [j, join] of (schema.join ?? []).entries()) table = await joinFile(conn, join, `join[${j}]`, table, joinPlaces(join, logDir, schema));
  for (const [name, spec] of Object.entries(schema.columns ?? {})) table = await addColumn(conn, name, spec.sql, `columns.${name}`, table);
  for (const role of ['reward', 'cost', 'propensity'] as const) {
    const spec = schema[role];
    if (!isDerived(spec)) continue;
    table = await addColumn(conn, role, spec.sql, `${role}.sql`, table);
    out[role] = role;
  }
  return { schema: out, header: table.header, types: table.types, outcomeInputs: await outcomeInputs(conn, schema, table.header) };
}

/**
 * The log's columns that the reward and cost are computed from (their SQL, and through it or a
 * reward or cost column that a schema's "columns" computes, the columns those read, to any
 * depth): outcomes of the round, so not states by default (`--reward-sql "click + 5 *
 * conversion"` left click and conversion as state features, and the models read the reward off
 * them). Every column an expression names counts, a CASE's condition or a window's PARTITION BY
 * too: a state read there is left out as well, and "states" can name it back.
 */
async function outcomeInputs(conn: DuckDBConnection, schema: DataSchema, header: string[]): Promise<string[]> {
  const named = new Map(Object.entries(schema.columns ?? {}).map(([name, spec]) => [name.toLowerCase(), { sql: spec.sql, field: `columns.${name}` }]));
  const byName = new Map(header.map((h) => [h.toLowerCase(), h]));
  const found = new Set<string>();
  const visit = async (column: string) => {
    const real = byName.get(column.toLowerCase());
    if (real === undefined || found.has(real)) return;
    found.add(real);
    const spec = named.get(column.toLowerCase());
    if (spec !== undefined) for (const c of await sqlColumnRefs(conn, spec.sql, spec.field, header)) await visit(c);
  };
  for (const role of ['reward', 'cost'] as const) {
    const spec = schema[role];
    if (typeof spec === 'string') await visit(spec);
    else if (isDerived(spec)) for (const c of await sqlColumnRefs(conn, spec.sql, `${role}.sql`, header)) await visit(c);
  }
  // the reward and cost columns themselves play their roles
  for (const role of ['reward', 'cost'] as const) {
    const spec = schema[role];
    const column = typeof spec === 'string' ? spec : isDerived(spec) ? role : undefined;
    if (column !== undefined) found.delete(byName.get(column.toLowerCase()) ?? '');
  }
  return header.filter((h) => found.has(h));
}

/**
 * The columns of `header` an SQL expression reads, from DuckDB's parse tree (a qualified name,
 * table.column or struct.field, by its first part that is a column).
 * @throws {SchemaError} naming `field` when DuckDB cannot parse the expression.
 */
async function sqlColumnRefs(conn: DuckDBConnection, sql: string, field: string, header: string[]): Promise<string[]> {
  const rows = await queryRows(conn, `SELECT json_serialize_sql(${quoteLiteral(`SELECT ${sql}`)}) AS tree`);
  const tree = JSON.parse(String(rows[0]?.tree ?? '{}')) as { error?: boolean; error_message?: string };
  if (tree.error) throw new SchemaError(field, `DuckDB cannot parse "${sql}": ${tree.error_message ?? 'unknown error'}`, 'SCHEMA_BAD_SQL');
  const columns = new Map(header.map((h) => [h.toLowerCase(), h]));
  const out = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o.class === 'COLUMN_REF' && Array.isArray(o.column_names)) {
        const hit = o.column_names.map((n) => columns.get(String(n).toLowerCase())).find((c) => c !== undefined);
        if (hit !== undefined) out.add(hit);
      }
      Object.values(o).forEach(walk);
    }
  };
  walk(tree);
  return [...out];
}

/** Where a joined file is looked up, in order: beside the log, beside the schema file, in the working directory (an absolute path: only there). */
export function joinPlaces(join: JoinedFile, logDir: string, schema: Pick<DataSchema, 'schemaDir'>): string[] {
  if (path.isAbsolute(join.file)) return [join.file];
  const dirs = [...new Set([logDir, schema.schemaDir ?? logDir, process.cwd()].map((d) => path.resolve(d)))];
  return dirs.map((d) => path.join(d, join.file));
}

/** `raw` with the columns of `join.file` matched on `join.on`; row order and `__row` kept. */
async function joinFile(conn: DuckDBConnection, join: JoinedFile, field: string, table: Table, places: string[]): Promise<Table> {
  const file = places.find((f) => existsSync(f));
  if (file === undefined) {
    throw new SchemaError(`${field}.file`, `${join.file} is not ${places.length > 1 ? `in any of ${places.map((p) => path.dirname(p)).join(', ')} (the log's folder, the schema's, the working directory)` : 'there'}: put it beside the log or give an absolute path`, 'SCHEMA_BAD_JOIN');
  }
  const source = await resolveSource(conn, file).catch((e: unknown) => {
    throw new SchemaError(`${field}.file`, `${file}: ${(e as Error).message}`, 'SCHEMA_BAD_JOIN');
  });
  try {
    await conn.run(`CREATE OR REPLACE TEMP TABLE __joined AS SELECT * FROM ${readerSql(source)}`);
  } catch (e) {
    throw readError(e, source);
  }
  const theirs = [...(await queryRows(conn, 'DESCRIBE __joined')).map((r) => String(r.column_name))];
  const keys = joinKeys(join);
  for (const key of keys) {
    if (!table.header.includes(key)) throw new SchemaError(`${field}.on`, `column "${key}" is not in the log (columns: ${table.header.join(', ')})`, 'SCHEMA_BAD_JOIN');
    if (!theirs.includes(key)) throw new SchemaError(`${field}.on`, `column "${key}" is not in ${file} (columns: ${theirs.join(', ')})`, 'SCHEMA_BAD_JOIN');
  }
  const asText = (alias: string, c: string) => `CAST(${alias}${q(c)} AS VARCHAR)`;
  if (join.aggregate) await aggregateJoined(conn, join.aggregate, keys, theirs, `${field}.aggregate`, file);
  else if (join.columns) {
    const missing = join.columns.filter((c) => !theirs.includes(c));
    if (missing.length) throw new SchemaError(`${field}.columns`, `${missing.map((c) => `"${c}"`).join(', ')} ${missing.length > 1 ? 'are' : 'is'} not in ${file} (columns: ${theirs.join(', ')})`, 'SCHEMA_BAD_JOIN');
    const keyed = join.columns.filter((c) => keys.includes(c));
    if (keyed.length) throw new SchemaError(`${field}.columns`, `"${keyed[0]}" is the key: it is matched, not joined`, 'SCHEMA_BAD_JOIN');
  }
  const added = join.aggregate ? Object.keys(join.aggregate) : (join.columns ?? theirs.filter((c) => !keys.includes(c)));
  const clash = added.filter((c) => table.header.some((h) => h.toLowerCase() === c.toLowerCase()) || c.startsWith('__'));  // DuckDB's names ignore case
  if (clash.length) {
    const how = join.aggregate ? 'name the aggregate otherwise' : 'list the columns to take in "columns", rename them in one of the files, or derive what you need in "columns" of the schema';
    throw new SchemaError(`${field}.${join.aggregate ? 'aggregate' : 'file'}`, `${file} has column${clash.length > 1 ? 's' : ''} ${clash.map((c) => `"${c}"`).join(', ')} that the log has already: ${how}`, 'SCHEMA_BAD_JOIN');
  }
  const dup = (await queryRows(conn, `SELECT ${keys.map((k, i) => `${asText('', k)} AS k${i}`).join(', ')}, count(*) AS n FROM __joined GROUP BY ${keys.map((_, i) => `k${i}`).join(', ')} HAVING count(*) > 1 ORDER BY 1 LIMIT 1`))[0];
  if (dup) {
    const at = keys.map((k, i) => `${k} = ${quoteLiteral(String(dup[`k${i}`]))}`).join(', ');
    throw new SchemaError(`${field}.on`, `${file} has ${Number(dup.n)} rows with ${at}: a joined file must have each key at most once (or "aggregate" its rows per key)`, 'SCHEMA_BAD_JOIN');
  }
  const kind = join.how === 'inner' ? 'JOIN' : 'LEFT JOIN';
  const match = keys.map((k) => `${asText('raw.', k)} = ${asText('j.', k)}`).join(' AND ');
  await conn.run(`CREATE OR REPLACE TABLE raw AS
    SELECT raw.*, ${added.map((c) => `j.${q(c)}`).join(', ') || 'NULL AS __none'} FROM raw ${kind} __joined j ON ${match}
    ORDER BY raw.__row`);
  await conn.run('DROP TABLE __joined');
  if (added.length === 0) await conn.run('ALTER TABLE raw DROP COLUMN __none');
  return { header: [...table.header, ...added], types: await columnTypes(conn) };
}

/**
 * Replaces `__joined` by one row per key of the named aggregates. As in computed columns, the
 * expressions see every text column whose values are all numbers as a number.
 */
async function aggregateJoined(conn: DuckDBConnection, aggregate: Record<string, string>, keys: string[], names: string[], field: string, file: string): Promise<void> {
  const types = new Map((await queryRows(conn, 'DESCRIBE __joined')).map((r) => [String(r.column_name), String(r.column_type)]));
  const numeric = await numericTextColumns(conn, names.filter((c) => !keys.includes(c)), types, '__joined');
  const view = numericView(names, numeric);
  for (const [name, sql] of Object.entries(aggregate)) {
    try {
      await conn.run(`SELECT ${keys.map(q).join(', ')}, (${sql}) AS __v FROM (SELECT ${view} FROM __joined) GROUP BY ${keys.map(q).join(', ')} LIMIT 0`);
    } catch (e) {
      throw new SchemaError(`${field}.${name}`, `DuckDB cannot evaluate "${sql}" per key of ${file}: ${(e as Error).message.split('\n')[0]}`, 'SCHEMA_BAD_SQL');
    }
  }
  const values = Object.entries(aggregate).map(([name, sql]) => `(${sql}) AS ${q(name)}`).join(', ');
  try {
    await conn.run(`CREATE OR REPLACE TEMP TABLE __joined AS SELECT ${keys.map(q).join(', ')}, ${values} FROM (SELECT ${view} FROM __joined) GROUP BY ${keys.map(q).join(', ')}`);
  } catch (e) {
    throw new SchemaError(field, `DuckDB cannot evaluate the aggregates per key of ${file}: ${(e as Error).message.split('\n')[0]}`, 'SCHEMA_BAD_SQL');
  }
}

/** Adds (or replaces) column `name` of `raw` as the value of `sql` on each row. */
async function addColumn(conn: DuckDBConnection, name: string, sql: string, field: string, table: Table): Promise<Table> {
  const names = table.header;
  // CSV columns are read as text (so bad values can be located): the expression sees every
  // text column whose values are all numbers as a number
  const numeric = table.numeric ?? (await numericTextColumns(conn, names, table.types));
  const view = numericView(names, numeric);
  // DuckDB's names ignore case: "campaign" would silently read a column "CAMPAIGN"
  const other = names.find((c) => c !== name && c.toLowerCase() === name.toLowerCase());
  if (other !== undefined) throw new SchemaError(field, `"${name}" differs from the column "${other}" only in case, and DuckDB's column names ignore case: choose another name`);
  const keep = names.includes(name) ? `raw.* EXCLUDE (${q(name)})` : 'raw.*';
  try {
    await conn.run(`CREATE OR REPLACE TABLE raw AS
      SELECT ${keep}, d.__v AS ${q(name)} FROM raw JOIN (SELECT __row, (${sql}) AS __v FROM (SELECT __row, ${view} FROM raw)) d USING (__row)
      ORDER BY __row`);
  } catch (e) {
    throw new SchemaError(field, `DuckDB cannot evaluate "${sql}": ${(e as Error).message.split('\n')[0]}`, 'SCHEMA_BAD_SQL');
  }
  const type = (await queryRows(conn, `SELECT typeof(${q(name)}) AS t FROM raw LIMIT 1`))[0]?.t;
  const types = new Map(table.types);
  types.set(name, String(type ?? 'DOUBLE'));
  // only the new column can change which text columns are numbers
  const after = new Set([...numeric].filter((c) => c !== name));
  for (const c of await numericTextColumns(conn, [name], types)) after.add(c);
  return { header: names.includes(name) ? names : [...names, name], types, numeric: after };
}

/**
 * The columns as a SELECT list in which the `numeric` text columns are DOUBLEs. True/false text
 * stays text here, unlike numericExpr's reading of a state: an expression compares it as written.
 */
function numericView(names: string[], numeric: Set<string>): string {
  return names.map((c) => (numeric.has(c) ? `TRY_CAST(${q(c)} AS DOUBLE) AS ${q(c)}` : q(c))).join(', ');
}

/** Text columns every non-null value of which is a number. */
async function numericTextColumns(conn: DuckDBConnection, names: string[], types: Map<string, string>, from = 'raw'): Promise<Set<string>> {
  const text = names.filter((c) => (types.get(c) ?? 'VARCHAR') === 'VARCHAR');
  if (text.length === 0) return new Set();
  const row = (await queryRows(conn, `SELECT ${text.map((c, k) => `count(*) FILTER (WHERE ${q(c)} IS NOT NULL AND TRY_CAST(${q(c)} AS DOUBLE) IS NULL) AS n${k}`).join(', ')} FROM ${from}`))[0];
  return new Set(text.filter((_, k) => Number(row[`n${k}`]) === 0));
}
