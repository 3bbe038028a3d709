/**
 * A schema maps the user's column names onto the roles of a logged interaction:
 * user, time, state features, action(s), cost and reward. Given as a JSON file, CLI
 * flags, or not at all: files written by `saco synth` use the default names.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SchemaError } from '../errors.js';

/** One action dimension: its column and, optionally, the allowed values in index order. */
export interface ActionColumn {
  column: string;
  /** Allowed values; any other value in the file is an error. Omitted: the values found, sorted. */
  values?: Array<number | string>;
  /**
   * The no-treatment value (no coupon): what the budget issues instead of a coupon it
   * withholds, and the base of every uplift and of λ's range. Omitted: the one value that
   * never costs anything in the log (an error names the candidates when that is not one).
   */
  control?: number | string;
}

/** A column computed by DuckDB from the file's columns (`{ "sql": "10 * purchase" }`). */
export interface DerivedColumn {
  sql: string;
}

/**
 * Another file joined onto the log's rows before anything else (e.g. a campaign table that
 * holds each campaign's start date). Its rows are matched on `on` (one column of both files,
 * or several matched together, compared as text), each key at most once in it; its other
 * columns (or the `columns` listed) join the log's, which must not have them already.
 * `aggregate` instead groups the file by the key and joins one row per key of named SQL
 * aggregates (e.g. `{ "redemptions": "count(*)" }` over a file of redemption events). `how`:
 * "left" (default) keeps every log row, with empty values where the file has no match;
 * "inner" keeps only the log rows that match.
 */
export interface JoinedFile {
  /**
   * CSV or Parquet. A relative path is looked up in the log file's folder, then in the schema
   * file's folder (a schema read by loadSchemaFile), then in the working directory.
   */
  file: string;
  /** The key column(s), in both files. */
  on: string | string[];
  how?: 'left' | 'inner';
  /** Only these of the file's columns join (default: every column but the key). */
  columns?: string[];
  /** One row per key of these aggregates of the file's rows, by name (DuckDB SQL, e.g. "count(*)", "max(day)"). */
  aggregate?: Record<string, string>;
}

/** A join's key columns as a list. */
export function joinKeys(join: Pick<JoinedFile, 'on'>): string[] {
  return typeof join.on === 'string' ? [join.on] : join.on;
}

/** Cost that the log does not record, given per value of one action dimension (e.g. a per-e-mail cost). */
export interface CostPerAction {
  perAction: Record<string, number>;
  /** Which action dimension the keys refer to (default 0). */
  dimension?: number;
}

/**
 * Rounds by calendar: round index = floor((time − start) / every), so users who started late or
 * skipped a round line up on the same campaign rounds. Every user then has the rounds
 * 0..R−1 of the log (R = the last round anyone has + 1); a round in which a user has no row is
 * filled as the control action with reward 0 and cost 0, the state carried from the user's
 * previous round (from the next one before their first row), and marked as filled.
 */
export interface CalendarRounds {
  /**
   * Length of a round. A number: in the time column's units for a numeric time column, in
   * hours for a date or timestamp column (168: a week). A text duration ("7 days",
   * "12 hours", "2 weeks", "90 minutes"): date or timestamp columns only.
   */
  every: number | string;
  /**
   * Start of round 0: a number in the time column's units (numeric columns), or a date or
   * timestamp text ("2019-01-07", "2019-01-07 06:00:00") for date or timestamp columns.
   * Omitted: the earliest time in the log, which differs between a log and a part of it:
   * state it to read a held-out file (`saco train --split-out`) on the same rounds.
   */
  start?: number | string;
}

/**
 * How several rows of one user in one round become one (without it they are an error that
 * names the rows). The state is always the earliest row's (by time, then file order).
 */
export interface CombineRule {
  /** Default 'sum'. */
  reward?: 'sum' | 'max' | 'first';
  /** Default 'sum'. */
  cost?: 'sum' | 'max' | 'first';
  /**
   * Per action dimension: 'first', the earliest row's value (default), or 'max', the value
   * listed last in the encoding (the largest, when values are numbers and not declared).
   */
  action?: 'max' | 'first';
}

export interface DataSchema {
  /** Files joined onto the log's rows first, in order (see {@link JoinedFile}). */
  join?: JoinedFile[];
  /**
   * Named columns computed by DuckDB after the joins, in the order listed (each may use the
   * ones before it, the file's columns and the joined ones; window functions work, e.g. a
   * campaign's rank by start date), usable by name in every role below.
   */
  columns?: Record<string, DerivedColumn>;
  /** Column(s) that identify a user; several are joined into one key; null: every row is its own user (T = 1). */
  user: string | string[] | null;
  /** Column that orders a user's rows (number, date or timestamp); null: file order. */
  time: string | null;
  /** State feature columns; omitted: every column not used by another role, not excluded and not read by a reward or cost SQL expression. */
  states?: string[];
  /** State columns that hold categories: one-hot (default) or a single index column. */
  categorical?: Record<string, 'onehot' | 'index'>;
  /** One entry per action dimension; omitted: `action` or every `action_*` column. */
  actions?: ActionColumn[];
  /** A cost column, a stated cost per action value, or an SQL expression (may use `reward`). */
  cost: string | CostPerAction | DerivedColumn;
  /** A reward column, or an SQL expression over the file's columns. */
  reward: string | DerivedColumn;
  /**
   * The logging policy's probability of the logged action (joint over the action dimensions),
   * in (0, 1]: a column, or an SQL expression (`{ "sql": "1.0 / 3" }` for a log randomised
   * uniformly over three arms). Off-policy estimates and DFCL's decision objective weight
   * logged outcomes by its inverse; omitted, they use the log's joint-action shares, which
   * are right only for a log randomised independently of the users.
   */
  propensity?: string | DerivedColumn;
  /** Columns never used as states. */
  exclude?: string[];
  /** Rounds by calendar buckets of the time column (default: a user's rows in time order are rounds 0, 1, …). */
  round?: CalendarRounds;
  /** Several rows of one user in one round (or at one time, without `round`): combined as stated. */
  combine?: CombineRule;
  /** The folder of the schema file it was read from (set by loadSchemaFile): where joined files are looked up after the log's folder. */
  schemaDir?: string;
}

/** The column names written by `saco synth`. */
export const DEFAULT_SCHEMA: DataSchema = {
  user: 'user_id',
  time: 'time',
  cost: 'cost',
  reward: 'reward',
};

/**
 * The largest magnitude a number in a log may have. The model works in float32 (largest
 * finite 3.4e38), so a return-to-go summing up to 3e8 rounds of 1e30 still fits, and in
 * float64 squares (1e60) and sums over any row count stay finite; beyond this, means and
 * spreads overflow (a reward of 1e200 made RTG Infinity and the normalisation NaN).
 */
export const MAX_ABS_VALUE = 1e30;

/** The smallest logging propensity a log may hold: its inverse weights an outcome (up to MAX_ABS_VALUE), and float32 keeps it. */
export const MIN_PROPENSITY = 1e-30;

const KNOWN_FIELDS = new Set(['join', 'columns', 'user', 'time', 'states', 'categorical', 'actions', 'cost', 'reward', 'propensity', 'exclude', 'round', 'combine']);

const DURATION_UNITS: Record<string, number> = {
  s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hr: 3600, hour: 3600, d: 86400, day: 86400, w: 604800, week: 604800,
};

/** Seconds in a text duration ("7 days", "12h", "1.5 hours"); undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*([0-9]*\.?[0-9]+)\s*([a-z]+)\s*$/i.exec(text);
  if (!m) return undefined;
  const word = m[2].toLowerCase();
  // plurals of the words ("days", "hrs"), not of one-letter units ("ms" is not minutes)
  const unit = DURATION_UNITS[word] ?? (word.length > 2 && word.endsWith('s') ? DURATION_UNITS[word.slice(0, -1)] : undefined);
  const seconds = unit === undefined ? NaN : Number(m[1]) * unit;
  return Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}

function parseRound(v: unknown, origin: string): CalendarRounds {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaError(`${origin}.round`, 'must be { "every": number or duration, "start"?: number or date }');
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) if (key !== 'every' && key !== 'start') throw new SchemaError(`${origin}.round.${key}`, 'unknown field (known: every, start)');
  const every = o.every;
  if (typeof every === 'number') {
    if (!Number.isFinite(every) || every <= 0) throw new SchemaError(`${origin}.round.every`, `must be a number > 0, got ${every}`);
  } else if (typeof every === 'string') {
    if (parseDuration(every) === undefined) throw new SchemaError(`${origin}.round.every`, `"${every}" is not a duration like "7 days", "12 hours", "2 weeks" or "30 minutes"`);
  } else throw new SchemaError(`${origin}.round.every`, 'is required: the round length, a number (the time column\'s units; hours for dates and timestamps) or a duration like "7 days"');
  const start = o.start;
  if (start !== undefined && !(typeof start === 'number' && Number.isFinite(start)) && !(typeof start === 'string' && start.trim() !== '')) {
    throw new SchemaError(`${origin}.round.start`, 'must be a number (the time column\'s units) or a date or timestamp text');
  }
  return start === undefined ? { every } : { every, start };
}

function parseCombine(v: unknown, origin: string): CombineRule {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaError(`${origin}.combine`, 'must be { "reward"?: "sum"|"max"|"first", "cost"?: …, "action"?: "max"|"first" }');
  const o = v as Record<string, unknown>;
  const allowed: Record<string, string[]> = { reward: ['sum', 'max', 'first'], cost: ['sum', 'max', 'first'], action: ['max', 'first'] };
  const out: CombineRule = {};
  for (const [key, value] of Object.entries(o)) {
    const ok = allowed[key];
    if (!ok) throw new SchemaError(`${origin}.combine.${key}`, 'unknown field (known: reward, cost, action)');
    if (typeof value !== 'string' || !ok.includes(value)) throw new SchemaError(`${origin}.combine.${key}`, `must be one of ${ok.map((x) => `"${x}"`).join(', ')}`);
    (out as Record<string, string>)[key] = value;
  }
  return out;
}

function isSql(v: unknown): v is DerivedColumn {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'sql' in v;
}

/** One SQL expression: not empty, no statement separator. */
function checkSql(sql: unknown, field: string): string {
  if (typeof sql !== 'string' || sql.trim() === '') throw new SchemaError(field, 'must be a non-empty SQL expression');
  if (sql.includes(';')) throw new SchemaError(field, 'must be one SQL expression (no ";")');
  return sql;
}

const JOIN_SHAPE = '{ "file": path, "on": column or [columns], "how"?: "left" | "inner", "columns"?: [columns] or "aggregate"?: { name: "SQL aggregate" } }';

function parseJoin(v: unknown, origin: string): JoinedFile[] {
  if (!Array.isArray(v)) throw new SchemaError(`${origin}.join`, `must be a list of ${JOIN_SHAPE}`);
  return v.map((entry, j) => {
    const field = `${origin}.join[${j}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new SchemaError(field, `must be ${JOIN_SHAPE}`);
    const e = entry as Record<string, unknown>;
    const known = ['file', 'on', 'how', 'columns', 'aggregate'];
    for (const key of Object.keys(e)) if (!known.includes(key)) throw new SchemaError(`${field}.${key}`, `unknown field (known: ${known.join(', ')})`);
    if (typeof e.file !== 'string' || e.file.length === 0) throw new SchemaError(`${field}.file`, 'must be a path (relative paths are read from the log file\'s folder)');
    const on = e.on;
    if (!(typeof on === 'string' && on.length > 0) && !(isStringArray(on) && on.length > 0)) throw new SchemaError(`${field}.on`, 'must be a column of both files, or a list of them');
    if (Array.isArray(on) && new Set(on).size !== on.length) throw new SchemaError(`${field}.on`, 'lists a column twice');
    if (e.how !== undefined && e.how !== 'left' && e.how !== 'inner') throw new SchemaError(`${field}.how`, 'must be "left" or "inner"');
    if (e.columns !== undefined && e.aggregate !== undefined) throw new SchemaError(`${field}.columns`, '"columns" and "aggregate" cannot both be given: an aggregate names its own columns');
    const out: JoinedFile = { file: e.file, on: on as string | string[], ...(e.how ? { how: e.how as 'left' | 'inner' } : {}) };
    if (e.columns !== undefined) {
      if (!isStringArray(e.columns) || e.columns.length === 0) throw new SchemaError(`${field}.columns`, 'must be a non-empty list of the file\'s column names');
      out.columns = e.columns;
    }
    if (e.aggregate !== undefined) {
      const a = e.aggregate;
      if (typeof a !== 'object' || a === null || Array.isArray(a) || Object.keys(a).length === 0) throw new SchemaError(`${field}.aggregate`, 'must be { name: "SQL aggregate", ... }, e.g. { "redemptions": "count(*)" }');
      out.aggregate = Object.fromEntries(
        Object.entries(a).map(([name, sql]) => {
          if (name.trim() === '') throw new SchemaError(`${field}.aggregate`, 'names a column ""');
          return [name, checkSql(sql, `${field}.aggregate.${name}`)];
        }),
      );
    }
    return out;
  });
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0);
}

/** Checks the shape of a parsed JSON schema and normalises shorthands; throws SchemaError. */
export function parseSchema(raw: unknown, origin = 'schema'): DataSchema {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SchemaError(origin, 'must be a JSON object');
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN_FIELDS.has(key)) throw new SchemaError(`${origin}.${key}`, `unknown field (known: ${[...KNOWN_FIELDS].join(', ')})`);
  }
  const schema: DataSchema = { ...DEFAULT_SCHEMA };
  if ('join' in o && o.join !== undefined && o.join !== null) schema.join = parseJoin(o.join, origin);
  if ('columns' in o && o.columns !== undefined && o.columns !== null) {
    const c = o.columns;
    if (typeof c !== 'object' || Array.isArray(c)) throw new SchemaError(`${origin}.columns`, 'must be an object { "name": { "sql": "expression" } }');
    schema.columns = {};
    for (const [name, v] of Object.entries(c as Record<string, unknown>)) {
      if (name.trim() === '' || name.startsWith('__')) throw new SchemaError(`${origin}.columns`, `"${name}" cannot name a column (empty, or starting with "__")`);
      if (!isSql(v)) throw new SchemaError(`${origin}.columns.${name}`, 'must be { "sql": "expression" }');
      schema.columns[name] = { sql: checkSql(v.sql, `${origin}.columns.${name}.sql`) };
    }
  }
  if ('user' in o) {
    if (o.user !== null && typeof o.user !== 'string' && !isStringArray(o.user)) throw new SchemaError(`${origin}.user`, 'must be a column name, a list of names, or null');
    schema.user = o.user as DataSchema['user'];
  }
  if ('time' in o) {
    if (o.time !== null && typeof o.time !== 'string') throw new SchemaError(`${origin}.time`, 'must be a column name or null');
    schema.time = o.time as string | null;
  }
  if ('states' in o) {
    if (!isStringArray(o.states)) throw new SchemaError(`${origin}.states`, 'must be a list of column names');
    schema.states = o.states;
  }
  if ('exclude' in o) {
    if (!isStringArray(o.exclude)) throw new SchemaError(`${origin}.exclude`, 'must be a list of column names');
    schema.exclude = o.exclude;
  }
  if ('categorical' in o) {
    const c = o.categorical;
    if (isStringArray(c)) schema.categorical = Object.fromEntries(c.map((name) => [name, 'onehot' as const]));
    else if (typeof c === 'object' && c !== null && !Array.isArray(c) && Object.values(c).every((v) => v === 'onehot' || v === 'index')) {
      schema.categorical = c as Record<string, 'onehot' | 'index'>;
    } else throw new SchemaError(`${origin}.categorical`, "must be a list of column names or an object { column: 'onehot' | 'index' }");
  }
  if ('actions' in o) {
    const a = o.actions;
    const list = typeof a === 'string' ? [a] : a;
    if (!Array.isArray(list) || list.length === 0) throw new SchemaError(`${origin}.actions`, 'must be a column name or a non-empty list');
    schema.actions = list.map((entry, j) => {
      if (typeof entry === 'string' && entry.length > 0) return { column: entry };
      if (typeof entry === 'object' && entry !== null && typeof (entry as ActionColumn).column === 'string') {
        const e = entry as ActionColumn;
        if (e.values !== undefined) {
          if (!Array.isArray(e.values) || e.values.length === 0 || !e.values.every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) {
            throw new SchemaError(`${origin}.actions[${j}].values`, 'must be a non-empty list of numbers or strings');
          }
          if (new Set(e.values.map(String)).size !== e.values.length) throw new SchemaError(`${origin}.actions[${j}].values`, 'lists a value twice');
        }
        if (e.control !== undefined) {
          if (typeof e.control !== 'string' && !(typeof e.control === 'number' && Number.isFinite(e.control))) throw new SchemaError(`${origin}.actions[${j}].control`, 'must be a number or a string');
          if (e.values && !e.values.some((v) => String(v) === String(e.control))) throw new SchemaError(`${origin}.actions[${j}].control`, `${JSON.stringify(e.control)} is not among the values ${JSON.stringify(e.values)}`);
        }
        return { column: e.column, values: e.values, ...(e.control !== undefined ? { control: e.control } : {}) };
      }
      throw new SchemaError(`${origin}.actions[${j}]`, 'must be a column name or { column, values?, control? }');
    });
  }
  if ('cost' in o) {
    const c = o.cost;
    if (typeof c === 'string' && c.length > 0) schema.cost = c;
    else if (isSql(c)) schema.cost = { sql: checkSql(c.sql, `${origin}.cost.sql`) };
    else if (typeof c === 'object' && c !== null && typeof (c as CostPerAction).perAction === 'object' && (c as CostPerAction).perAction !== null) {
      const per = (c as CostPerAction).perAction;
      for (const [k, v] of Object.entries(per)) {
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_ABS_VALUE) {
          throw new SchemaError(`${origin}.cost.perAction.${k}`, `must be a number from 0 to ${MAX_ABS_VALUE.toExponential()}`);
        }
      }
      const dimension = (c as CostPerAction).dimension ?? 0;
      if (!Number.isInteger(dimension) || dimension < 0) throw new SchemaError(`${origin}.cost.dimension`, 'must be an integer >= 0');
      schema.cost = { perAction: per, dimension };
    } else throw new SchemaError(`${origin}.cost`, 'must be a column name, { perAction: { value: cost } } or { sql: "expression" }');
  }
  if ('reward' in o) {
    if (isSql(o.reward)) schema.reward = { sql: checkSql(o.reward.sql, `${origin}.reward.sql`) };
    else if (typeof o.reward !== 'string' || o.reward.length === 0) throw new SchemaError(`${origin}.reward`, 'must be a column name or { sql: "expression" }');
    else schema.reward = o.reward;
  }
  if ('propensity' in o && o.propensity !== undefined && o.propensity !== null) {
    if (isSql(o.propensity)) schema.propensity = { sql: checkSql(o.propensity.sql, `${origin}.propensity.sql`) };
    else if (typeof o.propensity !== 'string' || o.propensity.length === 0) throw new SchemaError(`${origin}.propensity`, 'must be a column name or { sql: "expression" } (the logging probability of the logged action, in (0, 1])');
    else schema.propensity = o.propensity;
  }
  if ('round' in o && o.round !== undefined && o.round !== null) schema.round = parseRound(o.round, origin);
  if ('combine' in o && o.combine !== undefined && o.combine !== null) schema.combine = parseCombine(o.combine, origin);
  if (schema.propensity !== undefined && schema.combine?.action === 'max') {
    // the round's action may then come from a later row than its propensity (the first row's)
    throw new SchemaError(`${origin}.combine.action`, '"max" takes a round\'s action from any of its rows, but a logging propensity belongs to one row\'s action: use "first" with "propensity"');
  }
  return schema;
}

/** Reads and parses a schema JSON file. */
export function loadSchemaFile(file: string): DataSchema {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SchemaError(file, `cannot read: ${(e as Error).message}`, 'SCHEMA_UNREADABLE');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SchemaError(file, `is not valid JSON: ${(e as Error).message}`, 'SCHEMA_NOT_JSON');
  }
  const schema = parseSchema(raw, file);
  if (schema.join) schema.schemaDir = path.dirname(path.resolve(file));
  return schema;
}

/** Flags that override a schema field by field (the CLI's --user-col etc.). */
export interface SchemaFlags {
  user?: string;
  time?: string;
  states?: string[];
  categorical?: string[];
  actions?: string[];
  /** A cost column, a cost per value of the first action dimension, or an SQL expression. */
  cost?: string | CostPerAction | DerivedColumn;
  /** A reward column or an SQL expression. */
  reward?: string | DerivedColumn;
  propensity?: string;
  exclude?: string[];
}

export function applySchemaFlags(base: DataSchema, flags: SchemaFlags): DataSchema {
  const s: DataSchema = { ...base };
  const none = (v: string) => (v === 'none' || v === '' ? null : v);
  if (flags.user !== undefined) s.user = flags.user.includes(',') ? flags.user.split(',') : none(flags.user);
  if (flags.time !== undefined) s.time = none(flags.time);
  if (flags.states) s.states = flags.states;
  if (flags.categorical) s.categorical = { ...(s.categorical ?? {}), ...Object.fromEntries(flags.categorical.map((c) => [c, 'onehot' as const])) };
  if (flags.actions) s.actions = flags.actions.map((column) => ({ column }));
  if (flags.cost !== undefined) s.cost = flags.cost;
  if (flags.reward !== undefined) s.reward = flags.reward;
  if (flags.propensity !== undefined) s.propensity = flags.propensity;
  if (flags.exclude) s.exclude = flags.exclude;
  const { schemaDir, ...fields } = s;
  const parsed = parseSchema(fields, 'schema');
  if (schemaDir !== undefined) parsed.schemaDir = schemaDir;
  return parsed;
}

/** The columns a schema names, by role; a column that plays two roles (or one twice) is an error. */
export interface ResolvedRoles {
  user: string[];
  time: string | null;
  states: string[];
  actions: ActionColumn[];
  cost: string | CostPerAction;
  reward: string;
  /** The logging propensity column, if the schema names one. */
  propensity?: string;
  /** Columns the reward or cost is computed from, left out of the default states (applyDerivedColumns' outcomeInputs). */
  outcomeInputs: string[];
}

// What to do when the log has no such column at all (an RCT rarely logs a cost).
const MISSING_ROLE_HINTS: Record<string, string> = {
  cost: ' Name the cost column with --cost-col; a log without one states it per action (--cost-per-action No=0,Yes=0.15, or "cost": { "perAction": { … } } in a schema file) or computes it (--cost-sql, "cost": { "sql": "…" }).',
  reward: ' Name the reward column with --reward-col, or compute it from the log\'s columns (--reward-sql "10 * purchase", "reward": { "sql": "…" } in a schema file).',
};

/**
 * Resolves the schema against the file's header: infers actions and states where omitted (the
 * default states leave out `outcomeInputs`, the columns the reward and cost are computed from),
 * rejects unknown columns (with a did-you-mean) and columns named twice.
 */
export function resolveRoles(schema: DataSchema, header: string[], file: string, outcomeInputs: string[] = []): ResolvedRoles {
  if (typeof schema.reward !== 'string' || (typeof schema.cost === 'object' && 'sql' in schema.cost) || (schema.propensity !== undefined && typeof schema.propensity !== 'string')) {
    throw new SchemaError('reward', 'derived columns must be added to the table first (applyDerivedColumns)', 'SCHEMA_INTERNAL');
  }
  const present = new Set(header);
  const need = (column: string, field: string) => {
    if (!present.has(column)) {
      const close = header.find((h) => h.toLowerCase() === column.toLowerCase() || h.replace(/[_\s-]/g, '').toLowerCase() === column.replace(/[_\s-]/g, '').toLowerCase());
      const hint = close ? ` Did you mean "${close}"?` : (MISSING_ROLE_HINTS[field] ?? '');
      throw new SchemaError(field, `column "${column}" is not in ${file} (columns: ${header.join(', ')}).${hint}`, 'SCHEMA_MISSING_COLUMN');
    }
  };
  const user = schema.user === null ? [] : Array.isArray(schema.user) ? schema.user : [schema.user];
  user.forEach((c) => need(c, 'user'));
  if (schema.time !== null) need(schema.time, 'time');
  const actions = schema.actions ?? header.filter((h) => h === 'action' || h.startsWith('action_')).map((column) => ({ column }));
  if (actions.length === 0) throw new SchemaError('actions', `no action column given and none named "action" or "action_*" in ${file}`, 'SCHEMA_MISSING_COLUMN');
  actions.forEach((a, j) => need(a.column, `actions[${j}]`));
  if (typeof schema.cost === 'string') need(schema.cost, 'cost');
  else if ((schema.cost.dimension ?? 0) >= actions.length) throw new SchemaError('cost.dimension', `there are only ${actions.length} action dimension(s)`);
  need(schema.reward, 'reward');
  const propensity = schema.propensity as string | undefined;
  if (propensity !== undefined) need(propensity, 'propensity');

  const used: Array<[string, string]> = [
    ...user.map((c): [string, string] => [c, 'user']),
    ...(schema.time !== null ? [[schema.time, 'time'] as [string, string]] : []),
    ...actions.map((a, j): [string, string] => [a.column, `actions[${j}]`]),
    ...(typeof schema.cost === 'string' ? [[schema.cost, 'cost'] as [string, string]] : []),
    [schema.reward, 'reward'],
    ...(propensity !== undefined ? [[propensity, 'propensity'] as [string, string]] : []),
  ];
  const exclude = new Set(schema.exclude ?? []);
  (schema.exclude ?? []).forEach((c) => need(c, 'exclude'));
  const usedNames = new Set(used.map(([c]) => c));
  const inputs = outcomeInputs.filter((c) => !usedNames.has(c) && !exclude.has(c));
  const states = schema.states ?? header.filter((h) => !usedNames.has(h) && !exclude.has(h) && !inputs.includes(h));
  states.forEach((c, j) => need(c, `states[${j}]`));
  for (const c of Object.keys(schema.categorical ?? {})) {
    if (!states.includes(c)) throw new SchemaError(`categorical.${c}`, `"${c}" is not a state column`);
  }

  const seen = new Map<string, string>();
  for (const [column, role] of [...used, ...states.map((c, j): [string, string] => [c, `states[${j}]`])]) {
    const before = seen.get(column);
    if (before !== undefined) throw new SchemaError(role, `column "${column}" is already used as ${before}; a column may play one role once`, 'SCHEMA_DUPLICATE_COLUMN');
    seen.set(column, role);
  }
  if (states.length === 0) {
    throw new SchemaError('states', `no state columns left in ${file}${inputs.length ? ` (${inputs.join(', ')}: read by the reward or cost, so not states unless named in "states" or --state-cols)` : ''}`);
  }
  return { user, time: schema.time, states, actions, cost: schema.cost as string | CostPerAction, reward: schema.reward, ...(propensity !== undefined ? { propensity } : {}), outcomeInputs: schema.states ? [] : inputs };
}
