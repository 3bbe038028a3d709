/**
 * C(λ) after training: the spend a model plans on held-out users at each λ of a grid. The λ
 * search only works if spend falls as λ rises over the whole range of budgets a user asks
 * for, so `saco train` ends by measuring it and warns loudly when it is flat or does not
 * come down to (near) no spend.
 *
 * Measured open-loop on the users' logged rounds: at each round the model decides from the
 * logged history, and the decision's expected cost and revenue come from an outcome model
 * fitted on the training users (src/sim/outcome.ts). For one-round logs this is the planned
 * spend exactly; over several rounds it ignores how the plan changes later states (the
 * learned simulator measures that).
 */
import { sampleUsers, type Trajectories } from '../data/trajectories.js';
import type { CodtModel, SpendCurveRecord } from '../model/artifact.js';
import { actionWidth } from '../model/config.js';
import { greedyRow } from '../model/greedy.js';
import { loadNativeModel, nativeForward } from '../native/index.js';
import { fitOutcomeModel, predictOutcomes, type OutcomeByAction } from '../sim/outcome.js';
import { loggedHistoryInputs } from './history-inputs.js';

/** How far the curve may rise between grid points, and must fall, as shares of the reference spend. */
export const SPEND_CURVE_LIMITS = { maxRise: 0.02, lowShare: 0.1, highShare: 0.9 };

/**
 * The most held-out users the curve is measured on, and training users its outcome model is
 * fitted on (seeded subsamples beyond them): the curve is a share of spend, a mean over users
 * whose sampling error shrinks as 1/√users, and on a log of 250,000 users the whole of both took
 * minutes.
 */
export const SPEND_CURVE_USERS = { curve: 10_000, outcomeModel: 50_000 };

/** The curve on `users` with per-action expected outcomes already predicted for them; `onPoint` after each λ of the grid. */
export async function spendCurveFrom(model: CodtModel, users: Trajectories, outcomes: OutcomeByAction, points = 21, onPoint?: (done: number, points: number) => void): Promise<SpendCurveRecord> {
  const meta = model.meta;
  const T = users.rounds;
  const A = users.actionDims;
  const { K, actions } = outcomes;
  const width = actionWidth(meta.config);
  const reward = outcomes.reward as Float32Array;
  const cost = outcomes.cost as Float32Array;
  const jointIndex = (a: Int32Array): number => {
    for (let k = 0; k < K; k++) if (a.every((v, j) => actions[k * A + j] === v)) return k;
    return -1;
  };
  // the reference: everyone gets the arm with the highest expected revenue
  const totalR = new Float64Array(K);
  for (let c = 0; c < users.users * T; c++) {
    if (!users.mask[c]) continue;
    for (let k = 0; k < K; k++) totalR[k] += reward[c * K + k];
  }
  const bestArm = totalR.indexOf(Math.max(...totalR));
  let referenceSpend = 0;
  for (let c = 0; c < users.users * T; c++) if (users.mask[c]) referenceSpend += cost[c * K + bestArm];

  const handle = loadNativeModel(model);
  const ids = Int32Array.from({ length: users.users }, (_, i) => i);
  const curve: SpendCurveRecord = { lambdas: [], spend: [], revenue: [], referenceSpend, referenceArm: '', users: users.users, source: 'outcome model, open-loop over the logged rounds', warnings: [] };
  curve.referenceArm = Array.from(actions.subarray(bestArm * A, bestArm * A + A), (k, j) => String(meta.actionEncodings[j].values[k])).join(' + ');
  try {
    const chosen = new Int32Array(A);
    for (let g = 0; g < points; g++) {
      const lambda = (meta.normalization.lambdaMax * g) / (points - 1);
      const logits = await nativeForward(handle, loggedHistoryInputs(meta, users, ids, lambda), 'full');
      let spend = 0;
      let revenue = 0;
      for (let c = 0; c < users.users * T; c++) {
        if (!users.mask[c]) continue;
        greedyRow(logits, c * width, meta.config.actionSizes, chosen);
        const k = jointIndex(chosen);
        spend += cost[c * K + k];
        revenue += reward[c * K + k];
      }
      curve.lambdas.push(lambda);
      curve.spend.push(spend);
      curve.revenue.push(revenue);
      onPoint?.(g + 1, points);
    }
  } finally {
    handle.unload();
  }
  curve.warnings = spendCurveWarnings(curve);
  return curve;
}

/**
 * Fits an outcome model on `train`, then measures the curve on `users` (each at most
 * SPEND_CURVE_USERS or `limits`, seeded subsamples beyond).
 */
export async function spendCurve(
  model: CodtModel,
  train: Trajectories,
  users: Trajectories,
  options: { seed?: number; threads?: number; points?: number; onPoint?: (done: number, points: number) => void; limits?: Partial<typeof SPEND_CURVE_USERS> } = {},
): Promise<SpendCurveRecord> {
  const seed = options.seed ?? 1;
  const limits = { ...SPEND_CURVE_USERS, ...options.limits };
  const outcome = await fitOutcomeModel(sampleUsers(train, limits.outcomeModel, seed), { seed, threads: options.threads, heads: { reward: true, cost: true, next: false } });
  try {
    const measured = sampleUsers(users, limits.curve, seed);
    return await spendCurveFrom(model, measured, await predictOutcomes(outcome, measured, 'all', { threads: options.threads }), options.points, options.onPoint);
  } finally {
    outcome.dispose();
  }
}

/** What is wrong with a curve for the λ search: it rises, it is flat, it does not come down. */
export function spendCurveWarnings(c: Pick<SpendCurveRecord, 'spend' | 'referenceSpend' | 'lambdas'>): string[] {
  const ref = c.referenceSpend > 0 ? c.referenceSpend : Math.max(...c.spend, 1e-12);
  const share = (v: number) => `${((100 * v) / ref).toFixed(1)}%`;
  const out: string[] = [];
  for (let g = 1; g < c.spend.length; g++) {
    if (c.spend[g] - c.spend[g - 1] > SPEND_CURVE_LIMITS.maxRise * ref) out.push(`spend rises from λ = ${c.lambdas[g - 1].toFixed(3)} to ${c.lambdas[g].toFixed(3)} by ${share(c.spend[g] - c.spend[g - 1])} of the reference`);
  }
  const low = Math.min(...c.spend);
  const high = Math.max(...c.spend);
  if (high - low < SPEND_CURVE_LIMITS.lowShare * ref) out.push(`spend is flat over λ (from ${share(low)} to ${share(high)} of the reference): λ cannot steer it, so most budgets cannot be met`);
  if (c.spend[c.spend.length - 1] > SPEND_CURVE_LIMITS.lowShare * ref) out.push(`at λmax the plan still spends ${share(c.spend[c.spend.length - 1])} of the reference: budgets below that cannot be met`);
  if (c.spend[0] < SPEND_CURVE_LIMITS.highShare * ref) out.push(`at λ = 0 the plan spends only ${share(c.spend[0])} of the reference: budgets above that are not used`);
  return out;
}
