/** `saco sim check`: the learned simulator against SY's ground truth (src/sim/check.ts), as tables. */
import { Command, Option } from 'commander';
import { checkDataMatchesModel } from '../model/artifact.js';
import { readOnnx } from '../model/onnx.js';
import type { CodtModel } from '../model/artifact.js';
import { trainCodt } from '../policy/train.js';
import { checkSimulatorOnSy, syCheckLog, type SimCheckReport } from '../sim/check.js';
import { readSimulator, type Simulator } from '../sim/simulator.js';
import type { SyOptions } from '../data/synth.js';
import { examples, fmt, intArg, numArg, table, withOutputFlags } from './common.js';
import { Ui } from './ui.js';

interface SimCheckOpts {
  users: number;
  testUsers: number;
  rounds: number;
  logging: 'uniform' | 'biased';
  biasStrength: number;
  seed: number;
  model?: string;
  sim?: string;
  epochs: number;
  threads: number;
  json?: boolean;
  quiet?: boolean;
}

const pct = (v: number | null): string => (v === null ? '–' : `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}%`);

/** The report as lines: policies, per-round revenue errors, the replayed plan, gates. */
export function simCheckLines(r: SimCheckReport): string[] {
  const L: string[] = [];
  L.push(`simulator (${r.simulator.arms === 'per-arm' ? `${r.simulator.models} outcome models, one per action` : 'one pooled outcome model'}) fitted on SY seed ${r.sy.seed}, ${r.logging} logging, ${fmt(r.trainUsers, 8)} users x ${r.rounds} rounds in ${fmt(r.simulator.fitSeconds, 3)} s; ${fmt(r.testUsers, 8)} fresh users in both worlds`);
  L.push('');
  L.push(
    ...table(
      ['policy', 'λ', 'revenue sim', 'revenue truth', 'error', 'cost sim', 'cost truth', 'error'],
      r.rows.map((x) => [x.policy, x.lambda === null ? '–' : fmt(x.lambda, 4), fmt(x.sim.revenue, 7), fmt(x.truth.revenue, 7), pct(x.revenueError), fmt(x.sim.cost, 6), fmt(x.truth.cost, 6), x.spends ? pct(x.costError) : '–']),
    ),
  );
  L.push(`Kendall τ between the revenue rankings: ${r.tau.toFixed(3)}`);
  L.push('');
  L.push('revenue error by round (sim / truth − 1):');
  const short = (name: string) => name.replace('Oracle λ=', 'Or ').replace(/SACO λ\*\((.*)\)/, 'SACO $1').replace('No coupon', 'none');
  L.push(
    ...table(
      ['round', ...r.rows.map((x) => short(x.policy))],
      Array.from({ length: r.rounds }, (_, t) => [String(t), ...r.rows.map((x) => pct(x.truth.revenueByRound[t] !== 0 ? x.sim.revenueByRound[t] / x.truth.revenueByRound[t] - 1 : null))]),
      '  ',
    ),
  );
  L.push('');
  const p = r.plan;
  L.push(`plan made through the simulator: budget ${fmt(p.budget, 6)}, λ* ${fmt(p.lambda, 4)} (${p.rollouts} rollouts; the truth's own λ* for this budget: ${fmt(p.truthLambda, 4)})`);
  L.push(`  in the simulator: revenue ${fmt(p.sim.revenue, 7)}, cost ${fmt(p.sim.cost, 6)}, BARate ${p.sim.baRate.toFixed(3)}`);
  L.push(`  replayed in SY's truth: revenue ${fmt(p.truth.revenue, 7)} (${pct(p.revenueError)} vs the simulator's), cost ${fmt(p.truth.cost, 6)}, true BARate ${p.truth.baRate.toFixed(3)}`);
  L.push('');
  L.push('history features in use (share of each head\'s gain): ' + r.simulator.historyImportance.map((h) => `${h.head} ${(100 * h.share).toFixed(1)}%`).join(', '));
  L.push('gates:');
  for (const g of r.gates) L.push(`  ${g.pass ? 'PASS' : 'FAIL'}  ${g.name}: ${g.value}`);
  return L;
}

async function runSimCheck(o: SimCheckOpts): Promise<void> {
  const ui = new Ui(o);
  const sy: SyOptions = { seed: o.seed, rounds: o.rounds, logging: o.logging === 'biased' ? { kind: 'biased', strength: o.biasStrength } : { kind: 'uniform' } };
  let simulator: Simulator | undefined;
  try {
    ui.phase(`generating the SY log (${o.users.toLocaleString('en-US')} users x ${o.rounds} rounds)`);
    const train = await syCheckLog(sy, o.users, o.threads);
    let model: CodtModel;
    if (o.model) {
      ui.phase(`reading ${o.model}`);
      model = readOnnx(o.model);
      checkDataMatchesModel(model.meta, train);
    } else {
      ui.phase(`training SACO (${o.epochs} epochs) on the same log`);
      model = (await trainCodt(train, { epochs: o.epochs, seed: 1, threads: o.threads, onProgress: (p) => ui.update(`epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}`) })).model;
    }
    if (o.sim) {
      ui.phase(`reading ${o.sim}`);
      simulator = readSimulator(o.sim);
    }
    const report = await checkSimulatorOnSy({ sy, trainUsers: o.users, testUsers: o.testUsers, model, simulator, threads: o.threads, onProgress: (stage) => ui.phase(stage) });
    ui.done();
    ui.result(report, () => simCheckLines(report));
  } finally {
    simulator?.dispose();
    ui.done();
  }
}

export function registerSimCheck(program: Command): void {
  const sim = program.commands.find((c) => c.name() === 'sim') ?? program.command('sim').description('the learned offline simulator: check it against SY\'s ground truth');
  const cmd = sim
    .command('check')
    .description("fit the simulator on an SY log, run the same policies (no coupon, Random, the Oracle at 3 λ, SACO at 3 budgets) in it and in SY's truth on fresh users, and print the errors, τ and a replayed plan")
    .option('--users <n>', 'users of the SY log the simulator and SACO are fitted on', intArg(100, 10_000_000), 30000)
    .option('--test-users <n>', 'fresh users run in both worlds', intArg(10, 10_000_000), 5000)
    .option('--rounds <n>', 'rounds of the SY world', intArg(1, 1000), 10)
    .addOption(new Option('--logging <policy>', 'logging policy of the SY log').choices(['uniform', 'biased']).default('uniform'))
    .option('--bias-strength <x>', 'strength of the biased logger', numArg(-100, 100), 1.5)
    .option('--seed <n>', 'seed of the SY world', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--model <file>', 'SACO model trained on this SY world (.onnx); default: trained here')
    .option('--epochs <n>', 'epochs when SACO is trained here', intArg(1, 1000), 5)
    .option('--sim <file>', 'a simulator fitted on this SY world\'s log of --users users (default: fitted here)')
    .option('--threads <n>', 'native threads (0: all cores)', intArg(0, 1024), 0);
  withOutputFlags(cmd, 'print the whole report (every policy per round, the plan, the gates) as one JSON document');
  cmd.action(async (o: SimCheckOpts) => runSimCheck(o));
  examples(cmd, ['saco sim check', 'saco sim check --logging biased --json', 'saco sim check --users 8000 --test-users 2000 --model sy-model.onnx']);
}
