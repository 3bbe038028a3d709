/**
 * `saco eval` on an SY log read as a user's log (the judge is the learned simulator), every
 * plan then shipped as written (`--plans`) to the same users in SY's ground truth: what a
 * multi-round campaign planned on one's own logs earns, beside the simulator's verdict. Not
 * wired into bench/index.ts; run it alone:
 *
 *   node --import tsx bench/eval-sy-log.ts [--users=10000] [--rounds=10] [--world=1]
 *     [--seeds=3] [--budgets=0.25x,0.5x,0.75x] [--methods=saco,forest,…] [--static] [--out=DIR]
 *
 * The log is SY world `--world`, uniformly logged (written once to DIR, named by its size and
 * world). No Coupon must be among the methods (it is the base of every increment). A plan file
 * is open loop: each (user, round) gets the written action whatever happens, so in the truth
 * its spend is not held to the budget: the bench prints the true spend over the budget beside
 * the true incremental revenue over no coupon (the world's own purchase draws, the TypeScript
 * reference of SY: src/data/synth.ts). Beside them: SY's myopic Oracle run by solve() on the
 * same users at the same budget (closed loop, the budget rule enforced): a reference, not an
 * upper bound (it is myopic in a sequential world, and the open-loop plans are not held to the
 * budget).
 */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { syLogToInteractionLog } from '../src/data/log.js';
import { resolveSyConfig, syActionColumn, syInitialUser, syStep, syWeights, type SyConfig } from '../src/data/synth.js';
import { writeLog } from '../src/data/write.js';
import { generateSy } from '../src/native/index.js';
import { solve } from '../src/solve/index.js';
import { evaluateWithPlans, readPlanFile } from './eval-plans.js';
import { evalTruthTable, type EvalTruthRow } from './eval-mtlift.js';


/** Revenue and spend of a written plan shipped open loop to its users in SY's truth. */
function shipInTruth(config: SyConfig, file: string): { revenue: number; cost: number; ids: number[] } {
  const columns = config.actionDims.map((_, j) => syActionColumn(config, j));
  const plan = readPlanFile(file, columns);
  const w = syWeights(config);
  const action = new Int32Array(config.actionDims.length);
  let revenue = 0;
  let cost = 0;
  plan.userIds.forEach((id, i) => {
    const user = syInitialUser(config, w, Number(id));
    for (let t = 0; t < plan.rounds; t++) {
      config.actionDims.forEach((d, j) => {
        const k = d.values.indexOf(Number(plan.labels[j][i * plan.rounds + t]));
        if (k < 0) throw new Error(`${file}: ${columns[j]} ${plan.labels[j][i * plan.rounds + t]} is not a value of SY's ${d.name}`);
        action[j] = k;
      });
      const step = syStep(config, user, t, action);
      revenue += step.reward;
      cost += step.cost;
    }
  });
  return { revenue, cost, ids: plan.userIds.map(Number) };
}

export async function benchEvalSyLog(o: { users?: number; rounds?: number; world?: number; seeds?: number; budgets?: string[]; methods?: string[]; sequential?: boolean; out?: string } = {}): Promise<EvalTruthRow[]> {
  if (o.methods && !o.methods.includes('no-coupon')) throw new Error('no-coupon must be among --methods: it is the base of every incremental revenue');
  const world = { seed: o.world ?? 1, users: o.users ?? 10000, rounds: o.rounds ?? 10, sequential: o.sequential ?? true };
  const out = o.out ?? path.join(os.tmpdir(), `saco-eval-sy-log-${world.users}x${world.rounds}-w${world.seed}${world.sequential ? '' : '-static'}`);
  const file = path.join(out, `sy-log-${world.users}x${world.rounds}-w${world.seed}${world.sequential ? '' : '-static'}.csv`);
  mkdirSync(out, { recursive: true });
  if (!existsSync(file)) await writeLog(syLogToInteractionLog(await generateSy(world), { propensities: false }), file);
  const config = resolveSyConfig(world);
  const { report } = await evaluateWithPlans(file, { user: 'user_id', time: 'time', cost: 'cost', reward: 'reward' }, { out, seeds: o.seeds ?? 3, budgets: o.budgets ?? ['0.25x', '0.5x', '0.75x'], methods: o.methods });
  const planOf = (r: (typeof report.records)[number]) => path.join(out, r.planFile as string);
  const noCoupon = report.records.filter((r) => r.method === 'no-coupon');
  if (noCoupon.length === 0) throw new Error('no-coupon must be among --methods: it is the base of every incremental revenue');
  const none = new Map(noCoupon.map((r) => [r.seed, shipInTruth(config, planOf(r))]));
  const oracle = new Map<string, number>();
  const rows: EvalTruthRow[] = [];
  for (const m of report.methods) {
    for (const b of report.budgets) {
      const per = await Promise.all(
        report.records
          .filter((r) => r.method === m.name && r.budget === b.label)
          .map(async (r) => {
            const shipped = shipInTruth(config, planOf(r));
            const base = none.get(r.seed) as { revenue: number };
            const budget = r.budgetAmount;
            const key = `${b.label}|${r.seed}`;
            if (!oracle.has(key)) {
              const ids = Uint32Array.from(shipped.ids);
              const o = await solve({ users: { ids }, env: world, rounds: world.rounds, budget, policy: 'oracle', lambdaMax: 100 });
              oracle.set(key, o.revenue - base.revenue);
            }
            return { simulator: r.incrementalRevenue, truth: shipped.revenue - base.revenue, baRate: shipped.cost / budget, oracle: oracle.get(key) as number };
          }),
      );
      const mean = (f: (x: (typeof per)[number]) => number) => per.reduce((s, x) => s + f(x), 0) / Math.max(per.length, 1);
      rows.push({ method: m.name, label: m.label, role: m.role, budget: b.label, simulatorIncrement: mean((x) => x.simulator), trueIncrement: mean((x) => x.truth), trueBaRate: mean((x) => x.baRate), ceiling: mean((x) => x.oracle), truePerSeed: per.map((x) => x.truth) });
    }
  }
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const num = (name: string) => (arg(name) ? Number(arg(name)) : undefined);
  const t0 = performance.now();
  const rows = await benchEvalSyLog({ users: num('users'), rounds: num('rounds'), world: num('world'), seeds: num('seeds'), budgets: arg('budgets')?.split(','), methods: arg('methods')?.split(','), sequential: !process.argv.includes('--static'), out: arg('out') });
  const table = evalTruthTable(rows, "SY's myopic Oracle (closed loop, budget enforced; a reference)");
  console.log(`\nincremental revenue over no coupon on the test users, plans shipped open loop in SY's truth: the learned simulator's verdict / the truth\n\n${table}\n\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
