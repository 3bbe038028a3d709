/** `saco train`: train a CODT model on a log and write one .onnx file. Ctrl-C checkpoints and exits 130. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import { ArgumentError } from '../errors.js';
import { readTrajectories, writeUserRows } from '../data/ingest.js';
import { formatOf } from '../data/duck.js';
import { joinPlaces } from '../data/derived.js';
import { splitByUser } from '../data/trajectories.js';
import { BACKEND_CHOICES, type BackendChoice } from '../model/backend.js';
import { CODT_DEFAULTS, CODT_VARIANTS, type CodtVariant } from '../model/config.js';
import { writeOnnx } from '../model/onnx.js';
import { LAMBDA_MARGIN, TRAIN_DEFAULTS, TRAINER_CHOICES, type TrainerChoice } from '../model/train.js';
import { trainCodt } from '../policy/train.js';
import { spendCurve, SPEND_CURVE_USERS } from '../policy/spend-curve.js';
import type { SpendCurveRecord } from '../model/artifact.js';
import { checkDistinct, checkWritable, examples, fmt, intArg, noticeReadReport, numArg, readSummary, resolveInput, withInputOptions, withOutputFlags, type InputOpts } from './common.js';
import { exitInterrupted, Interrupted, takeOverSigint } from './interrupt.js';
import { bar, duration, Ui } from './ui.js';

interface TrainOpts extends InputOpts {
  out: string;
  variant: CodtVariant;
  epochs: number;
  batchSize: number;
  epochSize: number;
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
  lambdaMargin?: number;
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
  json?: boolean;
  quiet?: boolean;
  /** false with --no-spend-curve. */
  spendCurve?: boolean;
  /** --split-out: the held-out users' rows are written here. */
  splitOut?: string;
}

const MODEL_EXT = /\.onnx$/i;
const NOT_A_CHECKPOINT = /\.(onnx|csv|tsv|csv\.gz|tsv\.gz|parquet|pq|json)$/i;

/** Output paths checked before any data is read: writable folders, the right extension, no input overwritten. */
function checkOutputs(file: string, schemaFile: string | undefined, o: TrainOpts, checkpoint: string): void {
  if (!MODEL_EXT.test(o.out)) throw new ArgumentError('--out', `${o.out}: the model is written as ONNX; name it *.onnx`, 'ARGUMENT_OUTPUT');
  if (NOT_A_CHECKPOINT.test(checkpoint)) throw new ArgumentError('--checkpoint', `${checkpoint}: a checkpoint is not a model, log or schema; name it e.g. ${o.out}.ckpt`, 'ARGUMENT_OUTPUT');
  checkDistinct([
    ['--data', file],
    ['--schema', schemaFile],
    ['--out', o.out],
    ['--checkpoint', checkpoint],
    ['--split-out', o.splitOut],
  ]);
  checkWritable('--out', o.out);
  checkWritable('--checkpoint', checkpoint);
  if (o.splitOut !== undefined) {
    try {
      formatOf(o.splitOut);
    } catch {
      throw new ArgumentError('--split-out', `${o.splitOut}: the held-out users are written as a log; name it *.csv, *.csv.gz or *.parquet`, 'ARGUMENT_OUTPUT');
    }
    if (o.testFraction === 0) throw new ArgumentError('--split-out', 'there are no held-out users with --test-fraction 0', 'ARGUMENT_CONFLICT');
    checkWritable('--split-out', o.splitOut);
  }
}

/** C(λ) as a few lines: every other grid point, as a share of the reference spend. */
function spendCurveLines(c: SpendCurveRecord | undefined): string[] {
  if (!c) return [];
  const ref = c.referenceSpend > 0 ? c.referenceSpend : 1;
  const cells = c.lambdas.map((l, g) => (g % 2 === 0 ? `${fmt(l, 3)}: ${((100 * c.spend[g]) / ref).toFixed(0)}%` : '')).filter(Boolean);
  return [
    `spend curve on ${c.users} held-out users (${c.source}), as % of giving everyone ${c.referenceArm} (${fmt(c.referenceSpend, 4)}):`,
    `  λ ${cells.join('  ')}`,
    c.warnings.length ? `  ${c.warnings.length} warning(s) above: the λ search may not meet every budget` : '  falls with λ over the whole range: every budget between can be met',
  ];
}

async function runTrain(fileArgs: { file?: string; schema?: string }, o: TrainOpts, cmd: Command): Promise<void> {
  const t0 = performance.now();
  const { file, schema, schemaFile } = resolveInput(cmd, o, fileArgs.file, fileArgs.schema);
  const checkpoint = o.checkpoint ?? `${o.out}.ckpt`;
  checkOutputs(file, schemaFile, o, checkpoint);
  const ui = new Ui(o);
  const controller = new AbortController();
  const restoreSigint = takeOverSigint(() => {
    if (controller.signal.aborted) exitInterrupted('SIGINT', 130);
    ui.notice('interrupt: finishing this step and writing the checkpoint (Ctrl-C again to quit now)');
    controller.abort();
  });
  try {
    ui.phase(`reading ${file}`);
    const { trajectories, report } = await readTrajectories(file, { schema, gamma: o.gamma, skipBadRows: o.skipBadRows, glob: o.glob, onProgress: (stage) => ui.phase(stage) });
    ui.clear();
    noticeReadReport(ui, report);
    if (controller.signal.aborted) {
      ui.notice('interrupted before training started: nothing written');
      throw new Interrupted(130);
    }
    const { train, test } = splitByUser(trajectories, { testFraction: o.testFraction, seed: o.seed });
    let splitOut: { file: string; users: number; rows: number } | null = null;
    if (o.splitOut !== undefined) {
      ui.phase(`writing the ${test.users} held-out users to ${o.splitOut}`);
      const written = await writeUserRows(file, test.userIds, o.splitOut, { schema, glob: o.glob });
      splitOut = { file: o.splitOut, ...written };
      ui.info(`held-out users: ${written.users} users, ${written.rows} rows written to ${o.splitOut} (the same --schema reads them)`);
      const unreachable = (schema.join ?? []).filter((j) => !joinPlaces(j, path.dirname(path.resolve(o.splitOut as string)), schema).some((f) => existsSync(f)));
      if (unreachable.length) {
        ui.notice(`${o.splitOut} is read with this schema where ${unreachable.map((j) => j.file).join(', ')} can be found: beside it, beside the schema file or in the working directory (copy ${unreachable.length > 1 ? 'them' : 'it'} there, or write the held-out users beside ${file})`);
      }
      if (report.calendar && !report.calendar.startStated) {
        ui.notice(`calendar rounds start at ${report.calendar.startText}, the earliest time in ${file}: add "start": ${JSON.stringify(report.calendar.temporal ? report.calendar.startText : report.calendar.start)} to the schema's "round" to read ${o.splitOut} on the same rounds`);
      }
    }
    ui.info(`training ${o.variant} CODT (d_model ${o.dModel}, ${o.layers} layers, ${o.heads} heads) on ${train.users} users (${test.users} held out for testing), T = ${train.rounds}`);
    let trainerName = '';
    const result = await trainCodt(train, {
      variant: o.variant,
      dModel: o.dModel,
      layers: o.layers,
      heads: o.heads,
      dropout: o.dropout,
      epochs: o.epochs,
      batchSize: o.batchSize,
      epochSize: o.epochSize,
      lr: o.lr,
      weightDecay: o.weightDecay,
      gradClip: o.gradClip,
      patience: o.patience,
      seed: o.seed,
      beta: o.beta,
      lambdaMax: o.lambdaMax,
      lambdaMargin: o.lambdaMargin,
      lambdaCopies: o.lambdaCopies,
      trainer: o.trainer,
      backend: o.backend,
      threads: o.threads,
      checkpoint,
      resume: o.resume,
      signal: controller.signal,
      source: file,
      onOutcome: (stage, seconds, folds) => {
        if (stage === 'done') ui.info(`outcome model fitted in ${(seconds ?? 0).toFixed(1)} s`);
        else if (folds?.done === 0) ui.phase(`fitting the outcome model of the ${o.variant} recipe (XGBoost, ${folds.total}-fold cross-fit)`);
        if (folds) ui.update(`fold ${folds.done + 1}/${folds.total} ${bar(folds.done / folds.total)}`);
      },
      onStart: (info) => {
        trainerName = info.engine;
        ui.info(`trainer: ${info.engine}${info.skipped.length ? ` (skipped: ${info.skipped.join('; ')})` : ''}`);
        ui.phase('training');
      },
      onProgress: (p) => ui.update(`epoch ${p.epoch}/${p.epochs} ${bar(p.batch / p.batches)} ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} ${p.samplesPerSecond.toFixed(0)} samples/s, epoch ends in ${duration(((p.batches - p.batch) * o.batchSize) / Math.max(p.samplesPerSecond, 1e-9))}`),
      onEpoch: (r) => ui.info(`epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}, validation loss ${r.valLoss.toFixed(4)}, ${r.samplesPerSecond.toFixed(0)} samples/s, ${r.seconds.toFixed(1)} s`),
    });
    const m = result.model.meta;
    if (!result.interrupted && o.spendCurve !== false && test.users > 0) {
      const measured = Math.min(test.users, SPEND_CURVE_USERS.curve);
      ui.phase(`measuring the spend curve C(λ) on ${measured < test.users ? `${measured} of the ${test.users}` : `the ${test.users}`} held-out users`);
      m.spendCurve = await spendCurve(result.model, train, test, { seed: o.seed, threads: o.threads, onPoint: (done, points) => ui.update(`λ ${done}/${points} ${bar(done / points)}`) });
      for (const w of m.spendCurve.warnings) ui.notice(`WARNING: ${w}`);
    }
    if (!result.interrupted) {
      ui.phase(`writing ${o.out}`);
      writeOnnx(result.model, o.out);
    }
    ui.done();
    const logK = train.actionEncodings.reduce((s, e) => s + Math.log(e.values.length), 0);
    const seconds = (performance.now() - t0) / 1000;
    const doc = {
      model: result.interrupted ? null : o.out,
      checkpoint,
      interrupted: result.interrupted,
      trainer: trainerName || result.trainer.engine,
      epochs: m.training.epochs,
      bestValLoss: m.training.bestValLoss,
      uniformLoss: logK,
      stoppedEarly: result.stoppedEarly,
      lambdaMax: m.normalization.lambdaMax,
      samplesPerSecond: result.samplesPerSecond,
      seconds,
      trainUsers: train.users,
      testUsers: test.users,
      splitOut,
      read: readSummary(report),
      history: result.history,
      spendCurve: m.spendCurve ?? null,
    };
    ui.result(doc, () =>
      result.interrupted
        ? [`interrupted after epoch ${m.training.epochs}: checkpoint ${checkpoint}; continue with the same command and --resume`]
        : [
            `best validation loss ${m.training.bestValLoss.toFixed(4)} (uniform policy: ${logK.toFixed(4)}) after ${m.training.epochs} epoch(s)${result.stoppedEarly ? ' (early stop)' : ''}; λmax ${fmt(m.normalization.lambdaMax)}`,
            ...spendCurveLines(m.spendCurve),
            `wrote ${o.out}; ${fmt(result.samplesPerSecond, 3)} samples/s, ${fmt(seconds, 3)} s in all`,
          ],
    );
    if (result.interrupted) throw new Interrupted(130);
  } finally {
    restoreSigint();
    ui.done();
  }
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a CODT model on logged trajectories and write it as one .onnx file (Ctrl-C: checkpoint, exit 130)')
    .argument('[schema]', 'same as --schema (older form)');
  withInputOptions(cmd, 'mandatory')
    .requiredOption('--out <file>', 'model file to write (.onnx)')
    .addOption(new Option('--variant <v>', 'training recipe').choices([...CODT_VARIANTS]).default(CODT_DEFAULTS.variant))
    .option('--epochs <n>', 'maximum epochs', intArg(1, 100000), TRAIN_DEFAULTS.epochs)
    .option('--batch-size <n>', 'trajectories per batch', intArg(1, 1 << 20), TRAIN_DEFAULTS.batchSize)
    .option('--epoch-size <n>', 'trajectories per epoch (validation, early stopping and a checkpoint after each): a bigger log is trained in slices of shuffled passes', intArg(1, 1e9), TRAIN_DEFAULTS.epochSize)
    .option('--lr <x>', 'peak learning rate (AdamW, warmup then cosine)', numArg(0, 1), TRAIN_DEFAULTS.lr)
    .option('--weight-decay <x>', 'AdamW weight decay', numArg(0, 1), 1e-4)
    .option('--grad-clip <x>', 'global gradient-norm clip', numArg(1e-6, 1e6), 1.0)
    .option('--patience <n>', 'epochs without validation improvement before stopping', intArg(1, 100000), TRAIN_DEFAULTS.patience)
    .option('--d-model <n>', 'model width', intArg(1, 8192), CODT_DEFAULTS.dModel)
    .option('--layers <n>', 'transformer blocks', intArg(1, 64), CODT_DEFAULTS.layers)
    .option('--heads <n>', 'attention heads', intArg(1, 256), CODT_DEFAULTS.heads)
    .option('--dropout <x>', 'dropout rate', numArg(0, 0.99), CODT_DEFAULTS.dropout)
    .option('--beta <x>', 'temperature of the Lagrangian sample weights', numArg(1e-3, 1e3), TRAIN_DEFAULTS.beta)
    .option('--lambda-max <x>', 'λ range [0, λmax] of decisions (default: from the data; literal: 1)', numArg(1e-6, 1e6))
    .option('--lambda-margin <x>', `share of λmax that training also draws below 0, so λ = 0 is not at the edge of what the model learns (default ${LAMBDA_MARGIN} for expected and no-rtg, else 0; 0: λ ~ U(0, λmax))`, numArg(0, 0.99))
    .option('--lambda-copies <n>', 'the literal recipe: copy each trajectory n times with a fixed λ', intArg(1, 1000))
    .addOption(new Option('--trainer <t>', 'native (C++, the default on CPU) or tfjs (the reference; auto picks it when tfjs-node-gpu sees a GPU or --backend is named)').choices([...TRAINER_CHOICES]).default('auto'))
    .addOption(new Option('--backend <b>', 'tfjs backend (tfjs trainer)').choices([...BACKEND_CHOICES]).default('auto'))
    .option('--threads <n>', 'native trainer threads (0: all cores; results do not depend on it)', intArg(0, 1024), 0)
    .option('--seed <n>', 'seed of init, split, batches, λ and dropout', intArg(0, Number.MAX_SAFE_INTEGER), TRAIN_DEFAULTS.seed)
    .option('--checkpoint <file>', 'checkpoint file (default: <out>.ckpt)')
    .option('--resume', 'continue from the checkpoint')
    .option('--test-fraction <x>', 'share of users held out as the test set (not trained on)', numArg(0, 0.9), 0.2)
    .option('--split-out <file>', 'write the held-out users (their rows, every column, as in the log) to this .csv/.csv.gz/.parquet, to evaluate on exactly them')
    .option('--no-spend-curve', 'skip measuring C(λ) on the held-out users after training')
    .option('--gamma <x>', 'discount of RTG and CTG', numArg(1e-9, 1), 1)
    .option('--skip-bad-rows', 'skip and count bad rows instead of failing');
  withOutputFlags(cmd, 'print a JSON summary (model, checkpoint, epochs, losses, history); the epoch lines go to stderr');
  cmd.action(async (schemaArg: string | undefined, o: TrainOpts, c: Command) => runTrain({ schema: schemaArg }, o, c));
  examples(cmd, [
    'saco train --data sy.parquet --out model.onnx',
    'saco train --data logs.csv.gz --schema schema.json --out m.onnx --variant literal --lambda-copies 10 --epochs 20',
    'saco train --data sy.parquet --out model.onnx --resume        # continue from model.onnx.ckpt after Ctrl-C',
  ]);
}
