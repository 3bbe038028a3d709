/** `saco demo`: the main job on built-in defaults, end to end. */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { readTrajectories } from '../data/ingest.js';
import { syLogToInteractionLog } from '../data/log.js';
import { splitByUser } from '../data/trajectories.js';
import { writeLog } from '../data/write.js';
import { writeOnnx } from '../model/onnx.js';
import { trainCodt } from '../policy/train.js';
import { generateSy, loadNativeModel, nativeInfo } from '../native/index.js';
import { solve } from '../solve/index.js';
import { checkWritable, examples, fmt, intArg, roiText, roiValue, table, withOutputFlags } from './common.js';
import { trajectorySummary } from './data.js';
import { bar, Ui } from './ui.js';

interface DemoOpts {
  users: number;
  rounds: number;
  seed: number;
  epochs: number;
  out: string;
  json?: boolean;
  quiet?: boolean;
}

async function runDemo(o: DemoOpts): Promise<void> {
  const dataFile = `${o.out}.parquet`;
  const modelFile = `${o.out}.onnx`;
  checkWritable('--out', dataFile);
  const ui = new Ui(o);
  try {
    const info = nativeInfo();
    ui.info(`saco demo: native core loaded (CUDA ${info.cudaBuilt ? `built, ${info.cudaDevices} device(s) visible` : 'not built'})`);
    const t0 = performance.now();
    ui.phase(`synthesising ${o.users} users x ${o.rounds} rounds`);
    const log = await generateSy({ users: o.users, rounds: o.rounds, seed: o.seed });
    const tGen = performance.now() - t0;
    ui.phase(`writing ${dataFile}`);
    await writeLog(syLogToInteractionLog(log, { propensities: false }), dataFile);
    ui.info(`1. synthesised SY: ${o.users} users x ${o.rounds} rounds in ${fmt(tGen, 3)} ms (native), wrote ${dataFile}`);
    const t1 = performance.now();
    ui.phase(`reading ${dataFile}`);
    const { trajectories } = await readTrajectories(dataFile, { onProgress: (stage) => ui.phase(stage) });
    const s = trajectorySummary(trajectories);
    ui.info(`2. read it back through DuckDB in ${fmt(performance.now() - t1, 3)} ms: ${s.users} trajectories, T = ${s.rounds}, state dim ${s.stateDim}, ${s.actions}`);
    const { train, test } = splitByUser(trajectories, { seed: o.seed });
    const t2 = performance.now();
    let trainer = '';
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
      onStart: (i) => {
        trainer = i.engine;
        ui.info(`3. training a small weighted CODT (d_model 32, 2 layers) on ${train.users} users for ${o.epochs} epochs (trainer: ${i.engine})...`);
        ui.phase('training');
      },
      onProgress: (p) => ui.update(`epoch ${p.epoch}/${p.epochs} ${bar(p.batch / p.batches)} loss ${p.loss.toFixed(4)}`),
    });
    writeOnnx(result.model, modelFile);
    const m = result.model.meta;
    const trainSeconds = (performance.now() - t2) / 1000;
    ui.info(`   validation loss ${result.history.map((h) => h.valLoss.toFixed(3)).join(' -> ')} (uniform policy ${Math.log(4).toFixed(3)}), ${fmt(trainSeconds, 3)} s, wrote ${modelFile}`);
    const handle = loadNativeModel(result.model);
    const campaigns: Array<Record<string, unknown>> = [];
    const rows: string[][] = [];
    try {
      const env = { seed: o.seed, rounds: o.rounds };
      for (const budget of ['0.25x', '0.5x', '0.75x'] as const) {
        for (const policy of ['codt', 'random', 'oracle'] as const) {
          ui.phase(`planning: budget ${budget}, ${policy}`);
          const r = await solve({ users: test, budget, env, policy, model: handle, lambdaMax: 4 * m.normalization.lambdaMax });
          campaigns.push({ budget, budgetAmount: r.budget, policy, lambda: r.lambda, revenue: r.revenue, cost: r.cost, roi: roiValue(r.revenue, r.cost), baRate: r.baRate, rollouts: r.rollouts, wallMs: r.wallMs });
          rows.push([`${budget} = ${fmt(r.budget, 5)}`, policy === 'codt' ? 'SACO' : policy, policy === 'random' ? '-' : fmt(r.lambda, 3), fmt(r.revenue, 6), fmt(r.cost, 5), roiText(r.revenue, r.cost, 3), fmt(r.baRate, 3), String(r.rollouts), `${fmt(r.wallMs, 3)} ms`]);
        }
      }
    } finally {
      handle.unload();
    }
    ui.done();
    const doc = { data: dataFile, model: modelFile, trainer, testUsers: test.users, history: result.history, trainSeconds, campaigns };
    ui.result(doc, () => [
      `4. campaigns for the ${test.users} test users (SY ground truth), budgets as multiples of what uniform logging spends:`,
      ...table(['budget', 'policy', 'λ*', 'revenue', 'cost', 'ROI', 'BARate', 'rollouts', 'wall'], rows, '   '),
      '   (the Oracle knows the true response probabilities: an upper reference, myopic per round)',
    ]);
  } finally {
    ui.done();
  }
}

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description('the main job on built-in defaults: synthesise SY, read it back, train a small CODT, plan campaigns at three budgets')
    .option('--users <n>', 'number of users', intArg(20, 1e7), 4000)
    .option('--rounds <n>', 'rounds per user', intArg(1, 1000), 10)
    .option('--seed <n>', 'random seed', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--epochs <n>', 'training epochs of the small model', intArg(1, 1000), 6)
    .option('--out <prefix>', 'where to write the synthetic log (<prefix>.parquet) and the model (<prefix>.onnx)', 'sy-demo');
  withOutputFlags(cmd, 'print the steps and the campaign table as one JSON document');
  cmd.action(runDemo);
  examples(cmd, ['saco demo', 'saco demo --users 20000 --epochs 10 --out /tmp/run1 --json']);
}
