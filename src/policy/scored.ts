/**
 * Greedy "scored" policies: at each round every user gets argmax over joint actions of
 * score_r(s, h, a) − λ·score_c(s, h, a), where the scores come from XGBoost heads of an
 * OutcomeModel (src/sim/outcome.ts) evaluated on the design row of the user's observed path so
 * far (state, action one-hot, round, history features: the same columns `buildFeatures` makes
 * for a logged trajectory). CMDP (src/policy/cmdp.ts: score_r = Q, score_c = 0, λ fixed) and
 * DFCL (src/policy/dfcl.ts: score_r = r̂, score_c = ĉ, λ searched) act through it.
 *
 * The policy is native (native/policy_scored.cc, registered twice: 'scored', λ searched, and
 * 'scored-fixed', the λ given): solve() runs it in any environment (SY, the learned simulator)
 * with the rollout's budget rule and λ search. `scoredRollout` below is its TypeScript
 * reference on SY (the same equations and counter-based draws as native/env_sy.cc, as
 * src/eval/fixed-arm.ts, under the budget rule of native/rollout.cc: a round's offers checked in
 * id order against spend so far, a coupon withheld when, if redeemed, it would take realised
 * spend over the budget); test/policy/scored-native.test.ts holds the two plans equal.
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import { syCouponValue, syInitialUser, syObserve, syPurchaseDraw, syStep, syWeights, type SyConfig } from '../data/synth.js';
import { buildFeatures, jointActions, setActionColumns, type FeatureLayout } from '../sim/features.js';
import { OutcomeModel } from '../sim/outcome.js';
import { checkArms, pooled, type ArmOutcomes } from '../sim/arm-outcomes.js';
import type { NativeScoredSpec } from '../native/index.js';
import type { PolicyDefinition } from './types.js';

export const scoredPolicy = {
  name: 'scored',
  description: "greedy in an outcome model's scores r̂ − λ·ĉ over joint actions (DFCL), λ searched",
  needsModel: false,
  searched: true,
  fittedOn: 'an outcome model fitted on a log (fitDfcl, fitOutcomeModel)',
} as const satisfies PolicyDefinition;

export const scoredFixedPolicy = {
  name: 'scored-fixed',
  description: "greedy in an outcome model's scores r̂ − λ·ĉ at the λ given (CMDP's Q: no cost heads, no λ search)",
  needsModel: false,
  searched: false,
  fittedOn: 'an outcome model fitted on a log (fitCmdp)',
} as const satisfies PolicyDefinition;

/** What the scored policies act from: an outcome model, and how its action indices map to the environment's. */
export interface ScoredArtifact {
  /** One pooled model (the action one-hot a feature), or models by joint action (src/sim/arm-outcomes.ts). */
  model: OutcomeModel | ArmOutcomes;
  /** envAction[j][k]: the environment's index of the model's value k of dimension j (syActionMap); absent: the same indices (the simulator fitted on the same log). */
  envAction?: number[][];
}

/** The native rollout spec's `scored` field. */
export function nativeScoredSpec(a: ScoredArtifact): NativeScoredSpec {
  const { stateDim, actionSizes, control, rounds } = armsOf(a.model).outcomes[0].layout;
  const model = a.model instanceof OutcomeModel ? { outcome: a.model.id } : { outcome: a.model.outcomes.map((o) => o.id), armModel: a.model.armModel };
  return { ...model, layout: { stateDim, actionSizes, control, rounds }, ...(a.envAction ? { envAction: a.envAction } : {}) };
}

/** The models by joint action (a pooled model scores them all), checked (checkArms). */
export function armsOf(model: OutcomeModel | ArmOutcomes): ArmOutcomes {
  if (model instanceof OutcomeModel) return pooled(model);
  checkArms(model);
  return model;
}

/**
 * The SY index of each logged action value, per dimension: a log's encodings list the values
 * it saw, SY's action dimensions list them in its own order.
 * @throws {ArgumentError} when a logged value is not one of the environment's.
 */
export function syActionMap(encodings: Trajectories['actionEncodings'], env: SyConfig, argument = 'template'): number[][] {
  if (encodings.length !== env.actionDims.length) throw new ArgumentError(argument, `has ${encodings.length} action dimensions, the environment ${env.actionDims.length}`);
  return encodings.map((e, j) =>
    e.values.map((v) => {
      const k = env.actionDims[j].values.findIndex((w) => Number(w) === Number(v));
      if (k < 0) throw new ArgumentError(argument, `action value ${String(v)} of ${e.column} is not in the environment`);
      return k;
    }),
  );
}

/** Scores of every joint action for design rows x [n, layout width]: [n*K], action fastest. */
export interface ActionScorer {
  layout: FeatureLayout;
  /** [K*A] joint actions in the layout's index space. */
  actions: Int32Array;
  K: number;
  score(x: Float32Array, threads?: number): Promise<{ reward: Float64Array; cost: Float64Array }>;
}

/**
 * Expected reward (and cost) of every joint action from an outcome model's heads (p·e per
 * outcome; cost 0 without cost heads); per-arm models score each its own action.
 */
export function outcomeScorer(model: OutcomeModel | ArmOutcomes, options: { cost?: boolean } = {}): ActionScorer {
  const arms = armsOf(model);
  const layout = arms.outcomes[0].layout;
  const actions = jointActions(layout.actionSizes);
  const A = layout.actionSizes.length;
  const K = actions.length / A;
  const useCost = options.cost ?? true;
  return {
    layout,
    actions,
    K,
    async score(x, threads) {
      const p = layout.names.length;
      const n = x.length / p;
      const reward = new Float64Array(n * K);
      const cost = new Float64Array(n * K);
      const z = new Float32Array(x);
      for (let a = 0; a < K; a++) {
        setActionColumns(z, layout, actions.subarray(a * A, (a + 1) * A));
        const h = await arms.outcomes[arms.armModel[a]].predictRows(z, { threads });
        for (let r = 0; r < n; r++) {
          reward[r * K + a] = (h.pReward?.[r] ?? 0) * (h.eReward?.[r] ?? 0);
          cost[r * K + a] = useCost ? (h.pCost?.[r] ?? 0) * (h.eCost?.[r] ?? 0) : 0;
        }
      }
      return { reward, cost };
    },
  };
}

/** argmax_a reward − λ·cost per row ([n*K] scores); ties to the lower index. */
export function greedyActions(reward: Float64Array, cost: Float64Array, K: number, lambda: number): Int32Array {
  const n = reward.length / K;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = -Infinity;
    for (let a = 0; a < K; a++) {
      const v = reward[r * K + a] - lambda * cost[r * K + a];
      if (v > best) [best, out[r]] = [v, a];
    }
  }
  return out;
}

export interface ScoredRolloutSpec {
  env: SyConfig;
  rounds: number;
  userIds: Uint32Array;
  /** A trajectories of the training log: its layout metadata (state names, encodings) is reused for the test users' paths. */
  template: Trajectories;
  scorer: ActionScorer;
  lambda: number;
  /** Infinity: none. */
  budget: number;
  threads?: number;
  /** Also return the issued actions (`plan`). */
  recordPlan?: boolean;
}

export interface ScoredRollout {
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  /** With recordPlan: the issued actions [users, rounds, action dims] in SY's indices (the native rollout's plan layout). */
  plan?: Int32Array;
}

/** Rolls SY forward for `userIds`, each round's actions greedy in the scorer's scores at λ, the budget enforced. */
export async function scoredRollout(spec: ScoredRolloutSpec): Promise<ScoredRollout> {
  const { env, rounds: T, userIds, template, scorer, lambda, budget } = spec;
  if (!(budget > 0)) throw new ArgumentError('budget', `must be > 0 (Infinity: none), got ${budget}`);
  if (!Number.isFinite(lambda)) throw new ArgumentError('lambda', 'must be finite');
  const d = template.stateDim;
  const A = template.actionDims;
  if (d !== env.features + 3 || A !== env.actionDims.length) throw new ArgumentError('template', `does not look like an SY log of this environment (state ${d}, expected ${env.features + 3})`);
  const toSy = syActionMap(template.actionEncodings, env);
  const N = userIds.length;
  const w = syWeights(env);
  const users = Array.from(userIds, (id) => syInitialUser(env, w, id));
  const traj: Trajectories = {
    ...template,
    source: 'scored rollout',
    users: N,
    rounds: T,
    userIds: Array.from(userIds, String),
    lengths: new Int32Array(N),
    mask: new Uint8Array(N * T),
    states: new Float32Array(N * T * d),
    actions: new Int32Array(N * T * A),
    rewards: new Float32Array(N * T),
    costs: new Float32Array(N * T),
    rtg: new Float32Array(N * T),
    ctg: new Float32Array(N * T),
    lambda: undefined,
    filled: undefined,
    propensity: undefined,
  };
  const layout = { ...scorer.layout };
  const p = layout.names.length;
  const out: ScoredRollout = { revenue: 0, cost: 0, coupons: 0, blocked: 0 };
  const plan = spec.recordPlan ? new Int32Array(N * T * A) : undefined;
  let spent = 0;
  const control = template.actionEncodings.map((_, j) => scorer.layout.control[j]);
  const controlSy = control.map((k, j) => toSy[j][k]);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < N; i++) {
      syObserve(env, users[i], t, traj.states, (i * T + t) * d);
      traj.mask[i * T + t] = 1;
      traj.lengths[i] = t + 1;
    }
    const m = buildFeatures(traj, layout);
    const x = new Float32Array(N * p);
    let n = 0;
    for (let r = 0; r < m.rows; r++) if (m.cells[r] % T === t) x.set(m.x.subarray(r * p, (r + 1) * p), p * n++);
    const s = await scorer.score(x, spec.threads);
    const chosen = greedyActions(s.reward, s.cost, scorer.K, lambda);
    let running = spent;
    const offers: number[][] = new Array(N);
    for (let i = 0; i < N; i++) {
      const a = scorer.actions.subarray(chosen[i] * A, (chosen[i] + 1) * A);
      const sy = Array.from(a, (k, j) => toSy[j][k]);
      const value = syCouponValue(env, sy, users[i].consts.basket);
      let take = sy;
      if (value > 0) {
        if (Number.isFinite(budget) && running + value > budget) {
          take = controlSy;
          out.blocked++;
        } else {
          out.coupons++;
          if (Number.isFinite(budget) && syPurchaseDraw(env, users[i], t, value).purchase) running += value;
        }
      }
      offers[i] = take;
      plan?.set(take, (i * T + t) * A);
      for (let j = 0; j < A; j++) traj.actions[(i * T + t) * A + j] = take === controlSy ? control[j] : a[j];
    }
    let roundCost = 0;
    for (let i = 0; i < N; i++) {
      const step = syStep(env, users[i], t, offers[i]);
      traj.rewards[i * T + t] = step.reward;
      traj.costs[i * T + t] = step.cost;
      out.revenue += step.reward;
      roundCost += step.cost;
    }
    spent += roundCost;
    out.cost += roundCost;
  }
  return plan ? { ...out, plan } : out;
}

export interface LambdaSearchResult extends ScoredRollout {
  lambda: number;
  rollouts: number;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  trace: Array<{ lambda: number; revenue: number; cost: number }>;
}

/**
 * The λ search of a scored policy: the natural (unbudgeted) spend C(λ) is bracketed and
 * bisected to the smallest λ with C(λ) ≤ budget (tolerance `tol` of the budget, at most
 * `maxRollouts` natural rollouts), then one budgeted rollout at that λ is the result.
 */
export async function searchScoredLambda(spec: Omit<ScoredRolloutSpec, 'lambda'>, options: { lambdaMax?: number; maxRollouts?: number; tol?: number } = {}): Promise<LambdaSearchResult> {
  const lambdaMax = options.lambdaMax ?? 20;
  const maxRollouts = options.maxRollouts ?? 14;
  const tol = options.tol ?? 0.01;
  const trace: LambdaSearchResult['trace'] = [];
  const natural = async (lambda: number) => {
    const r = await scoredRollout({ ...spec, lambda, budget: Infinity });
    trace.push({ lambda, revenue: r.revenue, cost: r.cost });
    return r.cost;
  };
  let lambda: number;
  let budgetNotBinding = false;
  let needsMore = false;
  if ((await natural(0)) <= spec.budget) {
    lambda = 0;
    budgetNotBinding = true;
  } else if ((await natural(lambdaMax)) > spec.budget) {
    lambda = lambdaMax;
    needsMore = true;
  } else {
    let lo = 0;
    let hi = lambdaMax;
    lambda = hi;
    while (trace.length < maxRollouts) {
      const mid = trace.length < 5 ? Math.sqrt((lo + 1e-3) * hi) : (lo + hi) / 2;  // geometric first: λ* is often ≪ λmax
      const c = await natural(mid);
      if (c > spec.budget) lo = mid;
      else {
        hi = mid;
        lambda = mid;
        if (c >= spec.budget * (1 - tol)) break;
      }
    }
  }
  const r = await scoredRollout({ ...spec, lambda, budget: spec.budget });
  return { ...r, lambda, rollouts: trace.length + 1, budgetNotBinding, needsMoreThanLambdaMax: needsMore, trace };
}
