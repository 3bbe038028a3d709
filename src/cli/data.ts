/** `saco data inspect` and `saco data trajectories`: look at a log before training on it. */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { formatInspectReport, inspectLog } from '../data/inspect.js';
import { readTrajectories } from '../data/ingest.js';
import { sampleLambdas, withLambdaCopies } from '../data/lambda.js';
import { splitByUser, type Trajectories } from '../data/trajectories.js';
import { examples, fmt, intArg, noticeReadReport, numArg, resolveInput, withInputOptions, withOutputFlags, withPositionalAliases, type InputOpts } from './common.js';
import { Ui } from './ui.js';

export function trajectorySummary(t: Trajectories): { users: number; rounds: number; stateDim: number; actionDims: number; actions: string; paddedRounds: number; meanRTG0: number; meanCTG0: number } {
  let rtg0 = 0;
  let ctg0 = 0;
  let real = 0;
  for (let i = 0; i < t.users; i++) {
    rtg0 += t.rtg[i * t.rounds];
    ctg0 += t.ctg[i * t.rounds];
  }
  for (const m of t.mask) real += m;
  return {
    users: t.users,
    rounds: t.rounds,
    stateDim: t.stateDim,
    actionDims: t.actionDims,
    actions: t.actionEncodings.map((e) => `${e.column}=[${e.values.join(',')}]`).join(' '),
    paddedRounds: t.users * t.rounds - real,
    meanRTG0: rtg0 / Math.max(t.users, 1),
    meanCTG0: ctg0 / Math.max(t.users, 1),
  };
}

type OutputOpts = { json?: boolean; quiet?: boolean };
interface TrajectoriesOpts extends InputOpts, OutputOpts {
  gamma: number;
  skipBadRows?: boolean;
  testFraction: number;
  seed: number;
  lambdaMax: number;
  lambdaCopies?: number;
}

export function registerData(program: Command): void {
  const data = program.command('data').description('look at logs before training on them');

  const inspect = data.command('inspect').description('users, rounds per user, action mix, cost and reward statistics, missing values');
  withOutputFlags(withInputOptions(withPositionalAliases(inspect), 'required, or as FILE'), 'print the report as one JSON document');
  inspect.action(async (fileArg: string | undefined, schemaArg: string | undefined, o: InputOpts & OutputOpts, cmd: Command) => {
    const { file, schema } = resolveInput(cmd, o, fileArg, schemaArg);
    const ui = new Ui(o);
    try {
      ui.phase(`reading ${file}`);
      const report = await inspectLog(file, schema, { glob: o.glob });
      ui.done();
      ui.result(report, () => formatInspectReport(report));
    } finally {
      ui.done();
    }
  });
  examples(inspect, ['saco data inspect --data logs.parquet --schema schema.json', 'saco data inspect --data logs.csv --user-col customer --reward-col revenue --json']);

  const traj = data.command('trajectories').description('build trajectories (RTG, CTG, mask), split by user and show what training would see');
  withInputOptions(withPositionalAliases(traj), 'required, or as FILE')
    .option('--gamma <x>', 'discount of RTG and CTG', numArg(1e-9, 1), 1)
    .option('--skip-bad-rows', 'skip and count bad rows instead of failing')
    .option('--test-fraction <x>', 'share of users held out', numArg(0, 1), 0.2)
    .option('--seed <n>', 'split and λ seed', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--lambda-max <x>', 'upper end of λ ~ U(0, λmax)', numArg(1e-9, 1e9), 1)
    .option('--lambda-copies <n>', 'the literal recipe: copy each trajectory n times with a fixed λ each', intArg(1, 1000));
  withOutputFlags(traj);
  traj.action(async (fileArg: string | undefined, schemaArg: string | undefined, o: TrajectoriesOpts, cmd: Command) => {
    const { file, schema } = resolveInput(cmd, o, fileArg, schemaArg);
    const ui = new Ui(o);
    try {
      const t0 = performance.now();
      ui.phase(`reading ${file}`);
      const { trajectories, report } = await readTrajectories(file, { schema, gamma: o.gamma, skipBadRows: o.skipBadRows, glob: o.glob, onProgress: (stage) => ui.phase(stage) });
      noticeReadReport(ui, report);
      ui.phase('splitting by user');
      const { train, test } = splitByUser(trajectories, { testFraction: o.testFraction, seed: o.seed });
      const trainSet = o.lambdaCopies ? withLambdaCopies(train, o.lambdaCopies, { seed: o.seed, lambdaMax: o.lambdaMax }) : train;
      const lambdas = trainSet.lambda ?? sampleLambdas(Math.min(trainSet.users, 4096), 0, { seed: o.seed, lambdaMax: o.lambdaMax });
      ui.done();
      const out = {
        report,
        all: trajectorySummary(trajectories),
        train: trainSet.users,
        test: test.users,
        lambda: { recipe: o.lambdaCopies ? `${o.lambdaCopies} fixed copies per trajectory` : 'drawn per sample at batch time', mean: lambdas.reduce((s, v) => s + v, 0) / lambdas.length, max: lambdas.reduce((m, v) => (v > m ? v : m), 0) },
        ms: performance.now() - t0,
      };
      ui.result(out, () => {
        const a = out.all;
        const lines = [`${file}: ${report.rowsUsed}/${report.rowsRead} rows used, ${a.users} users, T = ${a.rounds}, state dim ${a.stateDim}, actions ${a.actions}`];
        // a pattern's matches are printed, so it never reads other files than the user sees
        if (o.glob || report.files.length > 1) lines.push(`read ${report.files.length} file(s): ${report.files.join(', ')}`);
        if (Object.keys(report.skipped).length) lines.push(`skipped: ${Object.entries(report.skipped).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
        if (report.inferredCategorical.length) lines.push(`text columns one-hot encoded: ${report.inferredCategorical.join(', ')}`);
        lines.push(`mean RTG_0 ${fmt(a.meanRTG0)}, mean CTG_0 ${fmt(a.meanCTG0)}, padded rounds ${a.paddedRounds}, gamma ${o.gamma}`);
        lines.push(`split by user (seed ${o.seed}): train ${out.train}${o.lambdaCopies ? ` trajectories (${o.lambdaCopies} λ copies each)` : ''}, test ${out.test}; λ ${out.lambda.recipe}, U(0, ${o.lambdaMax})`);
        lines.push(`done in ${fmt(out.ms, 3)} ms`);
        return lines;
      });
    } finally {
      ui.done();
    }
  });
  examples(traj, [
    'saco data trajectories --data logs.csv.gz --schema schema.json --lambda-copies 10 --skip-bad-rows',
    'saco data trajectories --data sy.parquet --test-fraction 0.1 --json',
    "saco data trajectories --data 'logs/2024-*.csv.gz' --glob",
  ]);
}
