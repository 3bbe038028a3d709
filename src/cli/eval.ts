/** `saco eval`: SACO against the baselines (paper Table 1, Fig. 4, Fig. 5): report.json, report.md and charts. */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DATA_PRESET_NAMES, DEFAULT_BUDGETS, evaluate, parseBudgets, type EvalProgress } from '../eval/run.js';
import { METHODS, PLANNED_METHODS } from '../eval/methods.js';
import { offPolicyMethods, offPolicyRow } from '../eval/report.js';
import { examples, fmt, hasColumnFlags, intArg, listArg, schemaFrom, table, withColumnFlags, withOutputFlags, type InputOpts } from './common.js';
import { Ui, bar, duration } from './ui.js';

interface EvalOpts extends Omit<InputOpts, 'data' | 'glob'> {
  data: string;
  schema?: string;
  methods?: string[];
  budgets?: string[];
  seeds: number;
  out: string;
  users?: number;
  rounds?: number;
  epochs?: number;
  quick?: boolean;
  threads: number;
  charts: boolean;
  plans?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** --budgets: comma-separated "Nx" multiples or amounts, each > 0 (checked again by evaluate()). */
function budgetsArg(value: string): string[] {
  const list = listArg(value);
  try {
    parseBudgets(list);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^budgets: /, ''));
  }
  return list;
}

function progressLine(p: EvalProgress): string {
  const what = [p.phase === 'fit' ? 'training' : p.phase === 'run' ? 'running' : p.phase === 'data' ? 'data' : p.phase, p.method, p.budget, p.seed !== undefined ? `seed ${p.seed}` : undefined].filter(Boolean).join(' ');
  const eta = p.etaSeconds === null ? 'ETA –' : `ETA ${duration(p.etaSeconds)}`;
  return `${bar(p.total ? p.done / p.total : 1)} ${p.done}/${p.total} tasks, ${eta}: ${what}${p.detail ? ` (${p.detail})` : ''}`;
}

async function runEval(o: EvalOpts): Promise<void> {
  const ui = new Ui(o);
  try {
    ui.phase('saco eval');
    const result = await evaluate({
      data: o.data,
      schema: hasColumnFlags(o) ? schemaFrom(o.schema, o) : o.schema,
      methods: o.methods,
      budgets: o.budgets,
      seeds: o.seeds,
      out: o.out,
      users: o.users,
      rounds: o.rounds,
      quick: o.quick,
      threads: o.threads,
      charts: o.charts,
      plans: o.plans,
      training: o.epochs !== undefined ? { epochs: o.epochs } : undefined,
      onProgress: (p) => ui.update(progressLine(p)),
      onNotice: (line) => ui.notice(line),
    });
    ui.done();
    const rep = result.report;
    const doc = { files: { ...result.files, ...(o.plans ? { plans: path.join(o.out, 'plans') } : {}) }, work: result.work, table1: rep.table1, winsLosses: rep.winsLosses, gates: rep.gates, comparisons: rep.comparisons, offPolicy: rep.offPolicy };
    ui.result(doc, () => {
      const lines = [
        `${rep.data.preset}: ${rep.data.trainUsers} training + ${rep.data.testUsers} test users × ${rep.data.rounds} rounds, seeds ${rep.seeds.join(', ')}; budgets ${rep.budgets.map((b) => b.label).join(', ')} ("Nx": ${rep.budgetReference}${rep.data.kind === 'log' ? ' in the simulator' : ''})`,
        ...(rep.data.kind === 'log' ? [`world: ${rep.data.world}`] : []),
        ...(rep.data.unavailable?.length ? [`not run on this data: ${rep.data.unavailable.map((u) => `${u.label} (${u.why})`).join('; ')}`] : []),
        '',
        'Table 1 (means over budgets and seeds):',
        ...table(
          ['method', 'role', 'ROI', 'BARate', 'revenue', 'incremental'],
          rep.table1.map((r) => [r.label, r.role === 'reference' ? 'upper reference' : r.role, r.roi === null ? '–' : fmt(r.roi, 4), fmt(r.baRate, 3), fmt(r.revenue, 7), fmt(r.incrementalRevenue, 6)]),
          '  ',
        ),
      ];
      const saco = rep.methods.find((m) => m.role === 'saco');
      if (saco && rep.comparisons.length) {
        const others = rep.winsLosses.filter((w) => w.role === 'baseline');
        lines.push('', `${saco.label} − baseline revenue per budget (mean over seeds; Δ / sd of the paired difference):`);
        lines.push(
          ...table(
            ['budget', ...others.map((w) => w.otherLabel)],
            rep.budgets.map((b) => [
              b.label,
              ...others.map((w) => {
                const c = rep.comparisons.find((x) => x.other === w.other && x.budget === b.label);
                return c ? `${c.diff.mean >= 0 ? '+' : ''}${fmt(c.diff.mean, 4)}${c.sdUnits === null ? '' : ` (${c.sdUnits.toFixed(1)} sd)`}` : '–';
              }),
            ]),
            '  ',
          ),
        );
        lines.push('', `wins/losses: ${rep.winsLosses.map((w) => `${w.otherLabel} ${w.wins}/${w.losses}`).join(', ')}`);
        const ba = rep.gates.baRateInRange;
        lines.push(`${saco.label} BARate in [0.98, 1.0] at ${ba.filter((g) => g.ok).length}/${ba.length} budgets`);
      }
      if (rep.offPolicy.length) {
        const checked = offPolicyMethods(rep);
        lines.push('', `off-policy check on the logged outcomes (no simulator): round-0 revenue per test user, IPS ± SE (propensities: ${rep.offPolicy[0].source}; see report.md):`);
        lines.push(
          ...table(
            ['method', ...rep.budgets.map((b) => b.label)],
            checked.map((m) => [m.label, ...rep.budgets.map((b) => {
              const x = offPolicyRow(rep, m.name, b.label);
              return x ? `${fmt(x.revenue.ips, 4)} ± ${fmt(x.revenue.se, 2)}` : '–';
            })]),
            '  ',
          ),
        );
      }
      lines.push('', `wrote ${result.files.markdown}, ${result.files.json} and ${result.files.charts.length} chart(s) (SVG + PNG) in ${o.out}`);
      if (o.plans) lines.push(`every run's plan: ${path.join(o.out, 'plans')}`);
      lines.push(`${result.work.fits} model(s) trained, ${result.work.fitsReused} read from the cache; ${result.work.runs} run(s) computed, ${result.work.runsReused} reused; ${duration(result.work.seconds)} in all`);
      return lines;
    });
  } finally {
    ui.done();
  }
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description('compare SACO with the baselines on the same users and budgets: report.md (Table 1, per-budget tables, wins/losses), report.json and charts (SVG + PNG)')
    .option('--data <preset|file>', `SY preset (${DATA_PRESET_NAMES.join(', ')}: default dynamics, no sequential effects, η and δ doubled with fatigue decaying slower), or a log file read with --schema: its users split per seed (20% test users), every method fitted on the training users and compared on the test users in the learned simulator fitted on the training users (no Oracle there), and each plan's round 0 checked against the test users' logged outcomes by inverse propensity`, 'sy')
    .option('--schema <file>', 'the schema that reads the log of --data (as in saco train; or the column flags below, as there)')
    .option('--methods <list>', `methods, comma-separated (default: all available): ${METHODS.map((m) => m.name).join(', ')}${PLANNED_METHODS.length ? ` (coming: ${PLANNED_METHODS.join(', ')})` : ''}`, listArg)
    .option('--budgets <list>', `budgets, comma-separated: multiples of the uniform logging policy's spend on the same users (0.5x) or amounts (default: ${DEFAULT_BUDGETS.join(',')})`, budgetsArg)
    .option('--seeds <n>', 'seeds 1..n: each an SY world, its training log and fresh test users (a log: a split of its users and the simulator fitted on the training ones)', intArg(1, 1000), 3)
    .requiredOption('--out <dir>', 'output folder (created; cache/ and results/ in it make a rerun resume)')
    .option('--users <n>', 'SY users per seed, 80% to train on, 20% fresh test users (default 10000; 1500 with --quick); a log: at most this many of its users (a seeded subsample; default all)', intArg(20, 1e9))
    .option('--rounds <n>', 'SY rounds per user (default 10; 5 with --quick); a log has its own', intArg(1, 1000))
    .option('--epochs <n>', 'training epochs of every CODT (default: the trainer default, 4 with --quick)', intArg(1, 100000))
    .option('--quick', 'a small, fast run: fewer users and rounds, small models, few epochs')
    .option('--threads <n>', 'native threads (0: all cores)', intArg(0, 1024), 0)
    .option('--no-charts', 'skip the SVG and PNG charts')
    .option('--plans', "write every run's plan to <out>/plans/<method>__<budget>__seed<seed>.csv.gz (saco solve's plan-file columns, one row per test user and round), to value the plans outside the simulator");
  withColumnFlags(cmd);
  withOutputFlags(cmd, 'print Table 1, the comparisons, the off-policy check (a log) and the file names as one JSON document');
  cmd.action(runEval);
  examples(cmd, [
    'saco eval --data sy --out eval-sy',
    'saco eval --data sy-static --methods saco,random,best-arm,oracle --budgets 0.2x,0.5x,0.8x --seeds 3 --out eval-static',
    'saco eval --quick --out /tmp/eval-quick',
    'saco eval --data starbucks.csv --schema schemas/starbucks.json --users 20000 --seeds 3 --out eval-starbucks',
  ]);
}
