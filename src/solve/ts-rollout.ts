/**
 * Rollouts and the bisection λ search driven from TypeScript, for policies whose logits come
 * from elsewhere than the native engine (onnxruntime sessions and pools). The environment is
 * SY's TypeScript reference (bit-identical to native/env_sy.cc) and every rule mirrors
 * native/rollout.cc and native/dual.cc — users in id order, the budget checked against
 * realised spend, greedy actions, the same search — so both engines give the same plan.
 * ORT has no KV cache: round t re-runs the t+1 rounds of history.
 */
import { syCouponValue, syInitialUser, syObserve, syPurchaseDraw, syStep, syWeights, type SyConfig, type SyUserState } from '../data/synth.js';
import type { ModelMeta } from '../model/artifact.js';
import { actionWidth, emptyForwardInputs } from '../model/config.js';
import type { ForwardInputs } from '../model/types.js';
import { greedyRow } from '../model/greedy.js';
import { targetsAt } from '../model/stats.js';

export type LogitsFn = (inputs: ForwardInputs) => Promise<Float32Array>;

export interface TsRolloutResult {
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  plan: Int32Array;
}

interface RolloutUser extends SyUserState {
  rtgLeft: number;
  ctgLeft: number;
}

/**
 * The budget rule, as the native rollout applies it: users arrive in id order within a
 * round; a coupon is withheld (set to `none`) when, if redeemed, it would take realised spend
 * over `budget`. Spend grows by the coupons that this round's purchase draw redeems (the same
 * draw the step makes). `actions` is [users, dims], changed in place; budget Infinity: none.
 */
function withholdOverBudget(env: SyConfig, users: readonly SyUserState[], t: number, actions: Int32Array, none: readonly number[], spent: number, budget: number): { coupons: number; blocked: number } {
  const A = env.actionDims.length;
  const counts = { coupons: 0, blocked: 0 };
  let running = spent;
  for (let i = 0; i < users.length; i++) {
    const a = actions.subarray(i * A, i * A + A);
    const v = syCouponValue(env, a, users[i].consts.basket);
    if (v > 0 && Number.isFinite(budget) && running + v > budget) {
      a.set(none);
      counts.blocked++;
      continue;
    }
    if (v > 0) counts.coupons++;
    if (Number.isFinite(budget) && syPurchaseDraw(env, users[i], t, v).purchase) running += v;
  }
  return counts;
}

/** One rollout of the CODT policy whose logits `logits` computes, at λ, under `budget` (Infinity: none). */
export async function tsRollout(meta: ModelMeta, logits: LogitsFn, env: SyConfig, ids: Uint32Array, features: Float64Array | undefined, rounds: number, lambda: number, budget: number): Promise<TsRolloutResult> {
  const n = ids.length;
  const d = env.features;
  const sd = meta.config.stateDim;
  const A = env.actionDims.length;
  const K = actionWidth(meta.config);
  const w = syWeights(env);
  const target = targetsAt(meta.targets, lambda);
  const users: RolloutUser[] = Array.from(ids, (id, i) => ({
    ...syInitialUser(env, w, id, features?.subarray(i * d, (i + 1) * d)),
    rtgLeft: target.rtg,
    ctgLeft: target.ctg,
  }));
  const none = env.actionDims.map((dim) => dim.values.indexOf(Math.min(...dim.values)));
  const history = { states: new Float32Array(n * rounds * sd), rtg: new Float32Array(n * rounds), ctg: new Float32Array(n * rounds), onehot: new Float32Array(n * rounds * K) };
  const plan = new Int32Array(n * rounds * A);
  const result: TsRolloutResult = { revenue: 0, cost: 0, coupons: 0, blocked: 0, plan };
  let spent = 0;
  for (let t = 0; t < rounds; t++) {
    const T = t + 1;
    // observe (floats of the latent state, as native) and record this round's targets
    for (let i = 0; i < n; i++) {
      const u = users[i];
      syObserve(env, u, t, history.states, (i * rounds + t) * sd);
      history.rtg[i * rounds + t] = u.rtgLeft;
      history.ctg[i * rounds + t] = u.ctgLeft;
    }
    const inputs = emptyForwardInputs(meta.config, n, T, lambda);
    for (let i = 0; i < n; i++) {
      inputs.states.set(history.states.subarray(i * rounds * sd, (i * rounds + T) * sd), i * T * sd);
      inputs.rtg.set(history.rtg.subarray(i * rounds, i * rounds + T), i * T);
      inputs.ctg.set(history.ctg.subarray(i * rounds, i * rounds + T), i * T);
      inputs.actionsOneHot.set(history.onehot.subarray(i * rounds * K, (i * rounds + t) * K), i * T * K);
    }
    const out = await logits(inputs);
    const actions = new Int32Array(n * A);
    for (let i = 0; i < n; i++) greedyRow(out, (i * T + t) * K, meta.config.actionSizes, actions, i * A);
    const counts = withholdOverBudget(env, users, t, actions, none, spent, budget);
    result.coupons += counts.coupons;
    result.blocked += counts.blocked;
    let roundRevenue = 0;
    let roundCost = 0;
    for (let i = 0; i < n; i++) {
      const u = users[i];
      const a = actions.subarray(i * A, i * A + A);
      plan.set(a, (i * rounds + t) * A);
      let off = 0;
      meta.config.actionSizes.forEach((k, j) => {
        history.onehot[(i * rounds + t) * K + off + a[j]] = 1;
        off += k;
      });
      const step = syStep(env, u, t, a);
      u.rtgLeft -= step.reward;
      u.ctgLeft -= step.cost;
      roundRevenue += step.reward;
      roundCost += step.cost;
    }
    spent += roundCost;
    result.revenue += roundRevenue;
    result.cost += roundCost;
  }
  return result;
}

export interface TsSearchResult {
  lambda: number;
  plan: TsRolloutResult;
  rollouts: number;
  feasible: boolean;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  trace: Array<{ lambda: number; revenue: number; cost: number }>;
}

/** The bisection of native/dual.cc (Illinois regula falsi, the same final choice). */
export async function tsBisection(run: (lambda: number, budget: number) => Promise<TsRolloutResult>, budget: number, epsilon: number, lambdaMax: number, maxRollouts: number): Promise<TsSearchResult> {
  const out: TsSearchResult = { lambda: 0, plan: { revenue: 0, cost: 0, coupons: 0, blocked: 0, plan: new Int32Array(0) }, rollouts: 0, feasible: false, budgetNotBinding: false, needsMoreThanLambdaMax: false, trace: [] };
  const probe = async (lambda: number) => {
    const r = await run(lambda, Infinity);
    out.rollouts++;
    const p = { lambda, revenue: r.revenue, cost: r.cost };
    out.trace.push(p);
    return p;
  };
  const enforced = async (lambda: number) => {
    out.rollouts++;
    return run(lambda, budget);
  };
  const finish = async (lambda: number) => {
    out.plan = await enforced(lambda);
    out.lambda = lambda;
    return out;
  };
  const p0 = await probe(0);
  if (p0.cost <= budget) {
    out.budgetNotBinding = out.feasible = true;
    return finish(0);
  }
  const pmax = await probe(lambdaMax);
  if (pmax.cost > budget) {
    out.needsMoreThanLambdaMax = true;
    return finish(lambdaMax);
  }
  let lo = p0;
  let hi = pmax;
  let stale = 0;
  let wLo = 1;
  let wHi = 1;
  while (hi.cost < budget - epsilon && hi.lambda - lo.lambda > 1e-6 * lambdaMax && out.rollouts < maxRollouts - 1) {
    const flo = (lo.cost - budget) * wLo;
    const fhi = (hi.cost - budget) * wHi;
    let lambda = lo.lambda + ((hi.lambda - lo.lambda) * flo) / (flo - fhi);
    const margin = 0.02 * (hi.lambda - lo.lambda);
    lambda = Math.min(Math.max(lambda, lo.lambda + margin), hi.lambda - margin);
    if (stale >= 2) lambda = 0.5 * (lo.lambda + hi.lambda);
    const p = await probe(lambda);
    if (p.cost > budget) {
      lo = p;
      wLo = 1;
      wHi *= 0.5;
      stale++;
    } else {
      hi = p;
      wHi = 1;
      wLo *= 0.5;
      stale = 0;
    }
  }
  out.feasible = true;
  if (hi.cost >= budget - epsilon) return finish(hi.lambda);
  const atHi = await enforced(hi.lambda);
  const atLo = await enforced(lo.lambda);
  if (atLo.revenue > atHi.revenue) {
    out.plan = atLo;
    out.lambda = lo.lambda;
  } else {
    out.plan = atHi;
    out.lambda = hi.lambda;
  }
  return out;
}
