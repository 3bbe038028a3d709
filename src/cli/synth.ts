/** `saco synth`: generate SY and write its logged trajectories. */
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import { removeQuietly, tempPathFor } from '../data/atomic.js';
import { formatOf } from '../data/duck.js';
import { syLogToInteractionLog } from '../data/log.js';
import { generateSyReference, SY_BUNDLE_DIMS, SY_DEFAULTS, type SyLog, type SyOptions } from '../data/synth.js';
import { writeLog } from '../data/write.js';
import { generateSy } from '../native/index.js';
import { checkWritable, examples, fmt, intArg, numArg, numberListArg, withOutputFlags } from './common.js';
import { onInterruptCleanup } from './interrupt.js';
import { Ui } from './ui.js';

interface SynthOpts {
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
  quiet?: boolean;
}

async function runSynth(o: SynthOpts): Promise<void> {
  formatOf(o.out);
  checkWritable('--out', o.out);
  const sy: SyOptions = {
    users: o.users,
    rounds: o.rounds,
    seed: o.seed,
    features: o.features,
    sequential: !o.static,
    logging: o.logging === 'biased' ? { kind: 'biased', strength: o.biasStrength } : { kind: 'uniform' },
    threads: o.threads,
    actionDims: o.bundle ? SY_BUNDLE_DIMS : [{ name: 'coupon', kind: 'cash', values: o.actions ?? SY_DEFAULTS.actionDims[0].values }],
  };
  const ui = new Ui(o);
  // a write interrupted by Ctrl-C must not leave its temporary file behind
  const forget = onInterruptCleanup(() => removeQuietly(tempPathFor(o.out)));
  try {
    const t0 = performance.now();
    ui.phase(`generating ${o.users} users x ${o.rounds} rounds (${o.engine})`);
    const log: SyLog = o.engine === 'ts' ? generateSyReference(sy) : await generateSy(sy);
    const tGen = performance.now() - t0;
    ui.phase(`writing ${o.out}`, `${o.users * o.rounds} rows`);
    const rows = await writeLog(syLogToInteractionLog(log, { propensities: false }), o.out);
    const tAll = performance.now() - t0;
    ui.done();
    let purchases = 0;
    let cost = 0;
    let reward = 0;
    for (let r = 0; r < rows; r++) {
      if (log.reward[r] > 0) purchases++;
      cost += log.cost[r];
      reward += log.reward[r];
    }
    const summary = { file: o.out, rows, users: o.users, rounds: o.rounds, engine: o.engine, generateMs: tGen, totalMs: tAll, purchaseRate: purchases / rows, totalCost: cost, totalReward: reward };
    ui.result(summary, () => [
      `wrote ${o.out}: ${rows} rows (${o.users} users x ${o.rounds} rounds), ${o.bundle ? 'bundle cash+discount' : `face values ${(sy.actionDims ?? [])[0].values.join(',')}`}, ${sy.sequential ? 'sequential' : 'static'} responses, ${o.logging} logging`,
      `purchase rate ${fmt(summary.purchaseRate)}, logged revenue ${fmt(reward, 6)}, logged cost ${fmt(cost, 6)}; generated in ${fmt(tGen, 3)} ms (${o.engine}), ${fmt(tAll, 3)} ms with the write`,
    ]);
  } finally {
    forget();
    ui.done();
  }
}

export function registerSynth(program: Command): void {
  const cmd = program
    .command('synth')
    .description('generate the synthetic environment SY and write its logged trajectories (CSV, CSV.gz or Parquet)')
    .requiredOption('--out <file>', 'output file: .csv, .csv.gz or .parquet')
    .option('--users <n>', 'number of users', intArg(1, 1e8), 10000)
    .option('--rounds <n>', 'rounds per user', intArg(1, 1e5), 10)
    .option('--seed <n>', 'random seed', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--features <n>', 'static feature dimension', intArg(1, 1024), 8)
    .option('--actions <values>', 'coupon face values, index 0 first (e.g. 0,2,5,10)', numberListArg)
    .option('--bundle', 'two action dimensions: cash 0,2,5 and discount 0,10%,20%')
    .option('--static', "no sequential effects (eta = delta = 0: the paper's literal setting)")
    .addOption(new Option('--logging <policy>', 'logging policy').choices(['uniform', 'biased']).default('uniform'))
    .option('--bias-strength <x>', 'strength of the biased logger', numArg(-100, 100), 1.5)
    .option('--threads <n>', 'native threads (0: all cores)', intArg(0, 1024), 0)
    .addOption(new Option('--engine <engine>', 'generator').choices(['native', 'ts']).default('native'));
  withOutputFlags(cmd, 'print a JSON summary (file, rows, timings, purchase rate, totals)').action(runSynth);
  examples(cmd, [
    'saco synth --users 10000 --rounds 10 --seed 1 --out sy.parquet',
    'saco synth --bundle --out bundle.csv',
    'saco synth --logging biased --bias-strength 2 --out biased.csv.gz --json',
  ]);
}
