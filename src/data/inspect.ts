/**
 * `saco data inspect`: what a log holds before anyone trains on it. Reads with the same
 * schema resolution as ingestion but reports problems (missing values, NaN, values beyond
 * MAX_ABS_VALUE, MIN_PROPENSITY, negative costs) as counts instead of failing on the first. Statistics
 * leave those values out, so they stay finite (DuckDB's STDDEV_SAMP of 1e200 throws).
 */
import path from 'node:path';
import { quoteIdent as q, queryRows, withDuck } from './duck.js';
import { calendarRounds, calendarSpec, looksNumeric, numericExpr, propensityInRange, statedCost, timeExpression } from './ingest.js';
import { applyDerivedColumns } from './derived.js';
import { loadRawTable } from './raw.js';
import { DEFAULT_SCHEMA, MAX_ABS_VALUE, resolveRoles, type DataSchema } from './schema.js';

/** An action value read back as text: a number where it is one ("1.0" is the value 1). */
const asLabel = (v: string): number | string => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

export interface InspectOptions {
  /** Read the path as a pattern and every file it matches (see IngestOptions.glob). */
  glob?: boolean;
}

export interface ColumnStats {
  column: string;
  role: string;
  type: string;
  missing: number;
  /** Values that are not numbers, in a column that must hold numbers. */
  nonNumeric: number;
  nonFinite: number;
  /** Finite values beyond MAX_ABS_VALUE (or numbers too large for a double). */
  outOfRange: number;
}

export interface NumberSummary {
  count: number;
  mean: number;
  sd: number;
  min: number;
  median: number;
  max: number;
  zeroShare: number;
}

export interface InspectReport {
  file: string;
  /** The files read, in order. */
  files: string[];
  rows: number;
  users: number;
  roundsPerUser: { min: number; median: number; max: number; histogram: Array<{ rounds: number; users: number }> };
  actions: Array<{ column: string; mix: Array<{ value: string; rows: number; share: number; meanReward: number; meanCost: number }> }>;
  cost: NumberSummary | null;
  reward: NumberSummary;
  negativeCost: number;
  /** Rows beyond the first of a user at one time (in one calendar round, with the schema's `round`). */
  duplicateTimes: number;
  /** The schema's calendar rounds, when it has them: rounds per user and duplicates count those. */
  calendar?: { every: number; start: number; startText: string; rounds: number };
  /** The schema says how to combine such rows (`combine`), so ingestion merges them instead of refusing them. */
  combinesDuplicates: boolean;
  columns: ColumnStats[];
}

/** SQL: a value that statistics may use (finite and within the bound). */
const usable = (expr: string) => `(isfinite(${expr}) AND abs(${expr}) <= ${MAX_ABS_VALUE})`;

async function summary(conn: Parameters<Parameters<typeof withDuck>[0]>[0], expr: string): Promise<NumberSummary> {
  const r = (await queryRows(conn, `SELECT count(v) AS n, avg(v) AS mean, coalesce(stddev_samp(v), 0) AS sd, min(v) AS lo, median(v) AS med, max(v) AS hi,
      avg(CASE WHEN v = 0 THEN 1.0 ELSE 0.0 END) AS zero FROM (SELECT ${expr} AS v FROM raw) WHERE ${usable('v')}`))[0];
  return { count: Number(r.n), mean: Number(r.mean), sd: Number(r.sd), min: Number(r.lo), median: Number(r.med), max: Number(r.hi), zeroShare: Number(r.zero) };
}

export async function inspectLog(input: string | readonly string[], schema: DataSchema = DEFAULT_SCHEMA, options: InspectOptions = {}): Promise<InspectReport> {
  return withDuck(async (conn) => {
    const raw = await loadRawTable(conn, input, options.glob);
    const { source, rowsRead } = raw;
    const { schema: named, header, types, outcomeInputs } = await applyDerivedColumns(conn, schema, raw.header, raw.types, path.dirname(raw.source.files[0]));
    const file = source.label;
    const roles = resolveRoles(named, header, file, outcomeInputs);
    const typeOf = (c: string) => types.get(c) ?? 'VARCHAR';
    const userKey = roles.user.length === 0 ? 'CAST(__row AS VARCHAR)' : `concat_ws('|', ${roles.user.map((c) => `CAST(${q(c)} AS VARCHAR)`).join(', ')})`;

    const roleOf = new Map<string, string>();
    roles.user.forEach((c) => roleOf.set(c, 'user'));
    if (roles.time) roleOf.set(roles.time, 'time');
    roles.states.forEach((c) => roleOf.set(c, schema.categorical?.[c] ? 'state (categorical)' : 'state'));
    roles.actions.forEach((a) => roleOf.set(a.column, 'action'));
    if (typeof roles.cost === 'string') roleOf.set(roles.cost, 'cost');
    roleOf.set(roles.reward, 'reward');
    if (roles.propensity !== undefined) roleOf.set(roles.propensity, 'propensity');
    roles.outcomeInputs.forEach((c) => roleOf.set(c, 'outcome input (not a state)'));
    const mustBeNumeric = (c: string, role: string) => ['time', 'state', 'cost', 'reward', 'propensity'].includes(role) && !schema.categorical?.[c];
    // the time as ingestion reads it: a number, or a date or timestamp (text ones included)
    const time = roles.time ? await timeExpression(conn, roles.time, typeOf(roles.time)) : null;
    const cols = [...roleOf.entries()];
    const agg = cols.flatMap(([c, role], k) => {
      const e = role === 'time' && time ? time.expr : numericExpr(c, typeOf(c));
      return [
        `count(*) FILTER (WHERE ${q(c)} IS NULL) AS m${k}`,
        mustBeNumeric(c, role) ? `count(*) FILTER (WHERE ${q(c)} IS NOT NULL AND ${e} IS NULL) AS t${k}` : `0 AS t${k}`,
        // text like 1e400 casts to Infinity: counted as out of range, not as NaN/Inf
        mustBeNumeric(c, role) ? `count(*) FILTER (WHERE CASE WHEN NOT isfinite(${e}) THEN NOT ${looksNumeric(c)} ELSE false END) AS f${k}` : `0 AS f${k}`,
        // a propensity is out of range outside (0, 1], as ingestion refuses it
        mustBeNumeric(c, role)
          ? `count(*) FILTER (WHERE CASE WHEN isfinite(${e}) THEN ${role === 'propensity' ? `NOT ${propensityInRange(e)}` : `abs(${e}) > ${MAX_ABS_VALUE}`} WHEN ${e} IS NOT NULL THEN ${looksNumeric(c)} ELSE false END) AS o${k}`
          : `0 AS o${k}`,
        `count(*) FILTER (WHERE ${q(c)} IS NOT NULL AND TRY_CAST(${q(c)} AS DOUBLE) IS NULL) AS x${k}`,
      ];
    });
    const counts = (await queryRows(conn, `SELECT ${agg.join(', ')} FROM raw`))[0];
    const columns: ColumnStats[] = cols.map(([column, role], k) => ({
      column,
      role,
      // CSV columns are read as text: show what they hold instead
      type:
        typeOf(column) !== 'VARCHAR'
          ? typeOf(column)
          : Number(counts[`x${k}`]) === 0
            ? 'number'
            : role === 'time' && time?.temporal
              ? 'timestamp (text)'
              : mustBeNumeric(column, role) && Number(counts[`t${k}`]) === 0
                ? 'true/false (text)'
                : 'text',
      missing: Number(counts[`m${k}`]),
      nonNumeric: Number(counts[`t${k}`]),
      nonFinite: Number(counts[`f${k}`]),
      outOfRange: Number(counts[`o${k}`]),
    }));

    // a user's rounds: their calendar rounds with a row, else their distinct times (rows at one
    // time are one round, merged or refused), else their rows
    let roundKey: string | null = time ? `(${time.expr})` : null;
    let calendar: InspectReport['calendar'];
    if (schema.round && time) {
      const spec = await calendarSpec(conn, schema.round, roles.time, time.temporal);
      // over the rows whose time reads (reading also leaves out rows with other bad values)
      const cut = await calendarRounds(conn, spec, time.expr, time.temporal, `isfinite(${time.expr})`);
      roundKey = cut.roundExpr;
      calendar = { every: spec.every, start: cut.start, startText: cut.startText, rounds: cut.rounds };
    }
    const perUser = await queryRows(conn, `SELECT n AS rounds, count(*) AS users FROM (SELECT ${userKey} AS u, ${roundKey ? `count(DISTINCT ${roundKey})` : 'count(*)'} AS n FROM raw GROUP BY u) GROUP BY n ORDER BY n`);
    const histogram = perUser.map((r) => ({ rounds: Number(r.rounds), users: Number(r.users) }));
    const users = histogram.reduce((s, h) => s + h.users, 0);
    let acc = 0;
    const medianRounds = histogram.find((h) => (acc += h.users) >= users / 2)?.rounds ?? 0;

    const rewardExpr = numericExpr(roles.reward, typeOf(roles.reward));
    const costExpr = typeof roles.cost === 'string' ? numericExpr(roles.cost, typeOf(roles.cost)) : null;
    const actions = [];
    // a cost stated per action value: its mean is the stated cost
    for (const [j, a] of roles.actions.entries()) {
      const stated = typeof roles.cost === 'object' && (roles.cost.dimension ?? 0) === j ? roles.cost.perAction : null;
      const mix = await queryRows(conn, `SELECT CAST(${q(a.column)} AS VARCHAR) AS v, count(*) AS n, avg(CASE WHEN ${usable(rewardExpr)} THEN ${rewardExpr} END) AS r,
          ${costExpr ? `avg(CASE WHEN ${usable(costExpr)} THEN ${costExpr} END)` : 'NULL'} AS c FROM raw GROUP BY v ORDER BY TRY_CAST(v AS DOUBLE) NULLS LAST, v`);
      actions.push({
        column: a.column,
        mix: mix.map((m) => ({ value: m.v === null ? '(missing)' : String(m.v), rows: Number(m.n), share: Number(m.n) / rowsRead, meanReward: Number(m.r), meanCost: m.c !== null ? Number(m.c) : stated && m.v !== null ? (statedCost(stated, asLabel(String(m.v))) ?? NaN) : NaN })),
      });
    }
    const negativeCost = costExpr ? Number((await queryRows(conn, `SELECT count(*) FILTER (WHERE ${costExpr} < 0) AS n FROM raw`))[0].n) : 0;
    const duplicateTimes =
      roles.user.length > 0 && roundKey
        ? Number((await queryRows(conn, `SELECT coalesce(sum(n - 1), 0) AS d FROM (SELECT count(*) AS n FROM raw GROUP BY ${userKey}, ${roundKey} HAVING count(*) > 1)`))[0].d)
        : 0;
    return {
      file,
      files: source.files,
      rows: rowsRead,
      users,
      roundsPerUser: { min: histogram[0]?.rounds ?? 0, median: medianRounds, max: histogram[histogram.length - 1]?.rounds ?? 0, histogram },
      actions,
      cost: costExpr ? await summary(conn, costExpr) : null,
      reward: await summary(conn, rewardExpr),
      negativeCost,
      duplicateTimes,
      combinesDuplicates: schema.combine !== undefined,
      ...(calendar ? { calendar } : {}),
      columns,
    };
  });
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? Number(x.toPrecision(digits)).toString() : '-');

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The report as the text `saco data inspect` prints. */
export function formatInspectReport(r: InspectReport): string {
  const out: string[] = [];
  out.push(`${r.file}: ${r.rows} rows, ${r.users} users`);
  if (r.files.length > 1 || r.files[0] !== r.file) out.push(`read ${r.files.length} file(s): ${r.files.join(', ')}`);
  if (r.calendar) out.push(`calendar rounds from ${r.calendar.startText}: ${r.calendar.rounds} (a round in which a user has no row is filled as the control action)`);
  out.push(`rounds ${r.calendar ? 'with a row ' : ''}per user: min ${r.roundsPerUser.min}, median ${r.roundsPerUser.median}, max ${r.roundsPerUser.max}`);
  const hist = r.roundsPerUser.histogram;
  if (hist.length <= 12) out.push(`  ${hist.map((h) => `${h.rounds}: ${h.users}`).join(', ')}`);
  for (const a of r.actions) {
    out.push('', `action mix (${a.column}):`);
    out.push(table(['value', 'rows', 'share', 'mean reward', 'mean cost'], a.mix.map((m) => [m.value, String(m.rows), fmt(m.share, 3), fmt(m.meanReward), fmt(m.meanCost)])));
  }
  out.push('', 'cost and reward:');
  const sRow = (name: string, s: NumberSummary) => [name, String(s.count), fmt(s.mean), fmt(s.sd), fmt(s.min), fmt(s.median), fmt(s.max), fmt(s.zeroShare, 3)];
  out.push(table(['', 'count', 'mean', 'sd', 'min', 'median', 'max', 'zero share'], [...(r.cost ? [sRow('cost', r.cost)] : []), sRow('reward', r.reward)]));
  if (!r.cost) out.push('(cost is given per action by the schema, not a column)');
  out.push('', 'columns:');
  out.push(
    table(
      ['column', 'role', 'type', 'missing', 'non-numeric', 'NaN/Inf', 'out of range'],
      r.columns.map((c) => [c.column, c.role, c.type, String(c.missing), String(c.nonNumeric), String(c.nonFinite), String(c.outOfRange)]),
    ),
  );
  const issues: string[] = [];
  const bad = r.columns.filter((c) => c.missing + c.nonNumeric + c.nonFinite > 0);
  if (bad.length) issues.push(`${bad.length} column(s) with missing, non-numeric or non-finite values`);
  const huge = r.columns.filter((c) => c.outOfRange > 0 && c.role !== 'propensity');
  if (huge.length) issues.push(`values out of range (|v| > ${MAX_ABS_VALUE.toExponential()}) in ${huge.map((c) => `${c.column} (${c.outOfRange})`).join(', ')}; statistics leave them out`);
  const improbable = r.columns.find((c) => c.outOfRange > 0 && c.role === 'propensity');
  if (improbable) issues.push(`logging propensities outside (0, 1] in ${improbable.column} (${improbable.outOfRange})`);
  if (r.negativeCost) issues.push(`${r.negativeCost} negative cost(s)`);
  const slot = r.calendar ? '(user, calendar round)' : '(user, time)';
  if (r.duplicateTimes && !r.combinesDuplicates) issues.push(`${r.duplicateTimes} duplicate ${slot} row(s)`);
  if (r.duplicateTimes && r.combinesDuplicates) out.push('', `${r.duplicateTimes} row(s) share a ${slot} with an earlier one: merged as the schema's "combine" says`);
  out.push('', issues.length ? `problems: ${issues.join('; ')} (training would stop on them; --skip-bad-rows skips and counts them)` : 'no problems found');
  return out.join('\n');
}
