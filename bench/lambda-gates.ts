/**
 * The gates of issue 12 (README "Does λ steer spend?"), measured, not asserted:
 * - SY: the default recipe trained on SY 10,000 x 10 with 3 training seeds, planned for 10,000
 *   fresh users at 0.1x … 0.9x: BARate and the share of the myopic Oracle's incremental revenue.
 * - C(λ) over 21 λ: SY default, bundle and static (rollouts in the ground truth; reference:
 *   the Oracle at λ = 0), Hillstrom and Starbucks (expected spend of the held-out users'
 *   plans, T = 1; reference: everyone gets the arm with the highest mean revenue).
 * - Hillstrom and Starbucks: at 25/50/75% of the treat-everyone spend, the inverse-propensity
 *   estimate of the held-out revenue of SACO's plan and of the best single arm thinned to the
 *   same spend, with standard errors.
 * `--quick` shrinks everything (a smoke run, not the gates).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readTrajectories } from '../src/data/ingest.js';
import { syLogToInteractionLog } from '../src/data/log.js';
import { loadSchemaFile } from '../src/data/schema.js';
import { resolveSyConfig, SY_BUNDLE_DIMS, type SyOptions } from '../src/data/synth.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../src/data/trajectories.js';
import { offPolicyEstimates } from '../src/eval/ope.js';
import type { CodtModel } from '../src/model/artifact.js';
import { actionWidth } from '../src/model/config.js';
import { greedyRow } from '../src/model/greedy.js';
import { generateSy, loadNativeModel, nativeForward, nativeRollout } from '../src/native/index.js';
import { loggedHistoryInputs } from '../src/policy/history-inputs.js';
import { spendCurveWarnings } from '../src/policy/spend-curve.js';
import { trainCodt } from '../src/policy/train.js';
import { fitOutcomeModel, predictOutcomes, type OutcomeModel } from '../src/sim/outcome.js';
import { solve } from '../src/solve/index.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const SHARED = path.resolve(here, '..', '..', 'shared', 'data');

export interface CurveRow {
  data: string;
  /** Spend at each λ as a share of the reference. */
  shares: number[];
  reference: string;
  maxRise: number;
  warnings: string[];
}

export interface SyRow {
  budget: string;
  /** Per training seed. */
  baRate: number[];
  share: number[];
}

export interface RctRow {
  data: string;
  budget: string;
  saco: { value: number; se: number };
  bestArm: { value: number; se: number };
}

function curveRow(data: string, lambdas: number[], spend: number[], referenceSpend: number, reference: string): CurveRow {
  const shares = spend.map((s) => s / referenceSpend);
  let maxRise = 0;
  for (let g = 1; g < shares.length; g++) maxRise = Math.max(maxRise, shares[g] - shares[g - 1]);
  return { data, shares, reference, maxRise, warnings: spendCurveWarnings({ lambdas, spend, referenceSpend }) };
}

async function trainOnSy(options: SyOptions, users: number, seed: number, epochs: number): Promise<{ model: CodtModel; config: ReturnType<typeof resolveSyConfig> }> {
  const config = resolveSyConfig({ ...options, users, seed });
  const traj = buildTrajectories(syLogToInteractionLog(await generateSy(config)));
  const { model } = await trainCodt(traj, { seed, epochs });
  return { model, config };
}

/** C(λ) of a SY model on fresh users, in the ground truth. */
async function syCurve(name: string, model: CodtModel, config: ReturnType<typeof resolveSyConfig>, ids: Uint32Array): Promise<CurveRow> {
  const h = loadNativeModel(model);
  try {
    const env = { ...config, users: 1 };
    const ref = await nativeRollout({ env, rounds: config.rounds, budget: Infinity, policy: 'oracle', lambda: 0, userIds: ids });
    const lambdas = Array.from({ length: 21 }, (_, g) => (g / 20) * model.meta.normalization.lambdaMax);
    const spend: number[] = [];
    for (const lambda of lambdas) spend.push((await nativeRollout({ env, rounds: config.rounds, budget: Infinity, policy: 'codt', lambda, model: h.id, userIds: ids })).cost);
    return curveRow(name, lambdas, spend, ref.cost, 'the Oracle at λ = 0');
  } finally {
    h.unload();
  }
}

export async function benchSyGates(options: { quick?: boolean } = {}): Promise<{ rows: SyRow[]; curves: CurveRow[] }> {
  const users = options.quick ? 2000 : 10000;
  const epochs = options.quick ? 3 : 30;
  const seeds = options.quick ? [1] : [1, 2, 3];
  const budgets = ['0.1x', '0.2x', '0.3x', '0.4x', '0.5x', '0.6x', '0.7x', '0.8x', '0.9x'] as const;
  const rows: SyRow[] = budgets.map((budget) => ({ budget, baRate: [], share: [] }));
  const curves: CurveRow[] = [];
  // fresh users: ids beyond the training log's, in the same world (the seed draws the weights)
  const fresh = Uint32Array.from({ length: users }, (_, i) => 1_000_000 + i);
  for (const seed of seeds) {
    const t0 = performance.now();
    const { model, config } = await trainOnSy({}, users, seed, epochs);
    console.log(`SY seed ${seed}: trained in ${((performance.now() - t0) / 1000).toFixed(0)} s, λmax ${model.meta.normalization.lambdaMax.toFixed(2)}`);
    const env = { seed, rounds: config.rounds };
    const h = loadNativeModel(model);
    try {
      const none = await nativeRollout({ env: { ...config, users: 1 }, rounds: config.rounds, budget: 1e-9, policy: 'random', lambda: 0, userIds: fresh });
      for (const row of rows) {
        const saco = await solve({ users: { ids: fresh }, budget: row.budget as `${number}x`, env, model: h });
        const oracle = await solve({ users: { ids: fresh }, budget: row.budget as `${number}x`, env, policy: 'oracle', lambdaMax: 4 * model.meta.normalization.lambdaMax });
        row.baRate.push(saco.baRate);
        row.share.push((saco.revenue - none.revenue) / (oracle.revenue - none.revenue));
        console.log(`  ${row.budget}: SACO BARate ${saco.baRate.toFixed(3)}${saco.needsMoreThanLambdaMax ? ' (needs more than λmax)' : ''}, ${(100 * row.share[row.share.length - 1]).toFixed(1)}% of the Oracle's incremental revenue`);
      }
    } finally {
      h.unload();
    }
    if (seed === seeds[0]) curves.push(await syCurve('SY default', model, config, fresh));
  }
  for (const [name, opts] of [['SY bundle', { actionDims: SY_BUNDLE_DIMS }], ['SY static', { sequential: false }]] as const) {
    const { model, config } = await trainOnSy(opts, users, 1, epochs);
    curves.push(await syCurve(name, model, config, fresh));
  }
  return { rows, curves };
}

/** λ whose expected spend (open-loop, T = 1: exact) meets `budget`, by bisection on the model's range. */
async function planAtBudget(model: CodtModel, users: Trajectories, cost: Float32Array, K: number, budget: number): Promise<Int32Array> {
  const h = loadNativeModel(model);
  const ids = Int32Array.from({ length: users.users }, (_, i) => i);
  const width = actionWidth(model.meta.config);
  const planAt = async (lambda: number) => {
    const logits = await nativeForward(h, loggedHistoryInputs(model.meta, users, ids, lambda), 'full');
    const plan = new Int32Array(users.users);
    const one = new Int32Array(1);
    let spend = 0;
    for (let c = 0; c < users.users; c++) {
      greedyRow(logits, c * width, model.meta.config.actionSizes, one);
      plan[c] = one[0];
      spend += cost[c * K + one[0]];
    }
    return { plan, spend };
  };
  try {
    let lo = 0;
    let hi = model.meta.normalization.lambdaMax;
    let best = await planAt(hi);
    for (let k = 0; k < 25; k++) {
      const mid = 0.5 * (lo + hi);
      const p = await planAt(mid);
      if (p.spend > budget) lo = mid;
      else {
        hi = mid;
        best = p;
      }
    }
    return best.plan;
  } finally {
    h.unload();
  }
}

/** The randomised logs of the RCT gates (files in ../shared/data, schemas in schemas/). */
export const RCT_SETS = [
  { data: 'Hillstrom', file: 'hillstrom_email_rct_3arm.csv', schema: 'hillstrom.json' },
  { data: 'Starbucks promotion', file: 'starbucks_promotion_rct_train.csv', schema: 'starbucks.json' },
] as const;

export type RctSet = (typeof RCT_SETS)[number];

/** The shared data folder, or null (with the reason printed) where it is absent. */
export function sharedDataOrSkip(what: string): string | null {
  if (existsSync(SHARED)) return SHARED;
  console.log(`${what} skipped: ${SHARED} is absent`);
  return null;
}

/** An RCT's users split into the training 80% and the held-out 20% (seed 1). */
export async function readRctSplit(set: RctSet): Promise<{ train: Trajectories; test: Trajectories }> {
  const { trajectories } = await readTrajectories(path.join(SHARED, set.file), { schema: loadSchemaFile(path.resolve(here, '..', 'schemas', set.schema)) });
  return splitByUser(trajectories, { testFraction: 0.2, seed: 1 });
}

/** The outcome model (reward and cost heads, one round) fitted on the training users. */
export function fitRctOutcomeModel(train: Trajectories): Promise<OutcomeModel> {
  return fitOutcomeModel(train, { seed: 1, heads: { reward: true, cost: true, next: false } });
}

/**
 * The treat-everyone spend of the held-out users: everyone gets the best single arm (the highest
 * mean logged revenue in the training data, the control excluded), at the outcome model's
 * expected cost; with that cost of every arm per held-out user ([users × K]).
 */
export async function treatEveryoneSpend(outcome: OutcomeModel, train: Trajectories, test: Trajectories): Promise<{ K: number; cost: Float32Array; reward: Float32Array; best: number; control: number; everyone: number }> {
  const pred = await predictOutcomes(outcome, test, 'all');
  const K = pred.K;
  const cost = pred.cost as Float32Array;
  const reward = pred.reward as Float32Array;
  const meanR = new Float64Array(K);
  const count = new Float64Array(K);
  for (let c = 0; c < train.users; c++) {
    meanR[train.actions[c]] += train.rewards[c];
    count[train.actions[c]]++;
  }
  for (let k = 0; k < K; k++) meanR[k] /= Math.max(count[k], 1);
  const control = train.actionEncodings[0].control ?? 0;
  const best = meanR.indexOf(Math.max(...Array.from(meanR).map((v, k) => (k === control ? -Infinity : v))));
  let everyone = 0;
  for (let c = 0; c < test.users; c++) everyone += cost[c * K + best];
  return { K, cost, reward, best, control, everyone };
}

/**
 * The held-out users (one round, one action dimension) for whom the outcome model's expected
 * revenue `reward` [users × K] says `arm` earns less than the control (a plan at λ = 0 leaves
 * them out), and their inverse-propensity uplift of `arm` over the control (logging
 * propensities: the arm shares of the held-out log) with its standard error: is the predicted
 * harm seen in their logged outcomes?
 */
export function predictedHarm(reward: Float32Array, K: number, test: Trajectories, arm: number, control: number): { users: number; uplift: number; se: number } {
  if (test.rounds !== 1 || test.actionDims !== 1) throw new Error('predictedHarm reads a single-round log of one action dimension (an RCT)');
  const share = new Float64Array(K);
  for (let c = 0; c < test.users; c++) share[test.actions[c]] += 1 / test.users;
  const terms: number[] = [];
  for (let c = 0; c < test.users; c++) {
    if (reward[c * K + arm] >= reward[c * K + control]) continue;
    const a = test.actions[c];
    terms.push(a === arm ? test.rewards[c] / share[arm] : a === control ? -test.rewards[c] / share[control] : 0);
  }
  const n = terms.length;
  const mean = terms.reduce((s, x) => s + x, 0) / Math.max(n, 1);
  const sd = n > 1 ? Math.sqrt(terms.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : NaN;
  return { users: n, uplift: mean, se: sd / Math.sqrt(n) };
}

export async function benchRctGates(options: { quick?: boolean } = {}): Promise<{ rows: RctRow[]; curves: CurveRow[] } | null> {
  if (!sharedDataOrSkip('RCT gates')) return null;
  const rows: RctRow[] = [];
  const curves: CurveRow[] = [];
  for (const set of RCT_SETS) {
    const { train, test } = await readRctSplit(set);
    const t0 = performance.now();
    const { model } = await trainCodt(train, { seed: 1, epochs: options.quick ? 2 : 30 });
    console.log(`${set.data}: trained on ${train.users} users in ${((performance.now() - t0) / 1000).toFixed(0)} s, λmax ${model.meta.normalization.lambdaMax.toFixed(2)}`);
    const outcome = await fitRctOutcomeModel(train);
    const { K, cost, reward, best, control, everyone } = await treatEveryoneSpend(outcome, train, test);
    const harmed = predictedHarm(reward, K, test, best, control);
    console.log(`${set.data}: the outcome model predicts the best arm loses revenue for ${harmed.users} of ${test.users} held-out users; their inverse-propensity uplift ${harmed.uplift.toFixed(4)} ± ${harmed.se.toFixed(4)} per user`);
    outcome.dispose();
    // C(λ) on the held-out users
    const h = loadNativeModel(model);
    const lambdas = Array.from({ length: 21 }, (_, g) => (g / 20) * model.meta.normalization.lambdaMax);
    const spend: number[] = [];
    const ids = Int32Array.from({ length: test.users }, (_, i) => i);
    const width = actionWidth(model.meta.config);
    const one = new Int32Array(1);
    for (const lambda of lambdas) {
      const logits = await nativeForward(h, loggedHistoryInputs(model.meta, test, ids, lambda), 'full');
      let s = 0;
      for (let c = 0; c < test.users; c++) {
        greedyRow(logits, c * width, model.meta.config.actionSizes, one);
        s += cost[c * K + one[0]];
      }
      spend.push(s);
    }
    h.unload();
    curves.push(curveRow(set.data, lambdas, spend, everyone, `everyone gets "${train.actionEncodings[0].values[best]}"`));
    // IPS of the plans at 25/50/75% of the treat-everyone spend; the logger's propensities are the arm shares of the log
    const mu = new Float64Array(K);
    for (let c = 0; c < test.users; c++) mu[test.actions[c]]++;
    for (let k = 0; k < K; k++) mu[k] /= test.users;
    const logging = Float64Array.from({ length: test.users }, (_, c) => mu[test.actions[c]]);
    const log = (target: ArrayLike<number>) => ({ user: ids, round: new Int32Array(test.users), logging, target, reward: test.rewards, cost: test.costs });
    for (const share of [0.25, 0.5, 0.75]) {
      const plan = await planAtBudget(model, test, cost, K, share * everyone);
      const saco = offPolicyEstimates(log(Float64Array.from({ length: test.users }, (_, c) => (plan[c] === test.actions[c] ? 1 : 0))));
      // the best arm thinned at random to the same spend: P(arm) = share, else the control
      const thinned = offPolicyEstimates(log(Float64Array.from({ length: test.users }, (_, c) => (test.actions[c] === best ? share : test.actions[c] === control ? 1 - share : 0))));
      rows.push({ data: set.data, budget: `${share * 100}%`, saco: { value: saco.reward.ips.value, se: saco.reward.ips.se }, bestArm: { value: thinned.reward.ips.value, se: thinned.reward.ips.se } });
    }
  }
  return { rows, curves };
}
