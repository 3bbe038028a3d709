/**
 * Rollouts and the bisection λ search driven from TypeScript, for policies whose logits come
 * from elsewhere than the native engine (onnxruntime sessions and pools). The environment is
 * SY's TypeScript reference (bit-identical to native/env.cc) and every rule mirrors
 * native/rollout.cc and native/dual.cc — users in id order, the budget checked against
 * realised spend, greedy actions, the same search — so both engines give the same plan.
 * ORT has no KV cache: round t re-runs the t+1 rounds of history.
 */
import { CounterStream, Streams } from '../data/rng.js';
import { syCouponValue, syPurchaseProbability, syUserConstants, syWeights, type SyConfig, type SyUser } from '../data/synth.js';
import type { ModelMeta } from '../model/artifact.js';
import { actionWidth } from '../model/config.js';
import type { ForwardInputs } from '../model/codt-tfjs.js';
import { targetsAt } from '../model/stats.js';

export type LogitsFn = (inputs: ForwardInputs) => Promise<Float32Array>;

export interface TsRolloutResult {
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  plan: Int32Array;
}

interface UserState {
  id: number;
  x: Float64Array;
  consts: SyUser;
  engagement: number;
  fatigue: number;
  rtgLeft: number;
  ctgLeft: number;
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
  const users: UserState[] = Array.from(ids, (id, i) => {
    const x = new Float64Array(d);
    if (features) x.set(features.subarray(i * d, (i + 1) * d));
    else {
      const s = new CounterStream(env.seed, id, 0, Streams.features);
      for (let j = 0; j < d; j++) x[j] = s.normal();
    }
    return { id, x, consts: syUserConstants(env, w, x), engagement: 0, fatigue: 0, rtgLeft: target.rtg, ctgLeft: target.ctg };
  });
  const none = env.actionDims.map((dim) => dim.values.indexOf(Math.min(...dim.values)));
  const history = { states: new Float32Array(n * rounds * sd), rtg: new Float32Array(n * rounds), ctg: new Float32Array(n * rounds), onehot: new Float32Array(n * rounds * K) };
  const plan = new Int32Array(n * rounds * A);
  const result: TsRolloutResult = { revenue: 0, cost: 0, coupons: 0, blocked: 0, plan };
  const eta = env.sequential ? env.eta : 0;
  let spent = 0;
  for (let t = 0; t < rounds; t++) {
    const T = t + 1;
    // observe (as native observe(): floats of the latent state) and record this round's targets
    for (let i = 0; i < n; i++) {
      const u = users[i];
      const o = (i * rounds + t) * sd;
      const obs = new CounterStream(env.seed, u.id, t, Streams.obsNoise);
      for (let j = 0; j < d; j++) history.states[o + j] = env.sigmaObs > 0 ? u.x[j] + env.sigmaObs * obs.normal() : u.x[j];
      history.states[o + d] = env.sigmaObs > 0 ? u.engagement + env.sigmaObs * obs.normal() : u.engagement;
      history.states[o + d + 1] = env.sigmaObs > 0 ? u.fatigue + env.sigmaObs * obs.normal() : u.fatigue;
      history.states[o + d + 2] = t / env.rounds;
      history.rtg[i * rounds + t] = u.rtgLeft;
      history.ctg[i * rounds + t] = u.ctgLeft;
    }
    const inputs: ForwardInputs = { batch: n, rounds: T, states: new Float32Array(n * T * sd), rtg: new Float32Array(n * T), ctg: new Float32Array(n * T), actionsOneHot: new Float32Array(n * T * K), lambda: new Float32Array(n).fill(lambda) };
    for (let i = 0; i < n; i++) {
      inputs.states.set(history.states.subarray(i * rounds * sd, (i * rounds + T) * sd), i * T * sd);
      inputs.rtg.set(history.rtg.subarray(i * rounds, i * rounds + T), i * T);
      inputs.ctg.set(history.ctg.subarray(i * rounds, i * rounds + T), i * T);
      inputs.actionsOneHot.set(history.onehot.subarray(i * rounds * K, (i * rounds + t) * K), i * T * K);
    }
    const out = await logits(inputs);
    const actions = new Int32Array(n * A);
    for (let i = 0; i < n; i++) {
      const l = out.subarray((i * T + t) * K, (i * T + t + 1) * K);
      let off = 0;
      meta.config.actionSizes.forEach((k, j) => {
        let best = 0;
        for (let a = 1; a < k; a++) if (l[off + a] > l[off + best]) best = a;
        actions[i * A + j] = best;
        off += k;
      });
    }
    // the budget, in user order, against realised spend (native/rollout.cc)
    let running = spent;
    for (let i = 0; i < n; i++) {
      const a = actions.subarray(i * A, i * A + A);
      const u = users[i];
      const v = syCouponValue(env, a, u.consts.basket);
      if (v > 0 && Number.isFinite(budget) && running + v > budget) {
        a.set(none);
        result.blocked++;
        continue;
      }
      if (v > 0) result.coupons++;
      if (Number.isFinite(budget)) {
        const p = syPurchaseProbability(env, u.consts, u.engagement, u.fatigue, v);
        running += new CounterStream(env.seed, u.id, t, Streams.purchase).uniform() < p ? v : 0;
      }
    }
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
      const value = syCouponValue(env, a, u.consts.basket);
      const p = syPurchaseProbability(env, u.consts, u.engagement, u.fatigue, value);
      const purchase = new CounterStream(env.seed, u.id, t, Streams.purchase).uniform() < p;
      const reward = purchase ? u.consts.basket : 0;
      const cost = purchase ? value : 0;
      const noise = new CounterStream(env.seed, u.id, t, Streams.engagement).normal();
      u.engagement = env.rho * u.engagement + eta * (purchase ? 1 : 0) + env.sigma * noise;
      u.fatigue = env.phi * u.fatigue + (value > 0 ? 1 : 0);
      u.rtgLeft -= reward;
      u.ctgLeft -= cost;
      roundRevenue += reward;
      roundCost += cost;
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
