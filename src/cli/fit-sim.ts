/** `saco fit-sim`: learn the offline simulator of a log (src/sim/simulator.ts) and write it as one file. */
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import { ArgumentError } from '../errors.js';
import { readTrajectories } from '../data/ingest.js';
import { fitSimulator, writeSimulator } from '../sim/simulator.js';
import { checkDistinct, checkWritable, examples, fmt, intArg, noticeReadReport, numArg, readSummary, resolveInput, table, withInputOptions, withOutputFlags, type InputOpts } from './common.js';
import { Ui } from './ui.js';

interface FitSimOpts extends InputOpts {
  out: string;
  arms: 'auto' | 'per-arm' | 'pooled';
  trees: number;
  depth: number;
  eta: number;
  validationFraction: number;
  seed: number;
  threads: number;
  skipBadRows?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const NOT_A_SIMULATOR = /\.(onnx|csv|tsv|csv\.gz|tsv\.gz|parquet|pq|json)$/i;

async function runFitSim(fileArgs: { schema?: string }, o: FitSimOpts, cmd: Command): Promise<void> {
  const t0 = performance.now();
  const { file, schema, schemaFile } = resolveInput(cmd, o, undefined, fileArgs.schema);
  if (NOT_A_SIMULATOR.test(o.out)) throw new ArgumentError('--out', `${o.out}: a simulator is not a model, log or schema; name it e.g. sim.bin`, 'ARGUMENT_OUTPUT');
  checkDistinct([
    ['--data', file],
    ['--schema', schemaFile],
    ['--out', o.out],
  ]);
  checkWritable('--out', o.out);
  const ui = new Ui(o);
  try {
    ui.phase(`reading ${file}`);
    const { trajectories, report } = await readTrajectories(file, { schema, skipBadRows: o.skipBadRows, glob: o.glob, onProgress: (stage) => ui.phase(stage) });
    noticeReadReport(ui, report);
    const sim = await fitSimulator(trajectories, {
      arms: o.arms,
      rounds: o.trees,
      depth: o.depth,
      eta: o.eta,
      validationFraction: o.validationFraction,
      seed: o.seed,
      threads: o.threads,
      onProgress: (stage) => ui.phase(stage === 'fitting' ? `fitting the outcome models (${trajectories.users.toLocaleString('en-US')} users x ${trajectories.rounds} rounds)` : stage === 'measuring' ? 'measuring noise, cost caps and ranges' : 'done'),
    });
    try {
      ui.phase(`writing ${o.out}`);
      writeSimulator(sim, o.out);
      ui.done();
      const h = sim.header;
      const names = trajectories.stateNames;
      const heads = sim.heads();
      const importance = sim.historyImportance();
      const seconds = (performance.now() - t0) / 1000;
      const doc = {
        simulator: o.out,
        users: h.fit.users,
        rows: h.fit.rows,
        rounds: h.layout.rounds,
        arms: h.fit.arms,
        models: heads.map((m) => ({ arm: m.arm, heads: m.heads.filter((x) => x.present).map((x) => ({ name: x.name, constant: x.constant, trees: x.rounds, metric: x.metric, validMetric: x.validMetric, residualSd: x.residualSd })) })),
        dynamic: h.dynamic.map((s) => names[s]),
        clock: h.clock.map((s) => names[s]),
        static: names.filter((_, s) => !h.dynamic.includes(s) && !h.clock.includes(s)),
        control: h.layout.control.map((k, j) => `${h.layout.actionColumns[j]}=${String(trajectories.actionEncodings[j].values[k])} (${h.layout.controlSource[j]})`),
        rewardNoise: h.rewardNoise.length ? { p5: h.rewardNoise[5], p50: h.rewardNoise[50], p95: h.rewardNoise[95] } : null,
        costNoise: h.costNoise.length ? { p5: h.costNoise[5], p50: h.costNoise[50], p95: h.costNoise[95] } : null,
        maxCost: h.maxCost,
        historyImportance: importance,
        fingerprint: h.fingerprint,
        fitSeconds: h.fit.seconds,
        read: readSummary(report),
        seconds,
      };
      ui.result(doc, () => [
        `fitted ${h.fit.arms === 'per-arm' ? `${heads.length} outcome models (one per action)` : 'one pooled outcome model'} on ${fmt(h.fit.users, 8)} users x ${h.layout.rounds} rounds (${fmt(h.fit.rows, 9)} rows) in ${fmt(h.fit.seconds, 3)} s`,
        `state: dynamic ${doc.dynamic.join(', ') || '(none)'}; clock ${doc.clock.join(', ') || '(none)'}; static ${doc.static.length} feature(s); control ${doc.control.join(', ')}`,
        `amount noise (y/ŷ, 5/50/95%): reward ${doc.rewardNoise ? `${fmt(doc.rewardNoise.p5, 3)}/${fmt(doc.rewardNoise.p50, 3)}/${fmt(doc.rewardNoise.p95, 3)}` : 'none (mean)'}, cost ${doc.costNoise ? `${fmt(doc.costNoise.p5, 3)}/${fmt(doc.costNoise.p50, 3)}/${fmt(doc.costNoise.p95, 3)}` : 'none (mean)'}`,
        ...(h.layout.rounds > 1
          ? [
              'history features in use (share of each head\'s total gain):',
              ...table(['head', 'history share', 'top history features'], importance.map((x) => [x.head, `${(100 * x.share).toFixed(1)}%`, x.top.map((f) => f.feature).join(', ')]), '  '),
            ]
          : ['one round per user: no history to learn from']),
        `wrote ${o.out}; ${fmt(seconds, 3)} s in all`,
      ]);
    } finally {
      sim.dispose();
    }
  } finally {
    ui.done();
  }
}

export function registerFitSim(program: Command): void {
  const cmd = program
    .command('fit-sim')
    .description('learn the offline simulator of a log (XGBoost outcome models of reward, cost and the next state from state, action and history) and write it as one file')
    .argument('[schema]', 'same as --schema (older form)');
  withInputOptions(cmd, 'mandatory')
    .requiredOption('--out <file>', 'simulator file to write (e.g. sim.bin)')
    .addOption(new Option('--arms <a>', "one outcome model per joint action ('per-arm'), one pooled model ('pooled'), or per arm when at most 16 actions each logged >= 500 times ('auto')").choices(['auto', 'per-arm', 'pooled']).default('auto'))
    .option('--trees <n>', 'trees per head at most (early stopping on held-out users may keep fewer)', intArg(1, 100000), 100)
    .option('--depth <n>', 'tree depth', intArg(1, 20), 6)
    .option('--eta <x>', 'learning rate', numArg(1e-6, 1), 0.15)
    .option('--validation-fraction <x>', 'share of users held out for early stopping and the noise tables', numArg(0, 0.9), 0.2)
    .option('--seed <n>', 'seed of the held-out users and the trees', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--threads <n>', 'threads (0: all cores; the simulator does not depend on it)', intArg(0, 1024), 0)
    .option('--skip-bad-rows', 'skip and count bad rows instead of failing');
  withOutputFlags(cmd, 'print a JSON summary (models, heads, state roles, noise, history importance)');
  cmd.action(async (schemaArg: string | undefined, o: FitSimOpts, c: Command) => runFitSim({ schema: schemaArg }, o, c));
  examples(cmd, [
    'saco fit-sim --data logs.parquet --schema schema.json --out sim.bin',
    'saco fit-sim --data sy.parquet --out sim.bin --json',
  ]);
}
