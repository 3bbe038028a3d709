#!/usr/bin/env node
/**
 * The `saco` command. Each subcommand validates its flags, calls the library and prints a
 * short human summary (or JSON with --json). Errors that bad input causes print one line
 * naming the file, row, column or argument and exit with status 2.
 */
import { realpathSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SacoError } from './errors.js';
import { inspectLog, formatInspectReport } from './data/inspect.js';
import { readTrajectories } from './data/ingest.js';
import { sampleLambdas, withLambdaCopies } from './data/lambda.js';
import { syLogToInteractionLog } from './data/log.js';
import { applySchemaFlags, DEFAULT_SCHEMA, loadSchemaFile, type DataSchema, type SchemaFlags } from './data/schema.js';
import { generateSyReference, SY_BUNDLE_DIMS, SY_DEFAULTS, type SyLog, type SyOptions } from './data/synth.js';
import { splitByUser, type Trajectories } from './data/trajectories.js';
import { writeLog } from './data/write.js';
import { generateSy, nativeInfo } from './native/index.js';
import { BACKEND_CHOICES, type BackendChoice } from './model/backend.js';
import { CODT_DEFAULTS, CODT_VARIANTS, type CodtVariant } from './model/config.js';
import { writeOnnx } from './model/onnx.js';
import { TRAIN_DEFAULTS, TRAINER_CHOICES, type TrainerChoice } from './model/train.js';
import { trainCodt } from './native/train-engine.js';
import { readOnnx } from './model/onnx.js';
import { checkDataMatchesModel } from './model/artifact.js';
import { solve, syEnvForModel, type SolveResult, type SolveUsers } from './solve/index.js';
import { loadNativeModel } from './native/index.js';

function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    return n;
  };
}

function numArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}]`);
    return n;
  };
}

function listArg(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function numberListArg(value: string): number[] {
  const list = listArg(value).map(Number);
  if (list.length === 0 || list.some((v) => !Number.isFinite(v) || v < 0)) throw new InvalidArgumentError('expected comma-separated numbers >= 0, e.g. 0,2,5,10');
  return list;
}

/** Adds the flags that map columns onto roles (they override a schema file). */
function withSchemaFlags(cmd: Command): Command {
  return cmd
    .option('--user-col <name>', "user id column (several: a,b; 'none': every row its own user)")
    .option('--time-col <name>', "time column ('none': file order)")
    .option('--state-cols <list>', 'state feature columns (default: every other column)', listArg)
    .option('--categorical <list>', 'state columns holding categories (one-hot)', listArg)
    .option('--action-cols <list>', 'action column(s), one per action dimension', listArg)
    .option('--cost-col <name>', 'cost column')
    .option('--reward-col <name>', 'reward column')
    .option('--exclude <list>', 'columns never used as states', listArg);
}

interface SchemaOpts {
  userCol?: string;
  timeCol?: string;
  stateCols?: string[];
  categorical?: string[];
  actionCols?: string[];
  costCol?: string;
  rewardCol?: string;
  exclude?: string[];
}

function schemaFrom(schemaFile: string | undefined, o: SchemaOpts): DataSchema {
  const base = schemaFile ? loadSchemaFile(schemaFile) : DEFAULT_SCHEMA;
  const flags: SchemaFlags = {
    user: o.userCol,
    time: o.timeCol,
    states: o.stateCols,
    categorical: o.categorical,
    actions: o.actionCols,
    cost: o.costCol,
    reward: o.rewardCol,
    exclude: o.exclude,
  };
  return applySchemaFlags(base, flags);
}

function progress(quiet: boolean): ((stage: string) => void) | undefined {
  if (quiet || !process.stderr.isTTY) return undefined;
  const start = performance.now();
  return (stage) => process.stderr.write(`\r\x1b[K[${((performance.now() - start) / 1000).toFixed(1)}s] ${stage}...`);
}

function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

const fmt = (x: number, digits = 4) => Number(x.toPrecision(digits)).toString();

function trajectorySummary(t: Trajectories): Record<string, number | string> {
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

async function runSynth(opts: {
  users: number;
  rounds: number;
  seed: number;
  features: number;
  out: string;
  actions?: number[];
  bundle?: boolean;
  static?: boolean;
  logging: 'uniform' | 'biased';
  biasStrength: number;
  threads: number;
  engine: 'native' | 'ts';
  json?: boolean;
}): Promise<void> {
  const sy: SyOptions = {
    users: opts.users,
    rounds: opts.rounds,
    seed: opts.seed,
    features: opts.features,
    sequential: !opts.static,
    logging: opts.logging === 'biased' ? { kind: 'biased', strength: opts.biasStrength } : { kind: 'uniform' },
    threads: opts.threads,
    actionDims: opts.bundle ? SY_BUNDLE_DIMS : [{ name: 'coupon', kind: 'cash', values: opts.actions ?? SY_DEFAULTS.actionDims[0].values }],
  };
  const t0 = performance.now();
  const log: SyLog = opts.engine === 'ts' ? generateSyReference(sy) : await generateSy(sy);
  const tGen = performance.now() - t0;
  const rows = await writeLog(syLogToInteractionLog(log), opts.out);
  const tAll = performance.now() - t0;
  let purchases = 0;
  let cost = 0;
  let reward = 0;
  for (let r = 0; r < rows; r++) {
    if (log.reward[r] > 0) purchases++;
    cost += log.cost[r];
    reward += log.reward[r];
  }
  const summary = { file: opts.out, rows, users: opts.users, rounds: opts.rounds, engine: opts.engine, generateMs: tGen, totalMs: tAll, purchaseRate: purchases / rows, totalCost: cost, totalReward: reward };
  if (opts.json) console.log(JSON.stringify(summary));
  else {
    console.log(`wrote ${opts.out}: ${rows} rows (${opts.users} users x ${opts.rounds} rounds), ${opts.bundle ? 'bundle cash+discount' : `face values ${(sy.actionDims ?? [])[0].values.join(',')}`}, ${sy.sequential ? 'sequential' : 'static'} responses, ${opts.logging} logging`);
    console.log(`purchase rate ${fmt(summary.purchaseRate)}, logged revenue ${fmt(reward, 6)}, logged cost ${fmt(cost, 6)}; generated in ${fmt(tGen, 3)} ms (${opts.engine}), ${fmt(tAll, 3)} ms with the write`);
  }
}

interface TrainCliOptions {
  data: string;
  out: string;
  variant: CodtVariant;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  gradClip: number;
  patience: number;
  dModel: number;
  layers: number;
  heads: number;
  dropout: number;
  beta: number;
  lambdaMax?: number;
  lambdaCopies?: number;
  trainer: TrainerChoice;
  backend: BackendChoice;
  threads: number;
  seed: number;
  checkpoint?: string;
  resume?: boolean;
  testFraction: number;
  gamma: number;
  skipBadRows?: boolean;
  quiet?: boolean;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

async function runTrain(schemaFile: string | undefined, o: SchemaOpts & TrainCliOptions): Promise<void> {
  const t0 = performance.now();
  const { trajectories, report } = await readTrajectories(o.data, { schema: schemaFrom(schemaFile, o), gamma: o.gamma, skipBadRows: o.skipBadRows, onProgress: progress(!!o.quiet) });
  endProgress();
  if (Object.keys(report.skipped).length) console.log(`skipped rows: ${Object.entries(report.skipped).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  const { train, test } = splitByUser(trajectories, { testFraction: o.testFraction, seed: o.seed });
  const checkpoint = o.checkpoint ?? `${o.out}.ckpt`;
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\ninterrupt: finishing this step and writing the checkpoint (Ctrl-C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const tty = process.stderr.isTTY && !o.quiet;
  console.log(`training ${o.variant} CODT (d_model ${o.dModel}, ${o.layers} layers, ${o.heads} heads) on ${train.users} users (${test.users} held out for testing), T = ${train.rounds}`);
  try {
    const result = await trainCodt(train, {
      variant: o.variant,
      dModel: o.dModel,
      layers: o.layers,
      heads: o.heads,
      dropout: o.dropout,
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      weightDecay: o.weightDecay,
      gradClip: o.gradClip,
      patience: o.patience,
      seed: o.seed,
      beta: o.beta,
      lambdaMax: o.lambdaMax,
      lambdaCopies: o.lambdaCopies,
      trainer: o.trainer,
      backend: o.backend,
      threads: o.threads,
      checkpoint,
      onStart: (info) => console.log(`trainer: ${info.engine}${info.skipped.length ? ` (skipped: ${info.skipped.join('; ')})` : ''}`),
      resume: o.resume,
      signal: controller.signal,
      source: o.data,
      onProgress: (p) => {
        if (tty) process.stderr.write(`\r\x1b[Kepoch ${p.epoch}/${p.epochs} ${bar(p.batch / p.batches)} ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s`);
      },
      onEpoch: (r) => {
        if (tty) process.stderr.write('\r\x1b[K');
        console.log(`epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}, validation loss ${r.valLoss.toFixed(4)}, ${r.samplesPerSecond.toFixed(0)} samples/s, ${r.seconds.toFixed(1)} s`);
      },
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (result.interrupted) {
      console.log(`interrupted after epoch ${result.model.meta.training.epochs}: checkpoint ${checkpoint}; continue with the same command and --resume`);
      return;
    }
    writeOnnx(result.model, o.out);
    const logK = train.actionEncodings.reduce((s, e) => s + Math.log(e.values.length), 0);
    const m = result.model.meta;
    console.log(`best validation loss ${m.training.bestValLoss.toFixed(4)} (uniform policy: ${logK.toFixed(4)}) after ${m.training.epochs} epoch(s)${result.stoppedEarly ? ' (early stop)' : ''}; λmax ${fmt(m.normalization.lambdaMax)}`);
    console.log(`wrote ${o.out}; ${fmt(result.samplesPerSecond, 3)} samples/s, ${fmt((performance.now() - t0) / 1000, 3)} s in all`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('saco')
    .description('Sequence-aware, budget-constrained coupon allocation (SACO): synthetic data, log ingestion, training and planning')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('synth')
    .description('generate the synthetic environment SY and write its logged trajectories (CSV, CSV.gz or Parquet)')
    .requiredOption('--out <file>', 'output file: .csv, .csv.gz or .parquet')
    .option('--users <n>', 'number of users', intArg(1, 1e8), 10000)
    .option('--rounds <n>', 'rounds per user', intArg(1, 1e5), 10)
    .option('--seed <n>', 'random seed', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--features <n>', 'static feature dimension', intArg(1, 1024), 8)
    .option('--actions <values>', 'coupon face values, index 0 first (e.g. 0,2,5,10)', numberListArg)
    .option('--bundle', 'two action dimensions: cash 0,2,5 and discount 0,10%,20%')
    .option('--static', 'no sequential effects (eta = delta = 0: the paper\'s literal setting)')
    .addOption(new Option('--logging <policy>', 'logging policy').choices(['uniform', 'biased']).default('uniform'))
    .option('--bias-strength <x>', 'strength of the biased logger', numArg(-100, 100), 1.5)
    .option('--threads <n>', 'native threads (0: all cores)', intArg(0, 1024), 0)
    .addOption(new Option('--engine <engine>', 'generator').choices(['native', 'ts']).default('native'))
    .option('--json', 'print a JSON summary')
    .action(runSynth);

  const data = program.command('data').description('look at logs before training on them');
  withSchemaFlags(
    data
      .command('inspect')
      .description('users, rounds per user, action mix, cost and reward statistics, missing values')
      .argument('<file>', 'log file (.csv, .csv.gz, .parquet)')
      .argument('[schema]', 'schema JSON file (default: the column names saco synth writes)')
      .option('--json', 'print the report as JSON'),
  ).action(async (file: string, schemaFile: string | undefined, o: SchemaOpts & { json?: boolean }) => {
    const report = await inspectLog(file, schemaFrom(schemaFile, o));
    console.log(o.json ? JSON.stringify(report, null, 2) : formatInspectReport(report));
  });

  withSchemaFlags(
    data
      .command('trajectories')
      .description('build trajectories (RTG, CTG, mask), split 80/20 by user and show what training would see')
      .argument('<file>', 'log file (.csv, .csv.gz, .parquet)')
      .argument('[schema]', 'schema JSON file')
      .option('--gamma <x>', 'discount of RTG and CTG', numArg(1e-9, 1), 1)
      .option('--skip-bad-rows', 'skip and count bad rows instead of failing')
      .option('--test-fraction <x>', 'share of users held out', numArg(0, 1), 0.2)
      .option('--seed <n>', 'split and λ seed', intArg(0, Number.MAX_SAFE_INTEGER), 1)
      .option('--lambda-max <x>', 'upper end of λ ~ U(0, λmax)', numArg(1e-9, 1e9), 1)
      .option('--lambda-copies <n>', 'the literal recipe: copy each trajectory n times with a fixed λ each', intArg(1, 1000))
      .option('--json', 'print JSON')
      .option('--quiet', 'no progress on stderr'),
  ).action(
    async (
      file: string,
      schemaFile: string | undefined,
      o: SchemaOpts & { gamma: number; skipBadRows?: boolean; testFraction: number; seed: number; lambdaMax: number; lambdaCopies?: number; json?: boolean; quiet?: boolean },
    ) => {
      const t0 = performance.now();
      const { trajectories, report } = await readTrajectories(file, { schema: schemaFrom(schemaFile, o), gamma: o.gamma, skipBadRows: o.skipBadRows, onProgress: progress(!!o.quiet) });
      endProgress();
      const { train, test } = splitByUser(trajectories, { testFraction: o.testFraction, seed: o.seed });
      const trainSet = o.lambdaCopies ? withLambdaCopies(train, o.lambdaCopies, { seed: o.seed, lambdaMax: o.lambdaMax }) : train;
      const lambdas = trainSet.lambda ?? sampleLambdas(Math.min(trainSet.users, 4096), 0, { seed: o.seed, lambdaMax: o.lambdaMax });
      const out = {
        report,
        all: trajectorySummary(trajectories),
        train: trainSet.users,
        test: test.users,
        lambda: { recipe: o.lambdaCopies ? `${o.lambdaCopies} fixed copies per trajectory` : 'drawn per sample at batch time', mean: lambdas.reduce((s, v) => s + v, 0) / lambdas.length, max: lambdas.reduce((m, v) => (v > m ? v : m), 0) },
        ms: performance.now() - t0,
      };
      if (o.json) console.log(JSON.stringify(out, null, 2));
      else {
        const a = out.all;
        console.log(`${file}: ${report.rowsUsed}/${report.rowsRead} rows used, ${a.users} users, T = ${a.rounds}, state dim ${a.stateDim}, actions ${a.actions}`);
        if (Object.keys(report.skipped).length) console.log(`skipped: ${Object.entries(report.skipped).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
        if (report.inferredCategorical.length) console.log(`text columns one-hot encoded: ${report.inferredCategorical.join(', ')}`);
        console.log(`mean RTG_0 ${fmt(Number(a.meanRTG0))}, mean CTG_0 ${fmt(Number(a.meanCTG0))}, padded rounds ${a.paddedRounds}, gamma ${o.gamma}`);
        console.log(`split by user (seed ${o.seed}): train ${out.train}${o.lambdaCopies ? ` trajectories (${o.lambdaCopies} λ copies each)` : ''}, test ${out.test}; λ ${out.lambda.recipe}, U(0, ${o.lambdaMax})`);
        console.log(`done in ${fmt(out.ms, 3)} ms`);
      }
    },
  );

  withSchemaFlags(
    program
      .command('train')
      .description('train a CODT model on logged trajectories and write it as one .onnx file')
      .requiredOption('--data <file>', 'log file (.csv, .csv.gz, .parquet)')
      .argument('[schema]', 'schema JSON file (default: the column names saco synth writes)')
      .requiredOption('--out <file>', 'model file to write (.onnx)')
      .addOption(new Option('--variant <v>', 'training recipe').choices([...CODT_VARIANTS]).default(CODT_DEFAULTS.variant))
      .option('--epochs <n>', 'maximum epochs', intArg(1, 100000), TRAIN_DEFAULTS.epochs)
      .option('--batch-size <n>', 'trajectories per batch', intArg(1, 1 << 20), TRAIN_DEFAULTS.batchSize)
      .option('--lr <x>', 'peak learning rate (AdamW, warmup then cosine)', numArg(0, 1), TRAIN_DEFAULTS.lr)
      .option('--weight-decay <x>', 'AdamW weight decay', numArg(0, 1), 1e-4)
      .option('--grad-clip <x>', 'global gradient-norm clip', numArg(1e-6, 1e6), 1.0)
      .option('--patience <n>', 'epochs without validation improvement before stopping', intArg(1, 100000), TRAIN_DEFAULTS.patience)
      .option('--d-model <n>', 'model width', intArg(1, 8192), CODT_DEFAULTS.dModel)
      .option('--layers <n>', 'transformer blocks', intArg(1, 64), CODT_DEFAULTS.layers)
      .option('--heads <n>', 'attention heads', intArg(1, 256), CODT_DEFAULTS.heads)
      .option('--dropout <x>', 'dropout rate', numArg(0, 0.99), CODT_DEFAULTS.dropout)
      .option('--beta <x>', 'temperature of the Lagrangian sample weights', numArg(1e-3, 1e3), TRAIN_DEFAULTS.beta)
      .option('--lambda-max <x>', 'λ range U(0, λmax) (default: from the data; literal: 1)', numArg(1e-6, 1e6))
      .option('--lambda-copies <n>', 'the literal recipe: copy each trajectory n times with a fixed λ', intArg(1, 1000))
      .addOption(new Option('--trainer <t>', 'native (C++, the default on CPU) or tfjs (the reference; auto picks it when tfjs-node-gpu sees a GPU or --backend is named)').choices([...TRAINER_CHOICES]).default('auto'))
      .addOption(new Option('--backend <b>', 'tfjs backend (tfjs trainer)').choices([...BACKEND_CHOICES]).default('auto'))
      .option('--threads <n>', 'native trainer threads (0: all cores; results do not depend on it)', intArg(0, 1024), 0)
      .option('--seed <n>', 'seed of init, split, batches, λ and dropout', intArg(0, Number.MAX_SAFE_INTEGER), TRAIN_DEFAULTS.seed)
      .option('--checkpoint <file>', 'checkpoint file (default: <out>.ckpt)')
      .option('--resume', 'continue from the checkpoint')
      .option('--test-fraction <x>', 'share of users held out as the test set (not trained on)', numArg(0, 0.9), 0.2)
      .option('--gamma <x>', 'discount of RTG and CTG', numArg(1e-9, 1), 1)
      .option('--skip-bad-rows', 'skip and count bad rows instead of failing')
      .option('--quiet', 'no progress bar'),
  ).action(async (schemaFile: string | undefined, o: SchemaOpts & TrainCliOptions) => {
    await runTrain(schemaFile, o);
  });

  program
    .command('solve')
    .description('plan a campaign: find the λ whose simulated spend meets the budget, print revenue, cost, ROI, BARate')
    .requiredOption('--model <file>', 'trained model (.onnx)')
    .requiredOption('--users <file|n>', 'users to plan for: a log written by saco synth (e.g. the test split), or a number of fresh SY users')
    .requiredOption('--budget <b>', 'budget: an amount, or a multiple of what uniform logging spends on these users, e.g. 0.5x')
    .addOption(new Option('--method <m>', 'λ search').choices(['bisection', 'slsqp']).default('bisection'))
    .addOption(new Option('--policy <p>', 'who decides').choices(['codt', 'random', 'oracle']).default('codt'))
    .addOption(new Option('--engine <e>', 'what computes the CODT decisions (ort: onnxruntime in a Piscina pool)').choices(['native', 'ort']).default('native'))
    .option('--compare', 'also solve Random and the Oracle at the same budget')
    .option('--rounds <n>', 'rounds to plan (default: the model\'s context)', intArg(1, 100000))
    .option('--sy-seed <n>', 'seed of the SY ground truth (must be the one the users came from)', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--epsilon <x>', 'tolerance below the budget (default 2%)', numArg(0, Number.MAX_VALUE))
    .option('--threads <n>', 'native threads (0: all cores)', intArg(0, 1024), 0)
    .option('--json', 'print JSON (without the plan)')
    .action(async (o: { model: string; users: string; budget: string; method: 'bisection' | 'slsqp'; policy: 'codt' | 'random' | 'oracle'; engine: 'native' | 'ort'; compare?: boolean; rounds?: number; sySeed: number; epsilon?: number; threads: number; json?: boolean }) => {
      const model = readOnnx(o.model);
      let users: SolveUsers;
      if (/^\d+$/.test(o.users)) users = Number(o.users);
      else {
        const { trajectories } = await readTrajectories(o.users);
        checkDataMatchesModel(model.meta, trajectories);
        users = trajectories;
      }
      const budget = /x$/i.test(o.budget) ? (o.budget as `${number}x`) : Number(o.budget);
      const handle = loadNativeModel(model);
      try {
        const env = syEnvForModel(model.meta, o.sySeed);
        const run = (policy: 'codt' | 'random' | 'oracle') =>
          solve({ model: policy === 'codt' && o.engine === 'ort' ? model : handle, engine: policy === 'codt' ? o.engine : 'native', users, budget, method: o.method, policy, rounds: o.rounds, env, epsilon: o.epsilon, threads: o.threads, lambdaMax: model.meta.normalization.lambdaMax * 2 });
        const results: SolveResult[] = [await run(o.policy)];
        if (o.compare) for (const p of ['random', 'oracle'] as const) if (p !== o.policy) results.push(await run(p));
        if (o.json) console.log(JSON.stringify(results.map(({ plan: _plan, ...rest }) => rest), null, 2));
        else {
          const r0 = results[0];
          console.log(`${r0.users} users x ${r0.rounds} rounds, budget ${fmt(r0.budget, 6)} (uniform logging spends ${fmt(r0.referenceSpend, 6)})`);
          const rows = results.map((r) => [r.engine === 'ort' ? `${r.policy} (ort)` : r.policy, r.method, fmt(r.lambda, 4), fmt(r.revenue, 7), fmt(r.cost, 7), fmt(r.roi, 4), fmt(r.baRate, 4), String(r.rollouts), `${fmt(r.wallMs, 4)} ms`, r.needsMoreThanLambdaMax ? 'budget needs λ > λmax' : r.budgetNotBinding ? 'budget not binding' : '']);
          const head = ['policy', 'search', 'λ*', 'revenue', 'cost', 'ROI', 'BARate', 'rollouts', 'wall', ''];
          const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
          for (const line of [head, widths.map((w) => '-'.repeat(w)), ...rows]) console.log(line.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd());
        }
      } finally {
        handle.unload();
      }
    });

  program
    .command('demo')
    .description('the main job on built-in defaults: synthesise SY, read it back, train a small CODT, plan campaigns at three budgets')
    .option('--users <n>', 'number of users', intArg(20, 1e7), 4000)
    .option('--rounds <n>', 'rounds per user', intArg(1, 1000), 10)
    .option('--seed <n>', 'random seed', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--epochs <n>', 'training epochs of the small model', intArg(1, 1000), 6)
    .option('--out <prefix>', 'where to write the synthetic log (.parquet) and the model (.onnx)', 'sy-demo')
    .action(async (o: { users: number; rounds: number; seed: number; epochs: number; out: string }) => {
      const info = nativeInfo();
      console.log(`saco demo: native core loaded (CUDA ${info.cudaBuilt ? `built, ${info.cudaDevices} device(s) visible` : 'not built'})`);
      const t0 = performance.now();
      const log = await generateSy({ users: o.users, rounds: o.rounds, seed: o.seed });
      const tGen = performance.now() - t0;
      const dataFile = `${o.out}.parquet`;
      await writeLog(syLogToInteractionLog(log), dataFile);
      console.log(`1. synthesised SY: ${o.users} users x ${o.rounds} rounds in ${fmt(tGen, 3)} ms (native), wrote ${dataFile}`);
      const t1 = performance.now();
      const { trajectories } = await readTrajectories(dataFile);
      const s = trajectorySummary(trajectories);
      console.log(`2. read it back through DuckDB in ${fmt(performance.now() - t1, 3)} ms: ${s.users} trajectories, T = ${s.rounds}, state dim ${s.stateDim}, ${s.actions}`);
      const { train, test } = splitByUser(trajectories, { seed: o.seed });
      const t2 = performance.now();
      const result = await trainCodt(train, {
        dModel: 32,
        layers: 2,
        heads: 2,
        dropout: 0,
        lr: 2e-3,
        epochs: o.epochs,
        patience: o.epochs,
        seed: o.seed,
        source: dataFile,
        onStart: (info) => console.log(`3. training a small weighted CODT (d_model 32, 2 layers) on ${train.users} users for ${o.epochs} epochs (trainer: ${info.engine})...`),
      });
      const modelFile = `${o.out}.onnx`;
      writeOnnx(result.model, modelFile);
      const m = result.model.meta;
      console.log(`   validation loss ${result.history.map((h) => h.valLoss.toFixed(3)).join(' -> ')} (uniform policy ${Math.log(4).toFixed(3)}), ${fmt((performance.now() - t2) / 1000, 3)} s, wrote ${modelFile}`);
      const handle = loadNativeModel(result.model);
      try {
        const env = { seed: o.seed, rounds: o.rounds };
        console.log(`4. campaigns for the ${test.users} test users (SY ground truth), budgets as multiples of what uniform logging spends:`);
        const head = ['budget', 'policy', 'λ*', 'revenue', 'cost', 'ROI', 'BARate', 'rollouts', 'wall'];
        const rows: string[][] = [];
        for (const budget of ['0.25x', '0.5x', '0.75x'] as const) {
          for (const policy of ['codt', 'random', 'oracle'] as const) {
            const r = await solve({ users: test, budget, env, policy, model: handle, lambdaMax: 4 * m.normalization.lambdaMax });
            rows.push([`${budget} = ${fmt(r.budget, 5)}`, policy === 'codt' ? 'SACO' : policy, policy === 'random' ? '-' : fmt(r.lambda, 3), fmt(r.revenue, 6), fmt(r.cost, 5), fmt(r.roi, 3), fmt(r.baRate, 3), String(r.rollouts), `${fmt(r.wallMs, 3)} ms`]);
          }
        }
        const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
        for (const line of [head, widths.map((w) => '-'.repeat(w)), ...rows]) console.log(`   ${line.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd()}`);
      } finally {
        handle.unload();
      }
      console.log('   (the Oracle knows the true response probabilities: an upper reference, myopic per round)');
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    endProgress();
    if (e instanceof SacoError) {
      console.error(`saco: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

function isEntryPoint(): boolean {
  if (process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
