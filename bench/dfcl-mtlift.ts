/**
 * DFCL's start on an MT-LIFT-like RCT, judged by the true response (not wired into
 * bench/index.ts; run it alone: `node --import tsx bench/dfcl-mtlift.ts [--samples=4]
 * [--users=50000]`).
 *
 * The log is generated here with a known response, so a plan's true value can be computed:
 * 99 features (every fifth an integer 0-9, the rest standard normal), 5 arms drawn uniformly,
 *   P(click | f, t) = σ(−2.5 + 0.3·f3 + u_t(f)),  u_0 = 0,  u_t = 0.1·t·(f1 > 0 ? 1 : −0.3) + 0.05·f2,
 * a conversion on 10% of clicks, reward click + 5·conversion (so E[r] = 1.5·P(click)) and a
 * stated cost of 0.05·t per coupon: treated arms earn up to ~+0.02 per user, and only for users
 * with f1 > 0. Per sample (a seed), 80% of the users train and 20% are test users; fitDfcl fits
 * with `arms` 'select' (the default), 'pooled' and 'per-arm', and each fit's greedy plan on the
 * test users at 0.25x/0.5x/0.75x of the uniform logging spend (λ by bisection; costs are stated,
 * so spend is exact) is valued with the true response, as incremental revenue over no coupon,
 * beside the true response's own plan.
 */
import { fileURLToPath } from 'node:url';
import type { InteractionLog } from '../src/data/log.js';
import { CounterStream } from '../src/data/rng.js';
import { buildTrajectories, selectUsers, type Trajectories } from '../src/data/trajectories.js';
import { fitDfcl } from '../src/policy/dfcl.js';
import { greedyActions } from '../src/policy/scored.js';
import { buildFeatures, featureLayout } from '../src/sim/features.js';

const FEATURES = 99;
const ARMS = 5;
const COST_PER_LEVEL = 0.05;
const SHARES = [0.25, 0.5, 0.75];

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** P(click) of arm t for the features f (f[j] = feature j). */
function clickProbability(f: (j: number) => number, t: number): number {
  const uplift = t === 0 ? 0 : 0.1 * t * (f(1) > 0 ? 1 : -0.3) + 0.05 * f(2);
  return sigmoid(-2.5 + 0.3 * f(3) + uplift);
}

/** A uniformly logged one-round log of `users` users. */
export function mtliftLog(users: number, seed: number): InteractionLog {
  const states = new Float64Array(users * FEATURES);
  const actions = new Int32Array(users);
  const reward = new Float64Array(users);
  for (let u = 0; u < users; u++) {
    const s = new CounterStream(seed, u, 0, 0x6d74);
    for (let j = 0; j < FEATURES; j++) states[u * FEATURES + j] = j % 5 === 0 ? Math.floor(10 * s.uniform()) : s.normal();
    const t = Math.min(ARMS - 1, Math.floor(ARMS * s.uniform()));
    const click = s.uniform() < clickProbability((j) => states[u * FEATURES + j], t) ? 1 : 0;
    const conversion = click && s.uniform() < 0.1 ? 1 : 0;
    actions[u] = t;
    reward[u] = click + 5 * conversion;
  }
  return {
    source: `mtlift-like seed ${seed}`,
    rows: users,
    userIndex: Int32Array.from({ length: users }, (_, i) => i),
    roundIndex: new Int32Array(users),
    userIds: Array.from({ length: users }, (_, i) => String(i)),
    stateNames: Array.from({ length: FEATURES }, (_, j) => `f${j}`),
    states,
    actionEncodings: [{ column: 'treatment', values: Array.from({ length: ARMS }, (_, t) => t), control: 0 }],
    actions,
    cost: Float64Array.from(actions, (t) => COST_PER_LEVEL * t),
    reward,
    categorical: [],
    propensity: new Float64Array(users).fill(1 / ARMS),
  };
}

/** The true incremental revenue of the greedy plan of scores [n*K] at each budget share (λ by bisection on the stated spend). */
function trueIncrements(test: Trajectories, reward: Float64Array, cost: Float64Array): number[] {
  const n = test.users;
  const f = (u: number) => (j: number) => test.states[u * FEATURES + j];
  const expected = (u: number, t: number) => 1.5 * clickProbability(f(u), t);
  let none = 0;
  for (let u = 0; u < n; u++) none += expected(u, 0);
  const logging = (n * COST_PER_LEVEL * (ARMS - 1)) / 2;  // uniform over the arms
  const spend = (a: Int32Array) => a.reduce((s, t) => s + COST_PER_LEVEL * t, 0);
  return SHARES.map((share) => {
    const budget = share * logging;
    let lo = 0;
    let hi = 1;
    while (spend(greedyActions(reward, cost, ARMS, hi)) > budget && hi < 1e9) [lo, hi] = [hi, 2 * hi];
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (spend(greedyActions(reward, cost, ARMS, mid)) > budget) lo = mid;
      else hi = mid;
    }
    const plan = greedyActions(reward, cost, ARMS, hi);
    let total = 0;
    for (let u = 0; u < n; u++) total += expected(u, plan[u]);
    return total - none;
  });
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
    const trueReward = new Float64Array(nTest * ARMS);
    const trueCost = new Float64Array(nTest * ARMS);
    for (let u = 0; u < nTest; u++) {
      for (let t = 0; t < ARMS; t++) {
        trueReward[u * ARMS + t] = 1.5 * clickProbability((j) => test.states[u * FEATURES + j], t);
        trueCost[u * ARMS + t] = COST_PER_LEVEL * t;
      }
    }
    const row: MtliftRow = { sample, oracle: trueIncrements(test, trueReward, trueCost), fits: [] };
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
