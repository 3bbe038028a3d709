/**
 * What the commands share: strict number parsing, the one input convention (`--data FILE`,
 * `--schema FILE` and the column flags on every command that reads a log), output-path
 * checks, help decorations and table formatting.
 */
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command, Help, InvalidArgumentError, Option } from 'commander';
import { ArgumentError } from '../errors.js';
import { outcomeInputsNotice, type IngestReport } from '../data/ingest.js';
import { applySchemaFlags, DEFAULT_SCHEMA, loadSchemaFile, type DataSchema, type SchemaFlags } from '../data/schema.js';
import type { Ui } from './ui.js';

// ---------------------------------------------------------------------------------------
// Numbers: decimal only. Number() would read "0x10" as 16, "0b1" as 1 and "" as 0.

const DECIMAL = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/** A decimal number ("12", "-0.5", "1e3"), or undefined for anything else (hex, binary, Infinity, blanks). */
export function parseDecimal(value: string): number | undefined {
  const s = value.trim();
  if (!DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

export function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = parseDecimal(value);
    if (n === undefined || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    return n;
  };
}

export function numArg(min: number, max: number) {
  return (value: string): number => {
    const n = parseDecimal(value);
    if (n === undefined || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}]`);
    return n;
  };
}

export function listArg(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function numberListArg(value: string): number[] {
  const list = listArg(value).map(parseDecimal);
  if (list.length === 0 || list.some((v) => v === undefined || v < 0)) throw new InvalidArgumentError('expected comma-separated decimal numbers >= 0, e.g. 0,2,5,10');
  return list as number[];
}

/** A budget: a decimal amount > 0, or a multiple of the uniform logging spend ("0.5x"). */
export function budgetArg(value: string): number | `${number}x` {
  const s = value.trim();
  const multiple = /x$/i.test(s);
  const n = parseDecimal(multiple ? s.slice(0, -1) : s);
  if (n === undefined || n <= 0 || (multiple && /^[-+]/.test(s))) {
    throw new InvalidArgumentError('expected an amount > 0 in decimal (e.g. 2500) or a multiple of what uniform logging spends (e.g. 0.5x)');
  }
  return multiple ? (`${n}x` as `${number}x`) : n;
}

// ---------------------------------------------------------------------------------------
// Help: "(required)" on required options, examples after the option list.

const requiredNotes = new WeakMap<Option, string>();

/** Shows `note` ("required", "required unless --users") after the option's description in help. */
export function markRequired(option: Option, note = 'required'): Option {
  requiredNotes.set(option, note);
  return option;
}

/** Help settings for the whole program (inherited by every command). */
export const helpConfig: Partial<Help> = {
  optionDescription(this: Help, option: Option): string {
    const base = Help.prototype.optionDescription.call(this, option);
    const note = requiredNotes.get(option) ?? (option.mandatory ? 'required' : undefined);
    return note ? `${base} (${note})` : base;
  },
};

/** Adds an "Examples:" block to the command's help. */
export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

/** --precision of the native decoder, on the commands that decide with a CODT model. */
export function precisionOption(): Option {
  return new Option('--precision <p>', "the native engine's arithmetic: bf16 rounds the transformer layers' weights and inputs to bfloat16 (2-3x the products' speed on CPUs with AMX; decisions near a tie may differ from fp32's)")
    .choices(['fp32', 'bf16'])
    .default('fp32');
}

/** --json and --quiet, on every command. */
export function withOutputFlags(cmd: Command, json = 'print the result as one JSON document on stdout (notices and progress go to stderr)'): Command {
  return cmd.option('--json', json).option('--quiet', 'no progress on stderr');
}

// ---------------------------------------------------------------------------------------
// Input: one convention on every command that reads a log.

export interface InputOpts {
  data?: string;
  schema?: string;
  userCol?: string;
  timeCol?: string;
  stateCols?: string[];
  categorical?: string[];
  actionCols?: string[];
  costCol?: string;
  costPerAction?: Record<string, number>;
  costSql?: string;
  rewardCol?: string;
  rewardSql?: string;
  propensityCol?: string;
  exclude?: string[];
  /** --data is a pattern of files (monthly exports, parts) read as one log. */
  glob?: boolean;
}

const DATA_HELP = 'log file: .csv, .csv.gz, .tsv or .parquet';
const GLOB_HELP = 'read --data as a pattern (*, ?, [..], **) and every file it matches as one log; without it the path is one literal file';
const SCHEMA_HELP = 'schema JSON file mapping columns to roles (default: the column names saco synth writes)';

/**
 * Adds `--data <file>`, `--schema <file>` and the column flags. `dataRequired`: 'mandatory'
 * (commander enforces it), a help note for a flag that has an alternative, or false.
 */
export function withInputOptions(cmd: Command, dataRequired: 'mandatory' | string | false, dataHelp = DATA_HELP): Command {
  const data = new Option('--data <file>', dataHelp);
  if (dataRequired === 'mandatory') data.makeOptionMandatory();
  else if (dataRequired) markRequired(data, dataRequired);
  return withColumnFlags(cmd.addOption(data).option('--schema <file>', SCHEMA_HELP)).option('--glob', GLOB_HELP);
}

/** The flags that name a log's columns by role (on top of, or instead of, a schema file). */
export function withColumnFlags(cmd: Command): Command {
  for (const option of columnOptions()) cmd.addOption(option);
  return cmd;
}

// The column flags, built fresh for each command (an Option belongs to one command).
function columnOptions(): Option[] {
  const list = (flags: string, help: string) => new Option(flags, help).argParser(listArg);
  return [
    new Option('--user-col <name>', "user id column (several: a,b; 'none': every row its own user)"),
    new Option('--time-col <name>', "time column ('none': file order)"),
    list('--state-cols <list>', 'state feature columns (default: every other column but those a --reward-sql or --cost-sql reads)'),
    list('--categorical <list>', 'state columns holding categories (one-hot)'),
    list('--action-cols <list>', 'action column(s), one per action dimension'),
    new Option('--cost-col <name>', 'cost column'),
    new Option('--cost-per-action <list>', 'a log without a cost column: the cost of each value of the (first) action column, e.g. No=0,Yes=0.15').argParser(costPerActionArg),
    new Option('--cost-sql <expr>', 'cost computed by DuckDB from the log\'s columns, e.g. "0.1 * coupons_sent" (may name the reward "reward" when it is --reward-sql)'),
    new Option('--reward-col <name>', 'reward column'),
    new Option('--reward-sql <expr>', 'reward computed by DuckDB from the log\'s columns, e.g. "10 * purchase"'),
    new Option('--propensity-col <name>', "the logging policy's probability of the logged action, in (0, 1] (default: none; the log's action shares stand in)"),
    list('--exclude <list>', 'columns never used as states'),
  ];
}

const COLUMN_FLAGS = columnOptions().map((o) => o.attributeName() as keyof InputOpts);

/** Whether any column flag was given. */
export function hasColumnFlags(o: InputOpts): boolean {
  return COLUMN_FLAGS.some((k) => o[k] !== undefined);
}

/** The older positional form `FILE [SCHEMA]`, kept as aliases of --data and --schema. */
export function withPositionalAliases(cmd: Command): Command {
  return cmd.argument('[file]', 'same as --data (older form)').argument('[schema]', 'same as --schema (older form)');
}

/** One value from a flag or its positional alias; both given and different is an error. */
function oneOf(flag: string, fromFlag: string | undefined, positional: string | undefined): string | undefined {
  if (fromFlag !== undefined && positional !== undefined && path.resolve(fromFlag) !== path.resolve(positional)) {
    throw new ArgumentError(flag, `given twice with different values (${fromFlag} and ${positional}); use ${flag} only`, 'ARGUMENT_CONFLICT');
  }
  return fromFlag ?? positional;
}

/** The log file and schema of a command: flags first, then the positional aliases. */
export function resolveInput(cmd: Command, o: InputOpts, positionalFile?: string, positionalSchema?: string): { file: string; schema: DataSchema; schemaFile?: string } {
  const file = oneOf('--data', o.data, positionalFile);
  if (file === undefined) cmd.error("error: required option '--data <file>' not specified", { code: 'commander.missingMandatoryOptionValue', exitCode: 2 });
  const schemaFile = oneOf('--schema', o.schema, positionalSchema);
  return { file, schema: schemaFrom(schemaFile, o), schemaFile };
}

/** `--cost-per-action No=0,Yes=0.15`: value=cost pairs (the value may itself hold "="; the last one splits). */
export function costPerActionArg(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of listArg(value)) {
    const at = pair.lastIndexOf('=');
    const cost = at > 0 ? parseDecimal(pair.slice(at + 1)) : undefined;
    if (cost === undefined || cost < 0) throw new InvalidArgumentError(`expected value=cost pairs with costs >= 0 (e.g. No=0,Yes=0.15), got "${pair}"`);
    const key = pair.slice(0, at).trim();
    if (key in out) throw new InvalidArgumentError(`action value "${key}" is given twice`);
    out[key] = cost;
  }
  return out;
}

/** At most one of the flags that give the same role; its value. */
function oneFlag<T>(given: Array<[flag: string, value: T | undefined]>): T | undefined {
  const set = given.filter(([, v]) => v !== undefined);
  if (set.length > 1) throw new ArgumentError(set[1][0], `conflicts with ${set[0][0]}: give one of ${given.map(([f]) => f).join(', ')}`, 'ARGUMENT_CONFLICT');
  return set[0]?.[1];
}

export function schemaFrom(schemaFile: string | undefined, o: InputOpts): DataSchema {
  const base = schemaFile ? loadSchemaFile(schemaFile) : DEFAULT_SCHEMA;
  const flags: SchemaFlags = {
    user: o.userCol,
    time: o.timeCol,
    states: o.stateCols,
    categorical: o.categorical,
    actions: o.actionCols,
    cost: oneFlag<SchemaFlags['cost']>([
      ['--cost-col', o.costCol],
      ['--cost-per-action', o.costPerAction && { perAction: o.costPerAction }],
      ['--cost-sql', o.costSql !== undefined ? { sql: o.costSql } : undefined],
    ]),
    reward: oneFlag<SchemaFlags['reward']>([
      ['--reward-col', o.rewardCol],
      ['--reward-sql', o.rewardSql !== undefined ? { sql: o.rewardSql } : undefined],
    ]),
    propensity: o.propensityCol,
    exclude: o.exclude,
  };
  return applySchemaFlags(base, flags);
}

// ---------------------------------------------------------------------------------------
// Output files: checked before any work, so a bad path fails in a second, not after an epoch.

function canonical(file: string): string {
  const abs = path.resolve(file);
  try {
    return realpathSync(abs);
  } catch {
    try {
      return path.join(realpathSync(path.dirname(abs)), path.basename(abs));
    } catch {
      return abs;
    }
  }
}

/** Refuses an output path whose folder is missing or not writable, or that is a folder itself. */
export function checkWritable(flag: string, file: string): void {
  const dir = path.dirname(path.resolve(file));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ArgumentError(flag, `${file}: folder ${dir} does not exist`, 'ARGUMENT_OUTPUT');
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new ArgumentError(flag, `${file}: folder ${dir} is not writable`, 'ARGUMENT_OUTPUT');
  }
  if (existsSync(file) && statSync(file).isDirectory()) throw new ArgumentError(flag, `${file} is a folder`, 'ARGUMENT_OUTPUT');
}

/** Refuses an output that would overwrite one of the inputs (or another output). */
export function checkDistinct(paths: Array<[flag: string, file: string | undefined]>): void {
  const seen = new Map<string, string>();
  for (const [flag, file] of paths) {
    if (file === undefined) continue;
    const key = canonical(file);
    const other = seen.get(key);
    if (other) throw new ArgumentError(flag, `${file} is also ${other}: refusing to overwrite it`, 'ARGUMENT_OUTPUT');
    seen.set(key, flag);
  }
}

// ---------------------------------------------------------------------------------------
// Numbers in tables.

export const fmt = (x: number, digits = 4): string => (Number.isFinite(x) ? Number(x.toPrecision(digits)).toString() : String(x));

/** ROI for a table: "–" when nothing was spent (revenue / 0 is not a ratio). */
export const roiText = (revenue: number, cost: number, digits = 4): string => (cost > 0 ? fmt(revenue / cost, digits) : '–');

/** ROI for JSON: null when nothing was spent. */
export const roiValue = (revenue: number, cost: number): number | null => (cost > 0 ? revenue / cost : null);

/** Left-aligned columns, two spaces apart, with a rule under the head. */
export function table(head: string[], rows: string[][], indent = ''): string[] {
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  return [head, widths.map((w) => '-'.repeat(w)), ...rows].map((line) => `${indent}${line.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd()}`);
}

// ---------------------------------------------------------------------------------------
// What reading a log reported that the user should see: skipped rows and warnings.

/** What a read reported, for a command's --json: rows skipped, merged and filled, and the warnings. */
export function readSummary(report: Pick<IngestReport, 'skipped' | 'combinedRows' | 'filledRounds' | 'warnings'>): { skipped: Record<string, number>; combinedRows: number; filledRounds: number; warnings: string[] } {
  return { skipped: report.skipped, combinedRows: report.combinedRows, filledRounds: report.filledRounds, warnings: report.warnings };
}

/** Prints the rows a read skipped and the warnings it raised, as notices. */
export function noticeReadReport(ui: Ui, report: Pick<IngestReport, 'skipped' | 'warnings' | 'outcomeInputs'>): void {
  if (report.outcomeInputs.length) ui.notice(outcomeInputsNotice(report.outcomeInputs));
  if (Object.keys(report.skipped).length) ui.notice(`skipped rows: ${Object.entries(report.skipped).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  for (const warning of report.warnings) ui.notice(`warning: ${warning}`);
}
