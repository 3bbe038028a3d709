/**
 * DFCL's start on an MT-LIFT-like RCT, judged by the true response (not wired into
 * bench/index.ts; run it alone: `node --import tsx bench/dfcl-mtlift.ts [--samples=4]
 * [--users=50000]`).
 *
 * The log is generated with a known response (bench/mtlift-world.ts), so a plan's true value
 * can be computed. Per sample (a seed), 80% of the users train and 20% are test users; fitDfcl fits
 * with `arms` 'select' (the default), 'pooled' and 'per-arm', and each fit's greedy plan on the
 * test users at 0.25x/0.5x/0.75x of the uniform logging spend (λ by bisection; costs are stated,
 * so spend is exact) is valued with the true response, as incremental revenue over no coupon,
 * beside the true response's own plan.
 */
import { fileURLToPath } from 'node:url';
import { buildTrajectories, selectUsers, type Trajectories } from '../src/data/trajectories.js';
import { fitDfcl } from '../src/policy/dfcl.js';
import { buildFeatures, featureLayout } from '../src/sim/features.js';
import { greedyPlanWithin, loggingSpend, mtliftLog, trueIncrement, trueScores } from './mtlift-world.js';

const SHARES = [0.25, 0.5, 0.75];

/** The true incremental revenue of the greedy plan of scores [n*K] at each budget share of the uniform logging spend. */
function trueIncrements(test: Trajectories, reward: Float64Array, cost: Float64Array): number[] {
  const users = Int32Array.from({ length: test.users }, (_, u) => u);
  return SHARES.map((share) => trueIncrement(test.states, users, greedyPlanWithin(reward, cost, share * loggingSpend(test.users))));
}

export interface MtliftRow {
  sample: number;
  oracle: number[];
  fits: Array<{ arms: string; start: string; heldOut: Array<[string, number]> | null; kept: string; trueIncrement: number[] }>;
}

export async function benchDfclMtlift(options: { samples?: number[]; users?: number } = {}): Promise<MtliftRow[]> {
  const users = options.users ?? 50000;
  const rows: MtliftRow[] = [];
  for (const sample of options.samples ?? [1, 2, 3, 4]) {
    const all = buildTrajectories(mtliftLog(users, sample));
    const nTest = Math.round(0.2 * users);
    const train = selectUsers(all, Array.from({ length: users - nTest }, (_, i) => i));
    const test = selectUsers(all, Array.from({ length: nTest }, (_, i) => users - nTest + i));
    const m = buildFeatures(test, featureLayout(train));
    const truth = trueScores(test.states, Int32Array.from({ length: nTest }, (_, u) => u));
    const row: MtliftRow = { sample, oracle: trueIncrements(test, truth.reward, truth.cost), fits: [] };
    for (const arms of ['select', 'pooled', 'per-arm'] as const) {
      const fit = await fitDfcl(train, { seed: sample, rounds: 200, arms });
      try {
        const s = await fit.scorer.score(m.x);
        row.fits.push({
          arms,
          start: fit.arms,
          heldOut: fit.selection?.candidates.map((c) => [c.arms, c.heldOut]) ?? null,
          kept: fit.objective.kept,
          trueIncrement: trueIncrements(test, s.reward, s.cost),
        });
      } finally {
        fit.release();
      }
    }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  return rows;
}

/** Markdown: the true incremental revenue per sample, budget and fit. */
export function mtliftTable(rows: MtliftRow[]): string {
  const f = (v: number[]) => v.map((x) => x.toFixed(1)).join(' / ');
  const out = [`| sample | true response | ${['select', 'pooled', 'per-arm'].map((a) => `DFCL ${a}`).join(' | ')} | select kept | held-out J pooled / per arm |`, '| --- | ---: | ---: | ---: | ---: | --- | --- |'];
  for (const r of rows) {
    const by = (a: string) => r.fits.find((x) => x.arms === a)!;
    const sel = by('select');
    out.push(`| ${r.sample} | ${f(r.oracle)} | ${f(sel.trueIncrement)} | ${f(by('pooled').trueIncrement)} | ${f(by('per-arm').trueIncrement)} | ${sel.start} | ${sel.heldOut ? sel.heldOut.map(([, j]) => j.toFixed(4)).join(' / ') : '–'} |`);
  }
  const mean = (a: string, k: number) => rows.reduce((s, r) => s + r.fits.find((x) => x.arms === a)!.trueIncrement[k], 0) / rows.length;
  out.push(`| mean | ${f(SHARES.map((_, k) => rows.reduce((s, r) => s + r.oracle[k], 0) / rows.length))} | ${['select', 'pooled', 'per-arm'].map((a) => f(SHARES.map((_, k) => mean(a, k)))).join(' | ')} | | |`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const samples = arg('samples');
  const t0 = performance.now();
  const rows = await benchDfclMtlift({
    samples: samples ? Array.from({ length: Number(samples) }, (_, i) => i + 1) : undefined,
    users: arg('users') ? Number(arg('users')) : undefined,
  });
  console.log(`\ntrue incremental revenue at ${SHARES.join(' / ')}x of the uniform logging spend, on each sample's test users\n\n${mtliftTable(rows)}\n\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
