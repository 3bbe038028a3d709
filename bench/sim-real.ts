/**
 * Issue 13's gate on real logs (`--only=sim-real`): on the Hillstrom and Starbucks promotion
 * RCTs, SACO (the library's default recipe) and the learned simulator are fitted on the same
 * training 80% of users; on the held-out 20% (bench/lambda-gates.ts' split), `solve()` in the
 * simulator at 25/50/75% of the treat-everyone spend gives λ*, the simulator's revenue and
 * cost and BARate (gate: in [0.98, 1.0]). The same plan is then valued on the held-out LOGGED
 * outcomes by inverse propensity (IPS) and doubly robust (DR; outcome model fitted on the
 * training users) estimates, scaled to the held-out total like the simulator's number; gate:
 * the simulator's revenue inside DR's 95% interval (IPS's is printed too).
 *
 * Beside the simulator's realised revenue (one draw of its hurdles and noise tables) stands
 * its expectation of the same plan (its outcome heads' E[r | s, a] at the issued actions):
 * where the realised value misses an interval, the two tell draw noise from bias in the heads.
 * `--quick` shrinks training (a smoke run, not the gate).
 */
import type { Trajectories } from '../src/data/trajectories.js';
import { doublyRobustEstimates, outcomeTable, predictionsFor, type DrResult } from '../src/eval/dr.js';
import { deterministicTargetProbabilities, type OpeEstimate } from '../src/eval/ope.js';
import { loadNativeModel } from '../src/native/index.js';
import { trainCodt } from '../src/policy/train.js';
import { loggedJointActions } from '../src/sim/features.js';
import { predictOutcomes, type OutcomeModel } from '../src/sim/outcome.js';
import { fitSimulator, simUsers, traceSimulator, type Simulator } from '../src/sim/simulator.js';
import { solve, type SolveResult } from '../src/solve/index.js';
import { fitRctOutcomeModel, RCT_SETS, readRctSplit, sharedDataOrSkip, treatEveryoneSpend } from './lambda-gates.js';

/** An estimate with its standard error and 95% normal interval. */
export interface Interval {
  value: number;
  se: number;
  lo: number;
  hi: number;
}

export interface SimRealRow {
  data: string;
  /** Share of the treat-everyone spend, e.g. "50%". */
  share: string;
  /** The budget in currency. */
  budget: number;
  heldOutUsers: number;
  lambda: number;
  needsMoreThanLambdaMax: boolean;
  /** The simulator's rollout of the plan (totals over the held-out users). */
  sim: { revenue: number; cost: number; baRate: number; coupons: number; blocked: number; expectedRevenue: number; expectedCost: number };
  /** The plan valued on the held-out logged outcomes (totals over the held-out users). */
  ips: { revenue: Interval; cost: Interval; ess: number };
  dr: { revenue: Interval; cost: Interval };
  /** Gates. */
  baRateMet: boolean;
  simInDr: boolean;
  simInIps: boolean;
  /** The simulator's expected revenue of the plan inside DR's interval (diagnostic). */
  expectedInDr: boolean;
}

export interface SimRealData {
  data: string;
  trainUsers: number;
  heldOutUsers: number;
  /** Logged arm shares on the held-out users, and the propensity used (1/K). */
  armShares: number[];
  propensity: number;
  treatEveryone: { arm: string; spend: number };
  /** Logged vs simulated (uniform random arms, round 0) mean revenue per arm on the held-out users. */
  perArm: Array<{ arm: string; logged: Interval; sim: Interval }>;
  seconds: { train: number; fitSim: number };
  rows: SimRealRow[];
}

const Z95 = 1.959963984540054;

function interval(e: OpeEstimate): Interval {
  return { value: e.value, se: e.se, lo: e.value - Z95 * e.se, hi: e.value + Z95 * e.se };
}

const inside = (x: number, i: Interval) => x >= i.lo && x <= i.hi;

/** Mean and its standard error of `values` grouped by `arm`. */
function meansByArm(values: ArrayLike<number>, arms: ArrayLike<number>, K: number): Interval[] {
  const n = new Float64Array(K);
  const s = new Float64Array(K);
  const ss = new Float64Array(K);
  for (let i = 0; i < values.length; i++) {
    n[arms[i]]++;
    s[arms[i]] += values[i];
    ss[arms[i]] += values[i] * values[i];
  }
  return Array.from({ length: K }, (_, k) => {
    const mean = s[k] / n[k];
    const se = Math.sqrt(Math.max(ss[k] / n[k] - mean * mean, 0) / Math.max(n[k] - 1, 1));
    return { value: mean, se, lo: mean - Z95 * se, hi: mean + Z95 * se };
  });
}

/**
 * The simulator's mean reward per arm on `users` at round 0, under uniformly random arms (its
 * trace: one draw of the hurdles and noise per user), beside the logged means per arm.
 */
export async function simVsLoggedByArm(sim: Simulator, users: Trajectories, seed = 1): Promise<Array<{ arm: string; logged: Interval; sim: Interval }>> {
  const trace = await traceSimulator(sim, simUsers(sim, users), 1, seed);
  const K = users.actionEncodings[0].values.length;
  const logged = meansByArm(users.rewards, users.actions, K);
  const simulated = meansByArm(trace.rewards, trace.actions, K);
  return logged.map((l, k) => ({ arm: String(users.actionEncodings[0].values[k]), logged: l, sim: simulated[k] }));
}

/**
 * IPS and DR of the plan `targetJoint` (one joint action per cell of `test`, [users × rounds])
 * on the logged outcomes of `test`, logged uniformly with propensity `propensity`, totals over
 * the held-out users.
 */
export function planEstimates(test: Trajectories, table: Awaited<ReturnType<typeof outcomeTable>>, targetJoint: Int32Array, propensity: number): DrResult {
  const T = test.rounds;
  const target = Int32Array.from(table.cells, (c) => targetJoint[c]);
  const user = Int32Array.from(table.cells, (c) => Math.floor(c / T));
  const round = Int32Array.from(table.cells, (c) => c % T);
  const reward = Float64Array.from(table.cells, (c) => test.rewards[c]);
  const cost = Float64Array.from(table.cells, (c) => test.costs[c]);
  const p = predictionsFor(table, { actions: target });
  return doublyRobustEstimates(
    { user, round, logging: propensity, target: deterministicTargetProbabilities(table.logged, target), reward, cost, rewardModel: p.reward, costModel: p.cost },
    { scaleTo: test.users },
  );
}

/** The simulator's expected reward and cost of the plan: each cell's arm scored by the outcome model that answers it. */
async function simExpectation(sim: Simulator, test: Trajectories, targetJoint: Int32Array): Promise<{ revenue: number; cost: number }> {
  const byModel = new Map<OutcomeModel, { reward: Float32Array; cost: Float32Array; K: number }>();
  let revenue = 0;
  let cost = 0;
  for (let c = 0; c < test.users * test.rounds; c++) {
    if (!test.mask[c]) continue;
    const k = targetJoint[c];
    const m = sim.outcomes[sim.header.armModel[k]];
    let p = byModel.get(m);
    if (!p) {
      const all = await predictOutcomes(m, test, 'all');
      p = { reward: all.reward as Float32Array, cost: all.cost as Float32Array, K: all.K };
      byModel.set(m, p);
    }
    revenue += p.reward[c * p.K + k];
    cost += p.cost[c * p.K + k];
  }
  return { revenue, cost };
}

async function oneRct(set: (typeof RCT_SETS)[number], quick: boolean): Promise<SimRealData> {
  const { train, test } = await readRctSplit(set);
  if (train.actionDims !== 1) throw new Error(`${set.data}: one action dimension expected`);
  let t0 = performance.now();
  const { model } = await trainCodt(train, { seed: 1, epochs: quick ? 2 : 30 });
  const trainSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const sim = await fitSimulator(train, { seed: 1 });
  const fitSimSeconds = (performance.now() - t0) / 1000;
  console.log(`${set.data}: SACO trained on ${train.users} users in ${trainSeconds.toFixed(0)} s (λmax ${model.meta.normalization.lambdaMax.toFixed(2)}); simulator fitted in ${fitSimSeconds.toFixed(0)} s (${sim.header.fit.arms})`);
  const outcome = await fitRctOutcomeModel(train);
  const h = loadNativeModel(model);
  try {
    const { K, best, everyone } = await treatEveryoneSpend(outcome, train, test);
    const table = await outcomeTable(outcome, test);
    // the logger: uniform over arms (the RCTs' design); the held-out arm shares are printed to check it
    const counts = new Float64Array(K);
    for (let c = 0; c < test.users * test.rounds; c++) if (test.mask[c]) counts[test.actions[c]]++;
    const armShares = Array.from(counts, (n) => n / table.cells.length);
    const propensity = 1 / K;
    const perArm = await simVsLoggedByArm(sim, test);
    const rows: SimRealRow[] = [];
    for (const share of [0.25, 0.5, 0.75]) {
      const budget = share * everyone;
      const r: SolveResult = await solve({ model: h, users: test, budget, env: { kind: 'sim', simulator: sim, seed: 1 } });
      if (r.rounds !== test.rounds || r.users !== test.users) throw new Error(`${set.data}: the plan has ${r.users} users x ${r.rounds} rounds, the log ${test.users} x ${test.rounds}`);
      const targetJoint = loggedJointActions({ ...test, actions: r.plan });
      const est = planEstimates(test, table, targetJoint, propensity);
      const expected = await simExpectation(sim, test, targetJoint);
      const dr = { revenue: interval(est.reward.dr), cost: interval(est.cost.dr) };
      const ips = { revenue: interval(est.ope.reward.ips), cost: interval(est.ope.cost.ips), ess: est.ope.reward.ips.ess };
      rows.push({
        data: set.data, share: `${share * 100}%`, budget, heldOutUsers: test.users, lambda: r.lambda, needsMoreThanLambdaMax: r.needsMoreThanLambdaMax,
        sim: { revenue: r.revenue, cost: r.cost, baRate: r.baRate, coupons: r.coupons, blocked: r.blocked, expectedRevenue: expected.revenue, expectedCost: expected.cost },
        ips, dr,
        baRateMet: r.baRate >= 0.98 && r.baRate <= 1.0,
        simInDr: inside(r.revenue, dr.revenue),
        simInIps: inside(r.revenue, ips.revenue),
        expectedInDr: inside(expected.revenue, dr.revenue),
      });
    }
    return {
      data: set.data, trainUsers: train.users, heldOutUsers: test.users, armShares, propensity,
      treatEveryone: { arm: String(train.actionEncodings[0].values[best]), spend: everyone },
      perArm, seconds: { train: trainSeconds, fitSim: fitSimSeconds }, rows,
    };
  } finally {
    h.unload();
    outcome.dispose();
    sim.dispose();
  }
}

const f = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ci = (i: Interval, digits = 0) => `${f(i.value, digits)} ± ${f(i.se, digits)} [${f(i.lo, digits)}, ${f(i.hi, digits)}]`;

/** The tables of one data set, markdown. */
export function simRealTables(d: SimRealData): string {
  const lines = [
    `### ${d.data}: ${d.trainUsers.toLocaleString('en-US')} training users, ${d.heldOutUsers.toLocaleString('en-US')} held out; treat everyone with "${d.treatEveryone.arm}": ${f(d.treatEveryone.spend, 2)}`,
    '',
    `held-out logged arm shares ${d.armShares.map((s) => s.toFixed(4)).join(' / ')} (propensity used: 1/${Math.round(1 / d.propensity)})`,
    '',
    '| arm | logged mean revenue ± SE | simulator (round 0, random arms) ± SE | difference in SE |',
    '| --- | ---: | ---: | ---: |',
    ...d.perArm.map((a) => `| ${a.arm} | ${a.logged.value.toFixed(4)} ± ${a.logged.se.toFixed(4)} | ${a.sim.value.toFixed(4)} ± ${a.sim.se.toFixed(4)} | ${((a.sim.value - a.logged.value) / Math.hypot(a.logged.se, a.sim.se)).toFixed(1)} |`),
    '',
    '| budget (of treat-everyone) | budget | λ* | sim revenue | sim cost | BARate | sim E[revenue] | IPS revenue ± SE [95%] | DR revenue ± SE [95%] | IPS cost ± SE | DR cost ± SE | BARate in [0.98, 1] | sim in DR 95% | sim in IPS 95% |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    ...d.rows.map((r) => {
      const miss = (ok: boolean, i: Interval) => (ok ? 'yes' : `**no** (${((r.sim.revenue - i.value) / i.se).toFixed(1)} SE)`);
      return `| ${r.share} | ${f(r.budget, 2)} | ${r.lambda.toFixed(4)}${r.needsMoreThanLambdaMax ? ' (needs more than λmax)' : ''} | ${f(r.sim.revenue)} | ${f(r.sim.cost, 2)} | ${r.sim.baRate.toFixed(4)} | ${f(r.sim.expectedRevenue)} | ${ci(r.ips.revenue)} | ${ci(r.dr.revenue)} | ${f(r.ips.cost.value, 2)} ± ${f(r.ips.cost.se, 2)} | ${f(r.dr.cost.value, 2)} ± ${f(r.dr.cost.se, 2)} | ${r.baRateMet ? 'yes' : '**no**'} | ${miss(r.simInDr, r.dr.revenue)} | ${miss(r.simInIps, r.ips.revenue)} |`;
    }),
  ];
  return lines.join('\n');
}

/** Issue 13's gate on the Hillstrom and Starbucks RCTs; null where ../shared/data is absent. */
export async function benchSimReal(options: { quick?: boolean } = {}): Promise<SimRealData[] | null> {
  if (!sharedDataOrSkip('sim-real')) return null;
  const out: SimRealData[] = [];
  for (const set of RCT_SETS) {
    const d = await oneRct(set, options.quick ?? false);
    console.log(`\n${simRealTables(d)}\n`);
    out.push(d);
  }
  return out;
}
