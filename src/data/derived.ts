/**
 * Derived columns: a schema may give reward or cost as an SQL expression over the file's
 * columns (`"reward": { "sql": "10 * purchase" }`, `"cost": { "sql": "reward * offer_completed" }`),
 * evaluated by DuckDB as the file is read, so real logs need no preprocessing outside saco.
 * Reward is derived first, so the cost expression may use it by the name `reward`.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { SchemaError } from '../errors.js';
import { queryRows, quoteIdent as q } from './duck.js';
import type { DataSchema, DerivedColumn } from './schema.js';

export function isDerived(v: unknown): v is DerivedColumn {
  return typeof v === 'object' && v !== null && typeof (v as DerivedColumn).sql === 'string';
}

/**
 * Adds each derived column to the table `raw` under its role's name (replacing a file column
 * of that name) and returns the schema with plain column names, and the new header and types.
 * @throws {SchemaError} naming the field when DuckDB cannot evaluate the expression.
 */
export async function applyDerivedColumns(
  conn: DuckDBConnection,
  schema: DataSchema,
  header: string[],
  types: Map<string, string>,
): Promise<{ schema: DataSchema; header: string[]; types: Map<string, string> }> {
  const out: DataSchema = { ...schema };
  let names = [...header];
  if (!isDerived(schema.reward) && !isDerived(schema.cost)) return { schema: out, header: names, types };
  for (const role of ['reward', 'cost'] as const) {
    const spec = schema[role];
    if (!isDerived(spec)) continue;
    const name = role;
    // CSV columns are read as text (so bad values can be located): the expression sees every
    // text column whose values are all numbers as a number
    const numeric = await numericTextColumns(conn, names, types);
    const view = names.map((c) => (numeric.has(c) ? `TRY_CAST(${q(c)} AS DOUBLE) AS ${q(c)}` : q(c))).join(', ');
    const keep = names.includes(name) ? `raw.* EXCLUDE (${q(name)})` : 'raw.*';
    try {
      await conn.run(`CREATE OR REPLACE TABLE raw AS
        SELECT ${keep}, d.__v AS ${q(name)} FROM raw JOIN (SELECT __row, (${spec.sql}) AS __v FROM (SELECT __row, ${view} FROM raw)) d USING (__row)
        ORDER BY __row`);
    } catch (e) {
      throw new SchemaError(`${role}.sql`, `DuckDB cannot evaluate "${spec.sql}": ${(e as Error).message.split('\n')[0]}`, 'SCHEMA_BAD_SQL');
    }
    const type = (await queryRows(conn, `SELECT typeof(${q(name)}) AS t FROM raw LIMIT 1`))[0]?.t;
    types.set(name, String(type ?? 'DOUBLE'));
    if (!names.includes(name)) names = [...names, name];
    out[role] = name;
  }
  return { schema: out, header: names, types };
}

/** Text columns every non-null value of which is a number. */
async function numericTextColumns(conn: DuckDBConnection, names: string[], types: Map<string, string>): Promise<Set<string>> {
  const text = names.filter((c) => (types.get(c) ?? 'VARCHAR') === 'VARCHAR');
  if (text.length === 0) return new Set();
  const row = (await queryRows(conn, `SELECT ${text.map((c, k) => `count(*) FILTER (WHERE ${q(c)} IS NOT NULL AND TRY_CAST(${q(c)} AS DOUBLE) IS NULL) AS n${k}`).join(', ')} FROM raw`))[0];
  return new Set(text.filter((_, k) => Number(row[`n${k}`]) === 0));
}
