/**
 * `saco eval` on an MT-LIFT-like RCT whose response is known (bench/mtlift-world.ts): every
 * method's plan, written by `--plans`, valued with the true response beside the learned
 * simulator's verdict in report.json. Not wired into bench/index.ts; run it alone:
 *
 *   node --import tsx bench/eval-mtlift.ts [--users=50000] [--world=1] [--seeds=1]
 *     [--budgets=0.25x,0.5x,0.75x] [--methods=saco,forest,…] [--out=DIR]
 *
 * The log (world seed `--world`) is written to DIR/mtlift-<users>-w<world>.csv once; `saco eval` then runs in
 * DIR as a user would run it (its cache makes a rerun cheap). For each (method, budget) it
 * prints, as means over the seeds: the incremental revenue over no coupon that the simulator
 * reported, the true one of the same plan on the same test users, the plan's true spend against
 * the budget, and what the true response's own greedy plan earns within that budget (the
 * ceiling). A ranking the simulator gives that the truth does not is the simulator's opinion.
 */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLog } from '../src/data/write.js';
import { evaluateWithPlans, readPlanFile } from './eval-plans.js';
import { ARMS, COST_PER_LEVEL, FEATURES, greedyPlanWithin, mtliftLog, trueIncrement, trueScores } from './mtlift-world.js';

export interface EvalTruthRow {
  method: string;
  label: string;
  role: string;
  budget: string;
  /** Means over seeds. */
  simulatorIncrement: number;
  trueIncrement: number;
  /** The plan's true (stated) spend over the budget. */
  trueBaRate: number;
  /** A reference on the same users and budget: here the true response's greedy plan (bench/eval-sy-log.ts: SY's myopic Oracle). */
  ceiling: number;
  /** The true incremental revenue per seed, in the report's seed order. */
  truePerSeed: number[];
}

export async function benchEvalMtlift(o: { users?: number; world?: number; seeds?: number; budgets?: string[]; methods?: string[]; out?: string } = {}): Promise<EvalTruthRow[]> {
  const users = o.users ?? 50000;
  const world = o.world ?? 1;
  const out = o.out ?? path.join(os.tmpdir(), `saco-eval-mtlift-${users}-w${world}`);
  const file = path.join(out, `mtlift-${users}-w${world}.csv`);
  const log = mtliftLog(users, world);
  mkdirSync(out, { recursive: true });
  if (!existsSync(file)) await writeLog(log, file);
  const { report } = await evaluateWithPlans(file, { user: 'user_id', time: 'time', actions: [{ column: 'treatment', control: 0 }], cost: 'cost', reward: 'reward' }, { out, seeds: o.seeds ?? 1, budgets: o.budgets ?? ['0.25x', '0.5x', '0.75x'], methods: o.methods });
  const rows: EvalTruthRow[] = [];
  const ceilings = new Map<string, number>();
  for (const m of report.methods) {
    for (const b of report.budgets) {
      const recs = report.records.filter((r) => r.method === m.name && r.budget === b.label);
      const per = recs.map((r) => {
        const rows = readPlanFile(path.join(out, r.planFile as string), ['treatment']);
        const plan = { users: Int32Array.from(rows.userIds, Number), arms: Int32Array.from(rows.labels[0], Number) };
        const spend = plan.arms.reduce((s, t) => s + COST_PER_LEVEL * t, 0);
        const budget = r.budgetAmount;
        // the true response's own plan: the same test users and budget for every method of a (seed, budget)
        const key = `${r.seed}|${b.label}`;
        if (!ceilings.has(key)) {
          const truth = trueScores(log.states, plan.users);
          ceilings.set(key, trueIncrement(log.states, plan.users, greedyPlanWithin(truth.reward, truth.cost, budget)));
        }
        return {
          simulator: r.incrementalRevenue,
          truth: trueIncrement(log.states, plan.users, plan.arms),
          baRate: spend / budget,
          ceiling: ceilings.get(key) as number,
        };
      });
      const mean = (f: (x: (typeof per)[number]) => number) => per.reduce((s, x) => s + f(x), 0) / Math.max(per.length, 1);
      rows.push({ method: m.name, label: m.label, role: m.role, truePerSeed: per.map((x) => x.truth), budget: b.label, simulatorIncrement: mean((x) => x.simulator), trueIncrement: mean((x) => x.truth), trueBaRate: mean((x) => x.baRate), ceiling: mean((x) => x.ceiling) });
    }
  }
  return rows;
}

/** Ranks with ties averaged (1-based). */
function ranks(x: number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let k = 0; k < order.length; ) {
    let e = k;
    while (e + 1 < order.length && order[e + 1][0] === order[k][0]) e++;
    for (let q = k; q <= e; q++) r[order[q][1]] = (k + e) / 2 + 1;
    k = e + 1;
  }
  return r;
}

/** Spearman's rank correlation of a and b (Pearson's of their ranks). */
export function spearman(a: number[], b: number[]): number {
  const [ra, rb] = [ranks(a), ranks(b)];
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const [ma, mb] = [mean(ra), mean(rb)];
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < ra.length; i++) [ab, aa, bb] = [ab + (ra[i] - ma) * (rb[i] - mb), aa + (ra[i] - ma) ** 2, bb + (rb[i] - mb) ** 2];
  return ab / Math.sqrt(aa * bb);
}

/** Markdown: per method, the simulator's and the true incremental revenue at each budget. */
export function evalTruthTable(rows: EvalTruthRow[], ceilingLabel = 'true response (ceiling)'): string {
  const budgets = [...new Set(rows.map((r) => r.budget))];
  const f = (x: number) => x.toFixed(1);
  const out = [`| method | ${budgets.map((b) => `${b}: simulator / true (true spend ÷ budget)`).join(' | ')} |`, `| --- | ${budgets.map(() => '---:').join(' | ')} |`];
  for (const label of [...new Set(rows.map((r) => r.label))]) {
    out.push(`| ${label} | ${budgets.map((b) => rows.find((r) => r.label === label && r.budget === b)).map((r) => (r ? `${f(r.simulatorIncrement)} / **${f(r.trueIncrement)}** (${r.trueBaRate.toFixed(2)})` : '–')).join(' | ')} |`);
  }
  const at = (b: string) => rows.filter((r) => r.budget === b);
  out.push(`| rank correlation of the two columns over the methods (Spearman) | ${budgets.map((b) => spearman(at(b).map((r) => r.simulatorIncrement), at(b).map((r) => r.trueIncrement)).toFixed(2)).join(' | ')} |`);
  out.push(`| ${ceilingLabel} | ${budgets.map((b) => f(rows.find((r) => r.budget === b && r.method !== 'no-coupon')?.ceiling ?? NaN)).join(' | ')} |`);
  const saco = rows.filter((r) => r.role === 'saco');
  const cells = saco.flatMap((r) => r.truePerSeed.map((v, k) => rows.filter((o) => o.budget === r.budget && o.role === 'baseline').every((o) => v >= o.truePerSeed[k])));
  if (cells.length) out.push('', `In truth SACO earns at least as much as every baseline in ${cells.filter(Boolean).length} of ${cells.length} (budget, seed) cells.`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const num = (name: string) => (arg(name) ? Number(arg(name)) : undefined);
  const t0 = performance.now();
  const rows = await benchEvalMtlift({ users: num('users'), world: num('world'), seeds: num('seeds'), budgets: arg('budgets')?.split(','), methods: arg('methods')?.split(','), out: arg('out') });
  console.log(`\nincremental revenue over no coupon on the test users (${FEATURES} features, ${ARMS} arms): the learned simulator's verdict / the truth\n\n${evalTruthTable(rows)}\n\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
