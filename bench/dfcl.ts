/**
 * Issue 14's DFCL gates, measured (not wired into bench/index.ts; run it alone:
 * `node --import tsx bench/dfcl.ts [--quick] [--seeds=3] [--users=8000] [--option=value …]`).
 *
 * Per seed (an SY world, its uniformly logged training users, as `saco eval` builds them):
 * 1. fitDfcl on the training log: J (the decision objective of src/policy/dfcl.ts, IPW value
 *    per user of argmax r̃ − λ·c̃, mean over its λ grid) of the two-stage start and of the
 *    decision-focused fine-tune, on the fit's own validation users (they decide whether it is kept) and
 *    on a fresh uniformly logged log of the same world that nothing saw (the honest number).
 *    Both SY default and SY --static.
 * 2. SY --static only: at 0.5x of the logging policy's spend on fresh users, the incremental
 *    revenue (over no coupon) of DFCL (λ searched, src/policy/scored.ts), of its two-stage
 *    start, and of the causal Forest (solve policy 'forest'), as a share of the myopic
 *    Oracle's (solve policy 'oracle'); gate ≥ 90%.
 * Extra `--name=value` flags are passed to fitDfcl (epochs, learningRate, l2, temperature,
 * estimator, rounds, …), so variants can be compared on the same data.
 */
import { fileURLToPath } from 'node:url';
import { syLogToInteractionLog } from '../src/data/log.js';
import { resolveSyConfig, syCouponValue, syPurchaseProbability, syUserConstants, syWeights, type SyConfig, type SyOptions } from '../src/data/synth.js';
import { buildTrajectories, selectUsers, type Trajectories } from '../src/data/trajectories.js';
import { generateSy, nativeRollout } from '../src/native/index.js';
import { dfclScorer, pairedDifference, userDecisionValues, fitDfcl, type DfclOptions } from '../src/policy/dfcl.js';
import { fitForest } from '../src/policy/forest.js';
import { searchScoredLambda, type ActionScorer } from '../src/policy/scored.js';
import { solve } from '../src/solve/index.js';

export interface DfclSeedRow {
  world: 'default' | 'static';
  seed: number;
  /** J on the fit's validation users (they decide whether the fine-tune is kept). */
  validation: { twoStage: number; fineTuned: number; difference: number; se: number };
  /** J on a fresh logged sample of the same world; the paired per-user difference with its standard error. */
  fresh: { twoStage: number; fineTuned: number; difference: number; se: number };
  /** J of SY's true expected outcomes (the myopic Oracle's allocation) on the same fresh log: the ceiling. */
  freshTrue: number;
  kept: string;
  /** J on the fresh log of the fine-tune's last epoch, kept or not (the guard's effect shows against `fresh.fineTuned`). */
  freshUnguarded: number;
  epochs: number;
  fitSeconds: number;
  /** static only: shares of the Oracle's incremental revenue at 0.5x. */
  gate?: { budget: number; oracle: number; none: number; dfcl: number; twoStage: number; forest: number; dfclShare: number; twoStageShare: number; forestShare: number; dfclBaRate: number; forestBaRate: number };
}

/** The uniformly logged users [firstId, firstId + users) of the SY world `env` (ids are what a user's features are drawn from). */
async function log(env: SyOptions, users: number, firstId = 0): Promise<Trajectories> {
  const all = buildTrajectories(syLogToInteractionLog(await generateSy(resolveSyConfig({ ...env, users: firstId + users }))));
  return firstId === 0 ? all : selectUsers(all, Array.from({ length: users }, (_, i) => firstId + i));
}

/**
 * SY's true expected reward and cost of every arm (the myopic Oracle's scores) from the design
 * rows: the state columns are x, engagement, fatigue, t/T (src/data/synth.ts syObserve).
 */
function trueScorer(config: SyConfig, like: ActionScorer): ActionScorer {
  const w = syWeights(config);
  const d = config.features;
  const P = like.layout.names.length;
  const A = like.layout.actionSizes.length;
  const s0 = like.layout.offsets.state;
  return {
    ...like,
    async score(x) {
      const n = x.length / P;
      const K = like.K;
      const reward = new Float64Array(n * K);
      const cost = new Float64Array(n * K);
      for (let r = 0; r < n; r++) {
        const u = syUserConstants(config, w, x.subarray(r * P + s0, r * P + s0 + d));
        for (let a = 0; a < K; a++) {
          // layout value index = SY value index for SY logs (values in config order)
          const v = syCouponValue(config, like.actions.subarray(a * A, (a + 1) * A), u.basket);
          const p = syPurchaseProbability(config, u, x[r * P + s0 + d], x[r * P + s0 + d + 1], v);
          reward[r * K + a] = p * u.basket;
          cost[r * K + a] = p * v;
        }
      }
      return { reward, cost };
    },
  };
}

const mean = (v: Float64Array) => v.reduce((x, y) => x + y, 0) / Math.max(v.length, 1);

/** Means of per-user a and b, and of b − a with its standard error. */
function paired(a: Float64Array, b: Float64Array): DfclSeedRow['fresh'] {
  const d = pairedDifference(b, a);
  return { twoStage: mean(a), fineTuned: mean(b), difference: d.mean, se: d.se };
}

export async function benchDfcl(options: { quick?: boolean; seeds?: number[]; users?: number; fresh?: number; testUsers?: number; dfcl?: DfclOptions; worlds?: Array<'default' | 'static'>; gate?: boolean } = {}): Promise<DfclSeedRow[]> {
  const quick = options.quick ?? false;
  const seeds = options.seeds ?? [1, 2, 3];
  const users = options.users ?? (quick ? 1500 : 8000);
  const freshUsers = options.fresh ?? (quick ? 1000 : 4000);
  const testUsers = options.testUsers ?? (quick ? 500 : 2000);
  const rows: DfclSeedRow[] = [];
  for (const world of options.worlds ?? (['default', 'static'] as const)) {
    for (const seed of seeds) {
      const env: SyOptions = { seed, sequential: world === 'default' };
      const config = resolveSyConfig(env);
      const train = await log(env, users);
      const fresh = await log(env, freshUsers, users + testUsers);
      const t0 = performance.now();
      const fit = await fitDfcl(train, { seed, rounds: quick ? 60 : 200, ...options.dfcl });
      const fitSeconds = (performance.now() - t0) / 1000;
      try {
        const twoStage = dfclScorer(fit.model, null);
        const row: DfclSeedRow = {
          world,
          seed,
          validation: { twoStage: fit.objective.before, fineTuned: fit.objective.after, difference: fit.objective.difference.mean, se: fit.objective.difference.se },
          fresh: paired(await userDecisionValues(twoStage, fresh, fit.lambdas), await userDecisionValues(fit.scorer, fresh, fit.lambdas)),
          freshTrue: mean(await userDecisionValues(trueScorer(config, twoStage), fresh, fit.lambdas)),
          kept: fit.objective.kept,
          freshUnguarded: NaN,
          epochs: fit.objective.epochs,
          fitSeconds,
        };
        const last = fit.objective.trace[fit.objective.trace.length - 1];
        row.freshUnguarded = last ? mean(await userDecisionValues(dfclScorer(fit.model, last.correction), fresh, fit.lambdas)) : row.fresh.fineTuned;
        if (world === 'static' && options.gate !== false) {
          // the test users: ids after the training users (as saco eval), features from the world's seed
          const ids = Uint32Array.from({ length: testUsers }, (_, i) => users + i);
          const logging = await nativeRollout({ env: config, rounds: config.rounds, budget: Infinity, policy: 'random', lambda: 0, userIds: ids });
          const budget = 0.5 * logging.cost;
          const none = await nativeRollout({ env: config, rounds: config.rounds, budget: 1e-9, policy: 'random', lambda: 0, userIds: ids });
          const o = await solve({ policy: 'oracle', users: { ids }, budget, env, lambdaMax: 20 });
          const spec = { env: config, rounds: config.rounds, userIds: ids, template: train, budget };
          const d = await searchScoredLambda({ ...spec, scorer: fit.scorer });
          const s = fit.correction ? await searchScoredLambda({ ...spec, scorer: twoStage }) : d;
          const forest = await fitForest(train, { trees: quick ? 30 : 100, seed });
          let fr;
          try {
            fr = await solve({ policy: 'forest', forest, users: { ids }, budget, env });
          } finally {
            forest.unload();
          }
          const inc = (v: number) => (v - none.revenue) / (o.revenue - none.revenue);
          row.gate = {
            budget,
            oracle: o.revenue,
            none: none.revenue,
            dfcl: d.revenue,
            twoStage: s.revenue,
            forest: fr.revenue,
            dfclShare: inc(d.revenue),
            twoStageShare: inc(s.revenue),
            forestShare: inc(fr.revenue),
            dfclBaRate: d.cost / budget,
            forestBaRate: fr.cost / budget,
          };
        }
        rows.push(row);
        console.log(JSON.stringify(row));
        if (process.argv.includes('--trace')) {
          const j0 = row.fresh.twoStage;
          const line: string[] = [];
          for (const t of fit.objective.trace) line.push(`${t.epoch}: val ${t.heldOut.toFixed(2)} fresh ${((await userDecisionValues(dfclScorer(fit.model, t.correction), fresh, fit.lambdas)).reduce((a, b) => a + b, 0) / fresh.users - j0).toFixed(2)}`);
          console.log(`fine-tune trace (fresh: J − two-stage J): ${line.join('; ')}`);
        }
      } finally {
        fit.release();
      }
    }
  }
  return rows;
}

const ms = (v: number[]) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(v.length - 1, 1));
  return `${m.toFixed(2)} ± ${sd.toFixed(2)}`;
};
const pct = (v: number[]) => ms(v.map((x) => 100 * x)).replace(/ ± /, '% ± ') + '%';

/** Markdown: mean ± sd over seeds per world. */
export function dfclTables(rows: DfclSeedRow[]): string {
  const out = [
    '| SY | J two-stage (validation) | J fine-tuned (validation) | J two-stage (fresh log) | J fine-tuned (fresh log) | fresh gain (paired SE per seed) | fine-tune unguarded (fresh log) | J of the true response (fresh log) | kept |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const world of ['default', 'static'] as const) {
    const r = rows.filter((x) => x.world === world);
    if (!r.length) continue;
    out.push(
      `| ${world} | ${ms(r.map((x) => x.validation.twoStage))} | ${ms(r.map((x) => x.validation.fineTuned))} | ${ms(r.map((x) => x.fresh.twoStage))} | ${ms(r.map((x) => x.fresh.fineTuned))} | ${ms(r.map((x) => x.fresh.difference))} (${r.map((x) => `${x.fresh.difference.toFixed(2)} ± ${x.fresh.se.toFixed(2)}`).join('; ')}) | ${ms(r.map((x) => x.freshUnguarded))} | ${ms(r.map((x) => x.freshTrue))} | ${r.map((x) => x.kept).join(', ')} |`,
    );
  }
  const g = rows.filter((x) => x.gate).map((x) => x.gate!);
  if (g.length) {
    out.push('', '| SY --static, 0.5x | DFCL | DFCL two-stage | Forest |', '| --- | ---: | ---: | ---: |');
    out.push(`| share of the Oracle's incremental revenue | ${pct(g.map((x) => x.dfclShare))} | ${pct(g.map((x) => x.twoStageShare))} | ${pct(g.map((x) => x.forestShare))} |`);
    out.push(`| per seed | ${g.map((x) => (100 * x.dfclShare).toFixed(1)).join(', ')} | ${g.map((x) => (100 * x.twoStageShare).toFixed(1)).join(', ')} | ${g.map((x) => (100 * x.forestShare).toFixed(1)).join(', ')} |`);
    out.push(`| BARate | ${ms(g.map((x) => x.dfclBaRate))} | | ${ms(g.map((x) => x.forestBaRate))} |`);
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const known = new Set(['trace', 'quick', 'seeds', 'users', 'fresh', 'test-users', 'worlds', 'no-gate']);
  const dfcl: Record<string, unknown> = {};
  for (const a of process.argv.slice(2)) {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (m && !known.has(m[1])) dfcl[m[1]] = Number.isFinite(Number(m[2])) ? Number(m[2]) : m[2];
  }
  const seeds = arg('seeds');
  const t0 = performance.now();
  const rows = await benchDfcl({
    quick: process.argv.includes('--quick'),
    seeds: seeds ? (seeds.includes(',') ? seeds.split(',').map(Number) : Array.from({ length: Number(seeds) }, (_, i) => i + 1)) : undefined,
    users: arg('users') ? Number(arg('users')) : undefined,
    fresh: arg('fresh') ? Number(arg('fresh')) : undefined,
    testUsers: arg('test-users') ? Number(arg('test-users')) : undefined,
    worlds: arg('worlds')?.split(',') as Array<'default' | 'static'> | undefined,
    gate: !process.argv.includes('--no-gate'),
    dfcl: dfcl as DfclOptions,
  });
  console.log(`\n${dfclTables(rows)}\n\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
