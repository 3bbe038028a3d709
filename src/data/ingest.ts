/**
 * Reads logs (CSV, CSV.gz, Parquet) through DuckDB into an InteractionLog: the schema maps
 * columns onto roles, every value is checked in SQL (so a bad value in row 900,000 is found
 * with its row number), categories and actions are encoded, and the rows are numbered by
 * user and time. Nothing is dropped silently: a problem is a DataError, or, with
 * `skipBadRows`, a counted skip in the report. A path is one literal file; a pattern is
 * read only with `glob`, and the files read are listed in the report.
 */
import path from 'node:path';
import { renameSync } from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { DataError, SchemaError } from '../errors.js';
import { removeQuietly, tempPathFor } from './atomic.js';
import { formatOf, queryRows, quoteIdent as q, quoteLiteral, withDuck } from './duck.js';
import type { ActionEncoding, CategoricalEncoding, InteractionLog } from './log.js';
import { applyDerivedColumns } from './derived.js';
import { loadRawTable, locateRow } from './raw.js';
import { DEFAULT_SCHEMA, MAX_ABS_VALUE, MIN_PROPENSITY, parseDuration, resolveRoles, type ActionColumn, type CalendarRounds, type CombineRule, type DataSchema } from './schema.js';
import { buildTrajectories, unloggedActionValues, type BuildOptions, type Trajectories } from './trajectories.js';

export interface IngestOptions {
  schema?: DataSchema;
  /** Skip rows with bad values (and later duplicates of a (user, time)) instead of failing; counted in the report. */
  skipBadRows?: boolean;
  /** Read the path as a pattern (DuckDB glob: `*`, `?`, `[...]`, `**`) and every file it matches; without it a path is one literal file. */
  glob?: boolean;
  /** DuckDB threads (default: all cores). */
  threads?: number;
  /** Called with a short description of each stage. */
  onProgress?: (stage: string) => void;
  /**
   * Columns the caller needs in the file, and why (e.g. the state columns a model decides
   * from): a file without some of them is a DataError (code `MODEL_DATA_MISMATCH`) listing
   * every missing one, before anything else is checked.
   */
  needColumns?: { columns: string[]; reason: string };
}

/** What readTrajectories takes besides IngestOptions and BuildOptions. */
export interface TrajectoryReadOptions {
  /**
   * Warn (report.warnings) of action values the schema declares but no round holds: nothing
   * learned from the log will choose them. Default true; off for a log read to decide from (a
   * part of a log may lack a rare action the model knows).
   */
  warnUnloggedActions?: boolean;
}

/** How calendar rounds were cut (schema `round`). */
export interface CalendarReport {
  /** Round length and start of round 0, in the time column's units (seconds since 1970 for dates and timestamps). */
  every: number;
  start: number;
  /** The start as the log has it: a number, or an ISO timestamp for date and timestamp columns. */
  startText: string;
  /** Whether `start` was stated in the schema (else the earliest time in the log). */
  startStated: boolean;
  temporal: boolean;
  /** Rounds 0..rounds−1 every user has. */
  rounds: number;
}

export interface IngestReport {
  /** What was asked for: a path, a pattern or a list. */
  file: string;
  /** The files read, in order. */
  files: string[];
  rowsRead: number;
  rowsUsed: number;
  /** Rows skipped per reason (only with skipBadRows). */
  skipped: Record<string, number>;
  users: number;
  maxRounds: number;
  /** Columns that were read as categories because they hold text. */
  inferredCategorical: string[];
  /** Columns the reward or cost is computed from, so left out of the default states. */
  outcomeInputs: string[];
  /** Things that were read as asked but look unintended (e.g. near-duplicate action values). */
  warnings: string[];
  /** Calendar rounds (schema `round`): how they were cut. */
  calendar?: CalendarReport;
  /** Rounds filled as the control action because the user had no row in them (calendar rounds). */
  filledRounds: number;
  /** Rows merged into another row of the same user and round (schema `combine`). */
  combinedRows: number;
}

/** Says which columns were kept out of the states because the reward or cost is computed from them (IngestReport.outcomeInputs). */
export const outcomeInputsNotice = (columns: string[]): string =>
  `not state features: ${columns.join(', ')} (the reward or cost is computed from them, so they hold the round's outcome; name them in --state-cols or the schema's "states" to use them anyway)`;

/** At most this many calendar rounds (a model's context is far shorter). */
export const MAX_CALENDAR_ROUNDS = 10_000;

const NUMERIC_TYPES = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*|BOOLEAN)$/;
const TEMPORAL_TYPES = /^(DATE|TIMESTAMP.*|TIME)$/;
const MAX_ACTION_VALUES = 256;
const MAX_ONEHOT_LEVELS = 1000;
/** Two action values this close (relative) are likely one value written twice. */
const NEAR_DUPLICATE = 1e-6;

interface Check {
  code: string;
  detail: string;
  column: string;
  /** SQL that is true on a bad row of `raw`. */
  bad: string;
}

/** SQL that turns a raw column into a DOUBLE (NULL where it cannot); text true/false (t/f, yes/no, y/n) is 1/0. */
export function numericExpr(column: string, type: string): string {
  if (type === 'VARCHAR') return `coalesce(TRY_CAST(${q(column)} AS DOUBLE), CAST(TRY_CAST(${q(column)} AS BOOLEAN) AS DOUBLE))`;
  if (NUMERIC_TYPES.test(type)) return `CAST(${q(column)} AS DOUBLE)`;
  if (TEMPORAL_TYPES.test(type)) return `CAST(epoch(${q(column)}) AS DOUBLE)`;
  return `CAST(NULL AS DOUBLE)`;
}

async function allCastable(conn: DuckDBConnection, column: string, target: 'DOUBLE' | 'TIMESTAMP'): Promise<boolean> {
  const rows = await queryRows(conn, `SELECT count(*) FILTER (WHERE ${q(column)} IS NOT NULL AND TRY_CAST(${q(column)} AS ${target}) IS NULL) AS n FROM raw`);
  return Number(rows[0].n) === 0;
}

/** A number written with a comma ("0,5", "-12,75", "1,234"): one pattern for DuckDB's regexp_full_match and for a value in hand. */
const COMMA_NUMBER = '[+-]?[0-9]+,[0-9]+';
const isCommaNumber = (v: string) => new RegExp(`^${COMMA_NUMBER}$`).test(v.trim());

/** Every value of the column is a number written with a comma. */
async function allCommaNumbers(conn: DuckDBConnection, column: string): Promise<boolean> {
  const rows = await queryRows(conn, `SELECT count(*) FILTER (WHERE NOT regexp_full_match(trim(CAST(${q(column)} AS VARCHAR)), '${COMMA_NUMBER}')) AS other, count(${q(column)}) AS n FROM raw WHERE ${q(column)} IS NOT NULL`);
  return Number(rows[0].n) > 0 && Number(rows[0].other) === 0;
}

/**
 * The schema lines that read numbers written with a comma: a decimal comma ("0,5") or a
 * thousands separator ("1,234"); which one the file means only its writer knows.
 */
function commaNumbersHint(column: string, name: string): string {
  const line = (sql: string) => `{ ${JSON.stringify(column)}: { "sql": ${JSON.stringify(sql)} } }`;
  return `in the schema's "columns", ${line(`CAST(replace(${name}, ',', '.') AS DOUBLE)`)} reads a decimal comma ("0,5" as 0.5), ${line(`CAST(replace(${name}, ',', '') AS DOUBLE)`)} a thousands separator ("1,234" as 1234)`;
}

/**
 * Whether an inferred state column holds categories: most of its values are not numbers.
 * A numeric column with a few bad values stays numeric, so those values are errors.
 */
async function mostlyText(conn: DuckDBConnection, column: string): Promise<boolean> {
  const rows = await queryRows(conn, `SELECT count(*) FILTER (WHERE TRY_CAST(${q(column)} AS DOUBLE) IS NULL) AS text, count(${q(column)}) AS n FROM raw WHERE ${q(column)} IS NOT NULL`);
  return Number(rows[0].text) * 2 > Number(rows[0].n);
}

function sqlList(values: Array<number | string>, numeric: boolean): string {
  return numeric ? `CAST([${values.map((v) => String(Number(v))).join(', ')}] AS DOUBLE[])` : `[${values.map((v) => quoteLiteral(String(v))).join(', ')}]`;
}

/** SQL: the value, as text, is a decimal number (so an infinite cast of it means too large, not `inf`). */
export function looksNumeric(column: string): string {
  return `coalesce(regexp_full_match(trim(CAST(${q(column)} AS VARCHAR)), '[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?'), false)`;
}

/** Adjacent sorted numeric action values within NEAR_DUPLICATE of each other, as warnings. */
function nearDuplicates(column: string, values: number[]): string[] {
  const out: string[] = [];
  for (let k = 1; k < values.length; k++) {
    const [a, b] = [values[k - 1], values[k]];
    if (Math.abs(b - a) <= NEAR_DUPLICATE * Math.max(Math.abs(a), Math.abs(b))) {
      out.push(`action column "${column}": values ${a} and ${b} are within ${NEAR_DUPLICATE.toExponential()} of each other (relative) but are kept as separate actions; round them in the data, or declare the values in the schema`);
    }
  }
  return out;
}

function sameLabel(a: number | string, b: number | string): boolean {
  return typeof a === 'number' || typeof b === 'number' ? Number(a) === Number(b) : a === b;
}

/** SQL: whether a (finite) logging propensity is usable, in [MIN_PROPENSITY, 1]; ingestion refuses others, inspect counts them. */
export function propensityInRange(expr: string): string {
  return `(${expr} >= ${MIN_PROPENSITY} AND ${expr} <= 1)`;
}

/** The cost a schema's `perAction` states for an action value (keys are text: "1" prices the number 1), or null. */
export function statedCost(perAction: Record<string, number>, value: number | string): number | null {
  const key = Object.keys(perAction).find((k) => sameLabel(value, typeof value === 'number' && k.trim() !== '' && Number.isFinite(Number(k)) ? Number(k) : k));
  return key === undefined ? null : perAction[key];
}

/**
 * The no-treatment index of every action dimension: as the schema names it, else the one value
 * (combination, for bundles) that never costs anything in the log (the rows of the table
 * `typed`: a0.. action indices, __cost).
 * @throws {SchemaError} naming the candidates when the log does not single one out.
 */
async function controlActions(conn: DuckDBConnection, actions: ActionColumn[], encodings: ActionEncoding[], file: string): Promise<number[]> {
  const A = encodings.length;
  const controls: Array<number | undefined> = actions.map((a, j) => {
    if (a.control === undefined) return undefined;
    const k = encodings[j].values.findIndex((v) => sameLabel(v, a.control as number | string));
    if (k < 0) throw new SchemaError(`actions[${j}].control`, `${JSON.stringify(a.control)} is not a value of column "${a.column}" (values: ${JSON.stringify(encodings[j].values)})`);
    return k;
  });
  if (controls.every((k) => k !== undefined)) return controls as number[];
  const ask = (j: number, why: string) =>
    new SchemaError(`actions[${j}].control`, `${why}; name the no-treatment value of column "${encodings[j].column}" in the schema: "actions": [{ "column": "${encodings[j].column}", "control": … }]`, 'SCHEMA_NO_CONTROL');
  const stats = async (j: number) => (await queryRows(conn, `SELECT a${j} AS k, max(__cost) AS mx, avg(__cost) AS mean FROM typed GROUP BY a${j} ORDER BY a${j}`)).map((r) => ({ k: Number(r.k), max: Number(r.mx), mean: Number(r.mean) }));
  if (A === 1) {
    const free = (await stats(0)).filter((r) => r.max === 0).map((r) => r.k);
    if (free.length === 1) return [free[0]];
    const label = (ks: number[]) => ks.map((k) => JSON.stringify(encodings[0].values[k])).join(', ');
    throw ask(0, free.length === 0 ? `every value costs something somewhere in ${file}, so none is plainly "no coupon"` : `values ${label(free)} never cost anything in ${file}`);
  }
  // bundles: the cheapest value of each dimension, if the rows with all of them never cost
  for (let j = 0; j < A; j++) {
    if (controls[j] !== undefined) continue;
    const rows = (await stats(j)).sort((a, b) => a.mean - b.mean);
    if (rows.length > 1 && rows[1].mean === rows[0].mean) throw ask(j, `values ${JSON.stringify(encodings[j].values[rows[0].k])} and ${JSON.stringify(encodings[j].values[rows[1].k])} cost the same on average`);
    controls[j] = rows[0].k;
  }
  const where = controls.map((k, j) => `a${j} = ${k}`).join(' AND ');
  const check = (await queryRows(conn, `SELECT count(*) AS n, max(__cost) AS mx FROM typed WHERE ${where}`))[0];
  if (Number(check.n) === 0 || Number(check.mx) > 0) {
    const combo = controls.map((k, j) => `${encodings[j].column}=${JSON.stringify(encodings[j].values[k as number])}`).join(', ');
    throw ask(actions.findIndex((a) => a.control === undefined), `the cheapest values (${combo}) ${Number(check.n) === 0 ? 'never occur together' : 'do cost something together'} in ${file}`);
  }
  return controls as number[];
}

/** Reads a log file into memory; see the module comment. */
export async function readLog(input: string | readonly string[], options: IngestOptions = {}): Promise<{ log: InteractionLog; report: IngestReport }> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const progress = options.onProgress ?? (() => {});
  return withDuck(async (conn) => {
    progress(`reading ${typeof input === 'string' ? input : input.join(', ')}`);
    const raw = await loadRawTable(conn, input, options.glob);
    const { source, rowsRead } = raw;
    const { schema: named, header, types, outcomeInputs } = await applyDerivedColumns(conn, schema, raw.header, raw.types, path.dirname(raw.source.files[0]));
    const file = source.label;
    if (options.needColumns) {
      const present = new Set(header);
      const absent = options.needColumns.columns.filter((c) => !present.has(c));
      if (absent.length) {
        throw new DataError('MODEL_DATA_MISMATCH', `has no column${absent.length > 1 ? 's' : ''} ${absent.map((c) => `"${c}"`).join(', ')}: ${options.needColumns.reason} (columns in the file: ${header.join(', ')})`, { file });
      }
    }
    const roles = resolveRoles(named, header, file, outcomeInputs);
    const typeOf = (c: string) => types.get(c) ?? 'VARCHAR';
    const checks: Check[] = [];
    const missing = (column: string, detail = 'missing value') => checks.push({ code: 'DATA_MISSING_VALUE', detail, column, bad: `${q(column)} IS NULL` });
    // a column as the schema's SQL names it
    const sqlName = (column: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(column) ? column : q(column));
    // a state may be filled where the log leaves it empty (a customer without demographics)
    const missingState = (column: string, fill: string) =>
      `missing value (to fill the state where it is empty, the schema's "columns": { ${JSON.stringify(column)}: { "sql": ${JSON.stringify(`coalesce(${sqlName(column)}, ${fill})`)} } }; --skip-bad-rows skips such rows instead)`;
    // the schema lines that make a state out of text: a category, or a number computed from it
    const textState = (column: string) =>
      `; a state is a number or a category: list ${JSON.stringify(column)} in "categorical" if it holds categories, or compute a number from it in the schema's "columns", e.g. { ${JSON.stringify(column)}: { "sql": ${JSON.stringify(`coalesce(TRY_CAST(${sqlName(column)} AS DOUBLE), 0)`)} } }`;
    const numeric = (column: string, expr: string, wantNonNegative = false, missingDetail?: string, wrongTypeHint = '') => {
      missing(column, missingDetail);
      // text like 1e400 casts to Infinity: a number too large, not an infinite value. CASE
      // runs the regex only on the rare non-finite rows (it would double the pass otherwise).
      checks.push({ code: 'DATA_WRONG_TYPE', detail: `not a number (column type ${typeOf(column)})${wrongTypeHint}`, column, bad: `${q(column)} IS NOT NULL AND ${expr} IS NULL` });
      checks.push({ code: 'DATA_NOT_FINITE', detail: 'NaN or infinite value', column, bad: `CASE WHEN NOT isfinite(${expr}) THEN NOT ${looksNumeric(column)} ELSE false END` });
      checks.push({
        code: 'DATA_OUT_OF_RANGE',
        detail: `magnitude above ${MAX_ABS_VALUE.toExponential()} (sums and squares of such values overflow in training)`,
        column,
        bad: `CASE WHEN isfinite(${expr}) THEN abs(${expr}) > ${MAX_ABS_VALUE} WHEN ${expr} IS NOT NULL THEN ${looksNumeric(column)} ELSE false END`,
      });
      if (wantNonNegative) checks.push({ code: 'DATA_NEGATIVE_COST', detail: 'negative cost (cost must be >= 0)', column, bad: `${expr} < 0` });
    };

    // user key and its order (numeric ids sort as numbers)
    let userKey: string;
    let userOrder: string;
    if (roles.user.length === 0) {
      userKey = 'CAST(__row AS VARCHAR)';
      userOrder = 'CAST(__row AS DOUBLE)';
    } else {
      roles.user.forEach((c) => missing(c));
      userKey = roles.user.length === 1 ? `CAST(${q(roles.user[0])} AS VARCHAR)` : `concat_ws('|', ${roles.user.map((c) => `CAST(${q(c)} AS VARCHAR)`).join(', ')})`;
      userOrder = roles.user.length === 1 ? `TRY_CAST(${q(roles.user[0])} AS DOUBLE)` : 'CAST(NULL AS DOUBLE)';
    }

    // time: a number, or a date/timestamp (as epoch seconds); none: file order
    let timeExpr = 'CAST(__row AS DOUBLE)';
    let temporal = false;
    if (roles.time !== null) {
      ({ expr: timeExpr, temporal } = await timeExpression(conn, roles.time, typeOf(roles.time)));
      numeric(roles.time, timeExpr);
    }
    const calendar = schema.round ? await calendarSpec(conn, schema.round, roles.time, temporal) : undefined;
    if (calendar?.start !== undefined) {
      checks.push({ code: 'DATA_BEFORE_START', detail: `time before the campaign start ${calendar.startText} (schema round.start)`, column: roles.time as string, bad: `${timeExpr} < ${calendar.start}` });
    }

    // states: numbers, or categories (declared, or text columns under an inferred schema)
    progress('checking columns');
    const categorical: CategoricalEncoding[] = [];
    const inferredCategorical: string[] = [];
    const stateNames: string[] = [];
    const stateExprs: string[] = [];
    for (const column of roles.states) {
      const type = typeOf(column);
      let kind = schema.categorical?.[column];
      if (kind === undefined && schema.states === undefined && !NUMERIC_TYPES.test(type) && (await mostlyText(conn, column))) {
        // numbers written with a comma are not categories: say how to read them
        if (await allCommaNumbers(conn, column)) {
          throw new SchemaError('states', `column "${column}" holds numbers written with a comma; ${commaNumbersHint(column, sqlName(column))} (or list it in "categorical" if its values are categories)`);
        }
        kind = 'onehot';
        inferredCategorical.push(column);
      }
      if (kind === undefined) {
        const expr = numericExpr(column, type);
        numeric(column, expr, false, missingState(column, '0'), textState(column));
        stateNames.push(column);
        stateExprs.push(expr);
        continue;
      }
      missing(column, missingState(column, "'unknown'"));
      const levels = (await queryRows(conn, `SELECT DISTINCT CAST(${q(column)} AS VARCHAR) AS v FROM raw WHERE ${q(column)} IS NOT NULL ORDER BY v`)).map((r) => String(r.v));
      if (kind === 'onehot' && levels.length > MAX_ONEHOT_LEVELS) {
        throw new SchemaError(`categorical.${column}`, `${levels.length} levels is too many for one-hot (max ${MAX_ONEHOT_LEVELS}); use 'index'`);
      }
      categorical.push({ column, kind, levels });
      const text = `CAST(${q(column)} AS VARCHAR)`;
      if (kind === 'onehot') {
        for (const level of levels) {
          stateNames.push(`${column}=${level}`);
          stateExprs.push(`CASE WHEN ${text} = ${quoteLiteral(level)} THEN 1.0 ELSE 0.0 END`);
        }
      } else {
        stateNames.push(column);
        stateExprs.push(`CAST(list_position(${sqlList(levels, false)}, ${text}) - 1 AS DOUBLE)`);
      }
    }

    // actions: numbers or labels; declared values fix the index order, else sorted found values
    const actionEncodings: ActionEncoding[] = [];
    const actionValueExprs: string[] = [];
    const actionMatch: string[] = [];
    const warnings: string[] = [];
    for (const [j, a] of roles.actions.entries()) {
      const column = a.column;
      missing(column);
      const isNumeric = a.values ? a.values.every((v) => typeof v === 'number') : NUMERIC_TYPES.test(typeOf(column)) || (await allCastable(conn, column, 'DOUBLE'));
      const expr = isNumeric ? numericExpr(column, typeOf(column)) : `CAST(${q(column)} AS VARCHAR)`;
      let values = a.values;
      if (!values) {
        const found = await queryRows(conn, `SELECT DISTINCT ${expr} AS v FROM raw WHERE ${expr} IS NOT NULL ORDER BY v LIMIT ${MAX_ACTION_VALUES + 1}`);
        if (found.length > MAX_ACTION_VALUES) throw new SchemaError(`actions[${j}]`, `column "${column}" has more than ${MAX_ACTION_VALUES} distinct values; is it really an action?`);
        values = found.map((r) => (isNumeric ? Number(r.v) : String(r.v)));
        if (isNumeric) warnings.push(...nearDuplicates(column, values as number[]));
      }
      const list = sqlList(values, isNumeric);
      checks.push({ code: 'DATA_UNKNOWN_ACTION', detail: `action value not among ${JSON.stringify(values)}`, column, bad: `${q(column)} IS NOT NULL AND NOT coalesce(list_contains(${list}, ${expr}), false)` });
      actionEncodings.push({ column, values });
      actionValueExprs.push(expr);
      actionMatch.push(`CAST(list_position(${list}, ${expr}) - 1 AS INTEGER)`);
    }

    // cost: a column, or a stated cost per action value
    let costExpr: string;
    if (typeof roles.cost === 'string') {
      costExpr = numericExpr(roles.cost, typeOf(roles.cost));
      numeric(roles.cost, costExpr, true);
    } else {
      const dim = roles.cost.dimension ?? 0;
      const enc = actionEncodings[dim];
      const per = roles.cost.perAction;
      const costs = enc.values.map((v) => statedCost(per, v));
      const priced = enc.values.filter((_, k) => costs[k] !== null);
      checks.push({
        code: 'DATA_UNKNOWN_ACTION',
        detail: `no cost given for this action value (cost.perAction has ${JSON.stringify(Object.keys(per))})`,
        column: enc.column,
        bad: priced.length === 0 ? 'true' : `NOT coalesce(list_contains(${sqlList(priced, enc.values.every((v) => typeof v === 'number'))}, ${actionValueExprs[dim]}), false)`,
      });
      costExpr = `CAST([${costs.map((c) => (c === null ? 'NULL' : String(c))).join(', ')}][${actionMatch[dim]} + 1] AS DOUBLE)`;
    }
    const rewardExpr = numericExpr(roles.reward, typeOf(roles.reward));
    numeric(roles.reward, rewardExpr);
    // the logging policy's probability of the logged action: in (0, 1]
    const propensity = roles.propensity;
    const propensityExpr = propensity === undefined ? undefined : numericExpr(propensity, typeOf(propensity));
    if (propensity !== undefined && propensityExpr !== undefined) {
      numeric(propensity, propensityExpr);
      checks.push({ code: 'DATA_OUT_OF_RANGE', detail: `a logging propensity must be in (0, 1] (at least ${MIN_PROPENSITY}: its inverse weights an outcome)`, column: propensity, bad: `isfinite(${propensityExpr}) AND NOT ${propensityInRange(propensityExpr)}` });
    }

    // one pass over the rows for every check
    progress('validating values');
    const aggregates = checks.flatMap((c, k) => [`min(__row) FILTER (WHERE ${c.bad}) AS f${k}`, `count(*) FILTER (WHERE ${c.bad}) AS n${k}`]);
    const found = (await queryRows(conn, `SELECT ${aggregates.join(', ')} FROM raw`))[0];
    const problems = checks
      .map((c, k) => ({ check: c, first: found[`f${k}`] === null ? null : Number(found[`f${k}`]), count: Number(found[`n${k}`]) }))
      .filter((p) => p.first !== null);
    const anyBad = checks.length > 0 ? checks.map((c) => `coalesce(${c.bad}, false)`).join(' OR ') : 'false';

    // calendar rounds: round 0 starts at the stated start or the earliest good time
    let roundExpr = timeExpr;
    let calendarReport: CalendarReport | undefined;
    if (calendar) {
      const cut = await calendarRounds(conn, calendar, timeExpr, temporal, `NOT (${anyBad})`);
      roundExpr = cut.roundExpr;
      if (cut.rounds > MAX_CALENDAR_ROUNDS) {
        throw new SchemaError('round.every', `rounds of ${schema.round?.every} from ${cut.startText} make ${cut.rounds} rounds in ${file}; at most ${MAX_CALENDAR_ROUNDS}: make the rounds longer`);
      }
      calendarReport = { every: calendar.every, start: cut.start, startText: cut.startText, startStated: calendar.start !== undefined, temporal, rounds: cut.rounds };
    }
    const combine = schema.combine;
    // several rows of one user in one round (at one time, without calendar rounds): refused, skipped or combined
    const dupFilter = roles.user.length > 0 && roles.time !== null;
    const firstInRound = `ORDER BY ${calendar ? `${timeExpr}, ` : ''}__row`;
    const dupSql = dupFilter
      ? `SELECT __row, __r, count(*) OVER () AS n FROM (SELECT __row, ${roundExpr} AS __r, row_number() OVER (PARTITION BY ${userKey}, ${roundExpr} ${firstInRound}) AS rn FROM raw WHERE NOT (${anyBad})) WHERE rn > 1 ORDER BY __row LIMIT 1`
      : '';
    const dup = dupFilter ? (await queryRows(conn, dupSql))[0] : undefined;
    const combinedRows = combine && dup ? Number(dup.n) : 0;

    const skipped: Record<string, number> = {};
    if (!options.skipBadRows) {
      const first = problems.sort((a, b) => (a.first as number) - (b.first as number))[0];
      // a duplicate is an error only without `combine`: then the earlier of the two is reported
      if (first && (!dup || combine || (first.first as number) <= Number(dup.__row))) {
        const v = (await queryRows(conn, `SELECT CAST(${q(first.check.column)} AS VARCHAR) AS v FROM raw WHERE __row = ${first.first}`))[0]?.v;
        const comma =
          first.check.code === 'DATA_WRONG_TYPE' && typeof v === 'string' && isCommaNumber(v)
            ? `; "${v}" looks like a number written with a comma: ${commaNumbersHint(first.check.column, sqlName(first.check.column))}`
            : '';
        const total = problems.reduce((s, p) => s + p.count, 0) + (dup && !combine ? Number(dup.n) : 0);
        const more = total > 1 ? `; ${total - 1} more bad value(s) in the ${source.files.length > 1 ? 'files' : 'file'} (--skip-bad-rows skips and counts them)` : '';
        throw new DataError(first.check.code, first.check.detail + comma + more, {
          ...(await locateRow(conn, source, first.first as number)),
          column: first.check.column,
          value: v === null || v === undefined ? undefined : String(v),
        });
      }
      if (dup && !combine && calendar) {
        const who = (await queryRows(conn, `SELECT ${userKey} AS u FROM raw WHERE __row = ${Number(dup.__row)}`))[0];
        const same = await queryRows(conn, `SELECT __row FROM raw WHERE NOT (${anyBad}) AND ${userKey} = ${quoteLiteral(String(who.u))} AND ${roundExpr} = ${Number(dup.__r)} ORDER BY __row`);
        const places = await Promise.all(same.slice(0, 6).map((x) => locateRow(conn, source, Number(x.__row))));
        const files = new Set(places.map((p) => p.file));
        const named = places.map((p) => (files.size > 1 ? `${p.file} row ${p.row}` : `row ${p.row}`));
        const list = `${named.slice(0, 5).join(', ')}${same.length > 5 ? ` and ${same.length - 5} more` : ''}`;
        const total = Number(dup.n);
        throw new DataError(
          'DATA_DUPLICATE_ROUND',
          `user ${String(who.u)} has ${same.length} rows in calendar round ${Number(dup.__r)} (${list}); say how to combine them in the schema ("combine": { "reward": "sum", "cost": "sum", "action": "first" }) or use shorter rounds` +
            (total > same.length - 1 ? `; ${total} rows in all share a round with an earlier row` : ''),
          { file: files.size > 1 ? source.label : places[0].file, column: roles.time as string },
        );
      }
      if (dup && !combine) {
        const row = Number(dup.__row);
        const who = (await queryRows(conn, `SELECT ${userKey} AS u, CAST(${q(roles.time as string)} AS VARCHAR) AS t FROM raw WHERE __row = ${row}`))[0];
        const earlier = (await queryRows(conn, `SELECT min(__row) AS r FROM raw WHERE ${userKey} = ${quoteLiteral(String(who.u))} AND ${timeExpr} = (SELECT ${timeExpr} FROM raw WHERE __row = ${row})`))[0];
        const here = await locateRow(conn, source, row);
        const other = await locateRow(conn, source, Number(earlier.r));
        const otherName = other.file === here.file ? `row ${other.row}` : `${other.file}, row ${other.row}`;
        throw new DataError('DATA_DUPLICATE_TIME', `user ${String(who.u)} has two rows at time ${String(who.t)} (the other is ${otherName})`, {
          ...here,
          column: roles.time as string,
          value: String(who.t),
        });
      }
    } else {
      const counted = await queryRows(conn, `SELECT ${checks.map((c, k) => `count(*) FILTER (WHERE coalesce(${c.bad}, false) AND NOT (${checks.slice(0, k).map((p) => `coalesce(${p.bad}, false)`).join(' OR ') || 'false'})) AS s${k}`).join(', ')} FROM raw`);
      checks.forEach((c, k) => {
        const n = Number(counted[0][`s${k}`]);
        if (n > 0) skipped[`${c.code} (${c.column})`] = (skipped[`${c.code} (${c.column})`] ?? 0) + n;
      });
      if (dup && !combine) skipped[calendar ? 'DATA_DUPLICATE_ROUND' : 'DATA_DUPLICATE_TIME'] = Number(dup.n);
    }

    progress('building rows');
    const base = `SELECT __row, ${userKey} AS __user, ${userOrder} AS __uorder, ${timeExpr} AS __time, ${roundExpr} AS __round,
        ${stateExprs.map((e, j) => `${e} AS s${j}`).join(', ')}, ${actionMatch.map((e, j) => `${e} AS a${j}`).join(', ')},
        ${costExpr} AS __cost, ${rewardExpr} AS __reward${propensityExpr ? `, ${propensityExpr} AS __prop` : ''}
      FROM raw WHERE NOT (${anyBad})`;
    const first = 'QUALIFY row_number() OVER (PARTITION BY __user, __round ORDER BY __time, __row) = 1';
    if (!dupFilter) await conn.run(`CREATE TABLE typed AS ${base}`);
    else if (!combine || !dup) await conn.run(`CREATE TABLE typed AS SELECT * FROM (${base}) ${calendar ? first : 'QUALIFY row_number() OVER (PARTITION BY __user, __round ORDER BY __row) = 1'}`);
    else await conn.run(`CREATE TABLE typed AS SELECT ${combinedColumns(combine, stateExprs.length, actionMatch.length, propensityExpr !== undefined)} FROM (${base}) ${first}`);
    const controls = await controlActions(conn, roles.actions, actionEncodings, file);
    controls.forEach((k, j) => Object.assign(actionEncodings[j], { control: k, controlStated: roles.actions[j].control !== undefined }));
    // A budget is kept by giving the control instead of a coupon: where the control itself
    // costs, spend can pass the budget by that much (and the simulator learns that it costs).
    const controlCost = (await queryRows(conn, `SELECT count(*) FILTER (WHERE __cost > 0) AS n, count(*) AS m, max(__cost) AS mx FROM typed WHERE ${controls.map((k, j) => `a${j} = ${k}`).join(' AND ')}`))[0];
    if (Number(controlCost.n) > 0) {
      const named = controls.map((k, j) => `${actionEncodings[j].column}=${JSON.stringify(actionEncodings[j].values[k])}`).join(', ');
      warnings.push(
        `the control action (${named}) costs something in ${Number(controlCost.n)} of its ${Number(controlCost.m)} rows (up to ${Number(controlCost.mx)}): a budget is kept by giving the control instead of a coupon, so planned spend can pass the budget by what the control costs` +
          (combinedRows > 0 && combine?.action !== 'max' ? ` (rows merged by "combine" add up their costs under the round's first action; "action": "max" keeps its largest treatment instead)` : ''),
      );
    }
    const counts = (await queryRows(conn, 'SELECT count(*) AS n, count(DISTINCT __user) AS u FROM typed'))[0];
    const realRows = Number(counts.n);
    const users = Number(counts.u);
    if (realRows === 0) throw new DataError('DATA_EMPTY', 'every row was skipped as bad', { file });

    const d = stateNames.length;
    const A = actionEncodings.length;
    const rows = realRows;
    const log: InteractionLog = {
      source: file,
      rows,
      userIndex: new Int32Array(rows),
      roundIndex: new Int32Array(rows),
      userIds: new Array<string>(users),
      stateNames,
      states: new Float64Array(rows * d),
      actionEncodings,
      actions: new Int32Array(rows * A),
      cost: new Float64Array(rows),
      reward: new Float64Array(rows),
      categorical,
      ...(propensityExpr ? { propensity: new Float64Array(rows) } : {}),
    };
    const result = await conn.stream(`SELECT CAST(dense_rank() OVER (ORDER BY __uorder NULLS LAST, __user) - 1 AS INTEGER) AS __u,
        CAST(${calendar ? '__round' : 'row_number() OVER (PARTITION BY __user ORDER BY __time, __row) - 1'} AS INTEGER) AS __t, __user,
        ${[...stateNames.map((_, j) => `s${j}`), ...actionEncodings.map((_, j) => `a${j}`)].join(', ')}, __cost, __reward${propensityExpr ? ', __prop' : ''}
      FROM typed ORDER BY __u, __t`);
    let r = 0;
    let maxRounds = 0;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const n = chunk.rowCount;
      const col = (k: number) => chunk.getColumnVector(k);
      const uVec = col(0);
      const tVec = col(1);
      const idVec = col(2);
      for (let k = 0; k < n; k++) {
        const u = uVec.getItem(k) as number;
        const t = tVec.getItem(k) as number;
        log.userIndex[r + k] = u;
        log.roundIndex[r + k] = t;
        if (log.userIds[u] === undefined) log.userIds[u] = String(idVec.getItem(k));
        if (t + 1 > maxRounds) maxRounds = t + 1;
      }
      for (let j = 0; j < d; j++) {
        const v = col(3 + j);
        for (let k = 0; k < n; k++) log.states[(r + k) * d + j] = v.getItem(k) as number;
      }
      for (let j = 0; j < A; j++) {
        const v = col(3 + d + j);
        for (let k = 0; k < n; k++) log.actions[(r + k) * A + j] = v.getItem(k) as number;
      }
      const cVec = col(3 + d + A);
      const rVec = col(4 + d + A);
      for (let k = 0; k < n; k++) {
        log.cost[r + k] = cVec.getItem(k) as number;
        log.reward[r + k] = rVec.getItem(k) as number;
      }
      if (log.propensity) {
        const pVec = col(5 + d + A);
        for (let k = 0; k < n; k++) log.propensity[r + k] = pVec.getItem(k) as number;
      }
      r += n;
    }
    const filled = calendarReport ? fillCalendarRounds(log, calendarReport.rounds, controls) : log;
    if (calendarReport) maxRounds = calendarReport.rounds;
    const filledRounds = filled.rows - log.rows;
    if (filledRounds > 0) progress(`filled ${filledRounds} empty calendar round(s) as the control action`);
    return {
      log: filled,
      report: {
        file, files: source.files, rowsRead, rowsUsed: rows, skipped, users, maxRounds, inferredCategorical, outcomeInputs: roles.outcomeInputs, warnings,
        ...(calendarReport ? { calendar: calendarReport } : {}), filledRounds, combinedRows,
      },
    };
  }, options.threads);
}

/**
 * The time column as a number: its values, or epoch seconds of a date or timestamp (a text
 * column whose every value reads as a timestamp, as CSV files hold them, is one).
 */
export async function timeExpression(conn: DuckDBConnection, column: string, type: string): Promise<{ expr: string; temporal: boolean }> {
  if (type === 'VARCHAR' && !(await allCastable(conn, column, 'DOUBLE')) && (await allCastable(conn, column, 'TIMESTAMP'))) {
    return { expr: `CAST(epoch(TRY_CAST(${q(column)} AS TIMESTAMP)) AS DOUBLE)`, temporal: true };
  }
  return { expr: numericExpr(column, type), temporal: TEMPORAL_TYPES.test(type) };
}

/** SQL: the calendar round of a time (in the units of `start` and `every`). */
function calendarRoundExpr(timeExpr: string, start: number, every: number): string {
  return `CAST(floor((${timeExpr} - (${start})) / ${every} + 1e-9) AS BIGINT)`;
}

/**
 * Calendar rounds over the rows of `raw` where `where` holds: the start (stated, else the
 * earliest time), its text, each row's round as SQL, and how many rounds the rows span.
 */
export async function calendarRounds(
  conn: DuckDBConnection,
  spec: { every: number; start?: number; startText?: string },
  timeExpr: string,
  temporal: boolean,
  where: string,
): Promise<{ start: number; startText: string; roundExpr: string; rounds: number }> {
  let start = spec.start;
  if (start === undefined) {
    const v = (await queryRows(conn, `SELECT min(${timeExpr}) AS t FROM raw WHERE ${where}`))[0]?.t;
    start = v === null || v === undefined ? 0 : Number(v);
  }
  const roundExpr = calendarRoundExpr(timeExpr, start, spec.every);
  const last = Number((await queryRows(conn, `SELECT coalesce(max(${roundExpr}), 0) AS r FROM raw WHERE ${where}`))[0].r);
  return { start, startText: spec.startText ?? (temporal ? new Date(start * 1000).toISOString() : String(start)), roundExpr, rounds: last + 1 };
}

/** The calendar spec in the time expression's units; a stated start resolved to a number. */
export async function calendarSpec(conn: DuckDBConnection, round: CalendarRounds, time: string | null, temporal: boolean): Promise<{ every: number; start?: number; startText?: string }> {
  if (time === null) throw new SchemaError('round', 'calendar rounds need a time column ("time": "<column>")');
  let every: number;
  if (typeof round.every === 'string') {
    if (!temporal) throw new SchemaError('round.every', `"${round.every}" is a duration, but the time column "${time}" holds numbers: give the round length as a number in its units`);
    every = parseDuration(round.every) as number;
  } else every = temporal ? round.every * 3600 : round.every;
  if (round.start === undefined) return { every };
  if (!temporal) {
    if (typeof round.start !== 'number') throw new SchemaError('round.start', `"${round.start}" is not a number, and the time column "${time}" holds numbers`);
    return { every, start: round.start, startText: String(round.start) };
  }
  if (typeof round.start !== 'string') throw new SchemaError('round.start', `the time column "${time}" holds dates or timestamps: give the start as one, e.g. "2019-01-07"`);
  const v = (await queryRows(conn, `SELECT CAST(epoch(TRY_CAST(${quoteLiteral(round.start)} AS TIMESTAMP)) AS DOUBLE) AS t`))[0]?.t;
  if (v === null || v === undefined) throw new SchemaError('round.start', `"${round.start}" is not a date or timestamp (e.g. "2019-01-07" or "2019-01-07 06:00:00")`);
  return { every, start: Number(v), startText: round.start };
}

/**
 * The typed table's columns with several rows of a (user, round) combined by the schema's rule
 * (window `PARTITION BY __user, __round`). The logging propensity is the first row's, as the
 * state is: the round's decision is taken to be the one its first row logged.
 */
function combinedColumns(rule: CombineRule, d: number, A: number, propensity: boolean): string {
  const w = 'OVER (PARTITION BY __user, __round)';
  const outcome = (how: string | undefined, c: string) => (how === 'max' ? `max(${c}) ${w}` : how === 'first' ? c : `sum(${c}) ${w}`);
  return [
    '__row', '__user', '__uorder', '__time', '__round',
    ...Array.from({ length: d }, (_, j) => `s${j}`),
    ...Array.from({ length: A }, (_, j) => (rule.action === 'max' ? `max(a${j}) ${w} AS a${j}` : `a${j}`)),
    `${outcome(rule.cost, '__cost')} AS __cost`,
    `${outcome(rule.reward, '__reward')} AS __reward`,
    ...(propensity ? ['__prop'] : []),
  ].join(', ');
}

/**
 * Every user gets rounds 0..R−1: a round without a row becomes the control action, reward 0,
 * cost 0, the state of the user's previous round (of their first round before it), marked in
 * `filled`, with a logging propensity of 1 (no decision was logged there: the control is
 * certain). `log` holds the real rows ordered by user and round.
 */
function fillCalendarRounds(log: InteractionLog, R: number, control: number[]): InteractionLog {
  const users = log.userIds.length;
  const d = log.stateNames.length;
  const A = log.actionEncodings.length;
  if (users * R > 0x7fffffff) throw new SchemaError('round.every', `${users} users × ${R} calendar rounds is too many cells; make the rounds longer`);
  const rows = users * R;
  const out: InteractionLog = {
    ...log,
    rows,
    userIndex: new Int32Array(rows),
    roundIndex: new Int32Array(rows),
    states: new Float64Array(rows * d),
    actions: new Int32Array(rows * A),
    cost: new Float64Array(rows),
    reward: new Float64Array(rows),
    filled: new Uint8Array(rows),
    ...(log.propensity ? { propensity: new Float64Array(rows).fill(1) } : {}),
  };
  const filled = out.filled as Uint8Array;
  let r = 0;
  for (let u = 0; u < users; u++) {
    const from = r;
    while (r < log.rows && log.userIndex[r] === u) r++;
    let k = from; // the user's next real row
    for (let t = 0; t < R; t++) {
      const o = u * R + t;
      out.userIndex[o] = u;
      out.roundIndex[o] = t;
      if (k < r && log.roundIndex[k] === t) {
        out.states.set(log.states.subarray(k * d, k * d + d), o * d);
        out.actions.set(log.actions.subarray(k * A, k * A + A), o * A);
        out.cost[o] = log.cost[k];
        out.reward[o] = log.reward[k];
        if (out.propensity && log.propensity) out.propensity[o] = log.propensity[k];
        k++;
        continue;
      }
      // previous round's state (already in `out`), else the first real row's
      const src = t > 0 ? out.states.subarray((o - 1) * d, o * d) : log.states.subarray(k * d, k * d + d);
      out.states.set(src, o * d);
      for (let j = 0; j < A; j++) out.actions[o * A + j] = control[j];
      filled[o] = 1;
    }
  }
  return out;
}

/** Reads a log file and builds its trajectories (see `readLog` and `buildTrajectories`). */
export async function readTrajectories(input: string | readonly string[], options: IngestOptions & BuildOptions & TrajectoryReadOptions = {}): Promise<{ trajectories: Trajectories; report: IngestReport }> {
  const { log, report } = await readLog(input, options);
  options.onProgress?.('building trajectories');
  const trajectories = buildTrajectories(log, { gamma: options.gamma });
  if (options.warnUnloggedActions !== false) report.warnings.push(...unloggedActionValues(trajectories));
  return { trajectories, report };
}

/**
 * Writes the rows of the given users, as they are in the log's files (every column, file
 * order), to `out` (CSV, CSV.gz or Parquet by extension), so the same schema reads back exactly
 * those users: `saco train --split-out` writes its held-out users this way. User ids are the
 * keys `readLog` gives (several user columns joined by `|`; with `user: null`, the row number).
 * Written to a temporary name and renamed: a failure leaves no partial file.
 *
 * @returns the number of rows written and of users found.
 * @throws {ArgumentError} for an unknown output format; {@link SchemaError} for a user column not in the file.
 */
export async function writeUserRows(
  input: string | readonly string[],
  userIds: readonly string[],
  out: string,
  options: { schema?: DataSchema; glob?: boolean; threads?: number } = {},
): Promise<{ rows: number; users: number }> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const format = formatOf(out);
  const gz = out.toLowerCase().endsWith('.gz');
  return withDuck(async (conn) => {
    const raw = await loadRawTable(conn, input, options.glob);
    const user = schema.user === null ? [] : Array.isArray(schema.user) ? schema.user : [schema.user];
    for (const c of user) {
      if (!raw.header.includes(c)) throw new SchemaError('user', `column "${c}" is not in ${raw.source.label} (columns: ${raw.header.join(', ')})`, 'SCHEMA_MISSING_COLUMN');
    }
    const key = user.length === 0 ? 'CAST(__row AS VARCHAR)' : user.length === 1 ? `CAST(${q(user[0])} AS VARCHAR)` : `concat_ws('|', ${user.map((c) => `CAST(${q(c)} AS VARCHAR)`).join(', ')})`;
    await conn.run('CREATE TABLE __keep (k VARCHAR)');
    const appender = await conn.createAppender('__keep');
    for (const id of userIds) {
      appender.appendVarchar(id);
      appender.endRow();
    }
    appender.closeSync();
    const columns = raw.header.map(q).join(', ');
    const counted = (await queryRows(conn, `SELECT count(*) AS n, count(DISTINCT ${key}) AS u FROM raw WHERE ${key} IN (SELECT k FROM __keep)`))[0];
    const tmp = tempPathFor(out);
    const copyOptions = format === 'parquet' ? 'FORMAT parquet' : `FORMAT csv, HEADER true${gz ? ", COMPRESSION 'gzip'" : ''}`;
    try {
      await conn.run(`COPY (SELECT ${columns} FROM raw WHERE ${key} IN (SELECT k FROM __keep) ORDER BY __row) TO ${quoteLiteral(tmp)} (${copyOptions})`);
      renameSync(tmp, out);
    } catch (e) {
      removeQuietly(tmp);
      throw e;
    }
    return { rows: Number(counted.n), users: Number(counted.u) };
  }, options.threads);
}
