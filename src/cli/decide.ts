/**
 * `saco decide`: every user's coupon for the next round from their logged history (the batch
 * job run before each round), written as CSV or Parquet. Paths are checked before any work and
 * the file is written through a temporary name, so a failure leaves no file.
 */
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { ArgumentError } from '../errors.js';
import { formatOf } from '../data/duck.js';
import { readOnnx } from '../model/onnx.js';
import { loadNativeModel, type NativePrecision } from '../native/index.js';
import { checkDecisionLambda } from '../solve/index.js';
import { decideBatch, readCurrentStates, readHistoryForModel, writeDecisions, type CurrentStates } from '../solve/decide-batch.js';
import { checkDistinct, checkWritable, examples, fmt, noticeReadReport, numArg, precisionOption, readSummary, resolveInput, withInputOptions, withOutputFlags, type InputOpts } from './common.js';
import { Ui } from './ui.js';

interface DecideOpts extends InputOpts {
  model: string;
  states?: string;
  precision: NativePrecision;
  users?: string;
  lambda: number;
  out: string;
  skipBadRows?: boolean;
  json?: boolean;
  quiet?: boolean;
}

async function runDecide(o: DecideOpts, cmd: Command): Promise<void> {
  const t0 = performance.now();
  const { file, schema, schemaFile } = resolveInput(cmd, o, o.users);
  try {
    formatOf(o.out);
  } catch {
    throw new ArgumentError('--out', `${o.out}: decisions are written as .csv, .csv.gz or .parquet`, 'ARGUMENT_OUTPUT');
  }
  checkDistinct([
    ['--model', o.model],
    ['--data', file],
    ['--schema', schemaFile],
    ['--out', o.out],
  ]);
  checkDistinct([
    ['--states', o.states],
    ['--out', o.out],
  ]);
  checkWritable('--out', o.out);
  const ui = new Ui(o);
  try {
    ui.phase(`reading ${o.model}`);
    const model = readOnnx(o.model);
    checkDecisionLambda(model.meta, o.lambda);
    ui.phase(`reading ${file}`);
    const { trajectories, report } = await readHistoryForModel(file, model.meta, { schema, modelName: `the model ${o.model}`, skipBadRows: o.skipBadRows, glob: o.glob, onProgress: (s) => ui.phase(s) });
    noticeReadReport(ui, report);
    if (report.filledRounds > 0) ui.info(`${report.filledRounds} empty calendar round(s) filled as the control action`);
    let current: CurrentStates | undefined;
    if (o.states !== undefined) {
      ui.phase(`reading ${o.states}`);
      current = await readCurrentStates(o.states, model.meta, trajectories, { schema, modelName: `the model ${o.model}`, skipBadRows: o.skipBadRows, glob: o.glob, onProgress: (s) => ui.phase(s) });
      noticeReadReport(ui, current.report);
      if (current.carried > 0) ui.notice(`${current.carried} of ${trajectories.users} users have no row in ${o.states}: their last logged state is carried forward`);
      if (current.newUsers > 0) ui.notice(`${current.newUsers} user(s) in ${o.states} have no logged history in ${file}: decided at their round 0`);
    }
    const history = current?.history ?? trajectories;
    ui.phase(`deciding for ${history.users} users`);
    const handle = loadNativeModel(model, { precision: o.precision });
    let decisions;
    try {
      decisions = await decideBatch({ model: handle, lambda: o.lambda, history, states: current?.states });
    } finally {
      handle.unload();
    }
    ui.phase(`writing ${o.out}`);
    await writeDecisions(decisions, o.out);
    ui.done();
    const A = decisions.actionColumns.length;
    const mix = decisions.actionColumns.map((column, j) => {
      const counts = new Map<string, number>();
      for (let i = 0; i < decisions.users; i++) {
        const key = String(decisions.labels[i * A + j]);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return { column, counts: Object.fromEntries([...counts].sort((a, b) => b[1] - a[1])) };
    });
    const rounds = [...new Set(decisions.round)].sort((a, b) => a - b);
    const seconds = (performance.now() - t0) / 1000;
    const states = current ? { file: o.states, matched: current.matched, carriedForward: current.carried, newUsers: current.newUsers, read: readSummary(current.report) } : null;
    const doc = { out: o.out, users: decisions.users, lambda: o.lambda, rounds, mix, states, read: readSummary(report), seconds };
    ui.result(doc, () => [
      `wrote ${o.out}: the next-round coupon of ${decisions.users} users at λ ${fmt(o.lambda)} (round${rounds.length > 1 ? 's' : ''} ${rounds.length > 6 ? `${rounds[0]}..${rounds[rounds.length - 1]}` : rounds.join(', ')})`,
      ...mix.map((m) => `  ${m.column}: ${Object.entries(m.counts).map(([v, n]) => `${v} ×${n}`).join(', ')}`),
      `${fmt(seconds, 3)} s`,
    ]);
  } finally {
    ui.done();
  }
}

export function registerDecide(program: Command): void {
  const cmd = program
    .command('decide')
    .description("write every user's next-round coupon from their logged history (the batch job before a round), as CSV or Parquet")
    .requiredOption('--model <file>', 'trained model (.onnx)');
  withInputOptions(cmd, 'required (or --users)', 'log of the users to decide for: .csv, .csv.gz, .tsv or .parquet (the model\'s state columns, the usual schema)')
    .option('--users <file>', 'same as --data')
    .requiredOption('--lambda <x>', "the plan's λ* (saco solve prints it): the price of one unit of cost in revenue", numArg(0, 1e12))
    .requiredOption('--out <file>', 'decisions to write: .csv, .csv.gz or .parquet (columns user_id, round, one per action dimension, probability)')
    .option('--states <file>', "each user's state for the round to decide: the user column and the model's state columns, one row per user (default: the last logged state carried forward)")
    .option('--skip-bad-rows', 'skip and count bad rows (of the log and of --states) instead of failing')
    .addOption(precisionOption());
  withOutputFlags(cmd, 'print a JSON summary (file, users, rounds decided, the action mix)');
  cmd.action(async (o: DecideOpts, c: Command) => runDecide(o, c));
  examples(cmd, [
    'saco decide --model model.onnx --data logs.parquet --lambda 1.8 --out next.csv',
    'saco decide --model m.onnx --data held.csv --schema schema.json --lambda 0.7 --out next.parquet --json',
    'saco decide --model m.onnx --data logs.parquet --states this-week.csv --lambda 1.8 --out next.csv',
  ]);
}
