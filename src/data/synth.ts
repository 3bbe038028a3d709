/**
 * The synthetic environment "SY" (DESIGN.md section 4), readable reference in TypeScript.
 * native/env_sy.cc computes the same equations with the same counter-based draws and is the
 * fast path (`generateSy` in src/native); both must give bit-identical logs for a seed.
 *
 * User i: x_i ~ N(0, I_d); alpha_i = w_a.x_i + alphaShift; beta_i = softplus(w_b.x_i);
 * m_i = basketScale * exp(basketSpread * w_m.x_i). Round t: coupon value v (sum over the
 * action dimensions; a discount is a fraction of m_i), purchase ~ Bernoulli(sigmoid(alpha_i
 * + gammaE*e_t + beta_i*log(1+v)*exp(-delta*f_t))), reward = purchase*m_i, cost =
 * purchase*v, e_{t+1} = rho*e_t + eta*purchase + sigma*N(0,1), f_{t+1} = phi*f_t + [v > 0].
 */
import { ArgumentError } from '../errors.js';
import { pexp, plog, psigmoid, psoftplus } from './pmath.js';
import { CounterStream, GLOBAL_USER, Streams } from './rng.js';

/** One action dimension of a coupon bundle. */
export interface ActionDimConfig {
  /** Column suffix and label, e.g. `cash` or `discount`. */
  name: string;
  /** `cash`: values are currency; `discount`: values are fractions of the basket value. */
  kind: 'cash' | 'discount';
  /** Face values, index 0 first; 0 means "no coupon" on this dimension. */
  values: number[];
}

/** How the logged actions were chosen. */
export type LoggingPolicy =
  | { kind: 'uniform' }
  /** Bigger coupons for users the logger believes more sensitive; strength scales the bias. */
  | { kind: 'biased'; strength: number };

/** Every constant of SY; all optional in `SyOptions`. */
export interface SyConfig {
  users: number;
  rounds: number;
  /** Dimension of the static features x_i. */
  features: number;
  seed: number;
  actionDims: ActionDimConfig[];
  /** false: eta = delta = 0, coupons do not change later rounds (the paper's setting). */
  sequential: boolean;
  rho: number;
  eta: number;
  gammaE: number;
  delta: number;
  phi: number;
  sigma: number;
  sigmaObs: number;
  alphaShift: number;
  basketScale: number;
  basketSpread: number;
  logging: LoggingPolicy;
  /** Native threads (0: all cores). The result does not depend on it. */
  threads: number;
}

export type SyOptions = Partial<SyConfig>;

export const SY_DEFAULTS: SyConfig = {
  users: 10000,
  rounds: 10,
  features: 8,
  seed: 1,
  actionDims: [{ name: 'coupon', kind: 'cash', values: [0, 2, 5, 10] }],
  sequential: true,
  rho: 0.8,
  eta: 0.5,
  gammaE: 0.6,
  delta: 0.35,
  phi: 0.7,
  sigma: 0.1,
  sigmaObs: 0,
  alphaShift: -1.5,
  basketScale: 20,
  basketSpread: 0.3,
  logging: { kind: 'uniform' },
  threads: 0,
};

/** A cash coupon plus a discount: the bundle example of the paper. */
export const SY_BUNDLE_DIMS: ActionDimConfig[] = [
  { name: 'cash', kind: 'cash', values: [0, 2, 5] },
  { name: 'discount', kind: 'discount', values: [0, 0.1, 0.2] },
];

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ArgumentError(`sy.${name}`, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
}

function checkFinite(name: string, v: unknown, min = -Infinity): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw new ArgumentError(`sy.${name}`, `must be a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${String(v)}`);
  }
}

/** Fills defaults and validates every field; throws ArgumentError naming the field. */
export function resolveSyConfig(options: SyOptions = {}): SyConfig {
  const c: SyConfig = { ...SY_DEFAULTS, ...options };
  checkInt('users', c.users, 1, 1e8);
  checkInt('rounds', c.rounds, 1, 1e5);
  checkInt('features', c.features, 1, 1024);
  checkInt('seed', c.seed, 0, Number.MAX_SAFE_INTEGER);
  checkInt('threads', c.threads, 0, 1024);
  if (c.users * c.rounds > 0x7fffffff) throw new ArgumentError('sy.users', 'users * rounds must be below 2^31');
  if (typeof c.sequential !== 'boolean') throw new ArgumentError('sy.sequential', 'must be a boolean');
  for (const k of ['rho', 'eta', 'gammaE', 'delta', 'phi', 'alphaShift', 'basketSpread'] as const) checkFinite(k, c[k]);
  checkFinite('sigma', c.sigma, 0);
  checkFinite('sigmaObs', c.sigmaObs, 0);
  checkFinite('basketScale', c.basketScale, Number.MIN_VALUE);
  if (!Array.isArray(c.actionDims) || c.actionDims.length < 1 || c.actionDims.length > 16) {
    throw new ArgumentError('sy.actionDims', 'must have 1 to 16 dimensions');
  }
  const names = new Set<string>();
  c.actionDims.forEach((d, j) => {
    const where = `sy.actionDims[${j}]`;
    if (typeof d.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(d.name)) {
      throw new ArgumentError(`${where}.name`, 'must be an identifier (letters, digits, _)');
    }
    if (names.has(d.name)) throw new ArgumentError(`${where}.name`, `"${d.name}" is used twice`);
    names.add(d.name);
    if (d.kind !== 'cash' && d.kind !== 'discount') throw new ArgumentError(`${where}.kind`, "must be 'cash' or 'discount'");
    if (!Array.isArray(d.values) || d.values.length < 1 || d.values.length > 256) {
      throw new ArgumentError(`${where}.values`, 'must have 1 to 256 entries');
    }
    d.values.forEach((v, k) => {
      checkFinite(`actionDims[${j}].values[${k}]`, v, 0);
      if (d.kind === 'discount' && v > 1) throw new ArgumentError(`${where}.values[${k}]`, 'a discount is a fraction in [0, 1]');
    });
    if (new Set(d.values).size !== d.values.length) throw new ArgumentError(`${where}.values`, 'values must be distinct');
  });
  if (c.logging?.kind === 'biased') checkFinite('logging.strength', c.logging.strength);
  else if (c.logging?.kind !== 'uniform') throw new ArgumentError('sy.logging.kind', "must be 'uniform' or 'biased'");
  return c;
}

/** Names of the observed state columns: x0..x{d-1}, engagement, fatigue, round_frac. */
export function syStateNames(features: number): string[] {
  return [...Array.from({ length: features }, (_, j) => `x${j}`), 'engagement', 'fatigue', 'round_frac'];
}

/** Column name of action dimension j in files written by `saco synth`. */
export function syActionColumn(config: SyConfig, j: number): string {
  return config.actionDims.length === 1 ? 'action' : `action_${config.actionDims[j].name}`;
}

/** The logged trajectories of SY in long form; row = user * rounds + round. */
export interface SyLog {
  config: SyConfig;
  stateNames: string[];
  /** [users*rounds, features+3] observed states. */
  states: Float64Array;
  /** [users*rounds, actionDims] index into each dimension's values. */
  actions: Int32Array;
  cost: Float64Array;
  reward: Float64Array;
  /** The true purchase probability of each logged row (ground truth, not observable). */
  purchaseProb: Float64Array;
}

/** Allocates an empty log of the right sizes (the native generator fills it in place). */
export function allocateSyLog(config: SyConfig): SyLog {
  const rows = config.users * config.rounds;
  return {
    config,
    stateNames: syStateNames(config.features),
    states: new Float64Array(rows * (config.features + 3)),
    actions: new Int32Array(rows * config.actionDims.length),
    cost: new Float64Array(rows),
    reward: new Float64Array(rows),
    purchaseProb: new Float64Array(rows),
  };
}

/** The global weight vectors w_alpha, w_beta, w_m (unit length, drawn from the seed). */
export interface SyWeights {
  wAlpha: Float64Array;
  wBeta: Float64Array;
  wM: Float64Array;
}

function unitVector(seed: number, which: number, length: number): Float64Array {
  const stream = new CounterStream(seed, GLOBAL_USER, 0, Streams.weights + which);
  const w = new Float64Array(length);
  let norm2 = 0;
  for (let j = 0; j < length; j++) {
    w[j] = stream.normal();
    norm2 += w[j] * w[j];
  }
  const norm = Math.sqrt(norm2);
  for (let j = 0; j < length; j++) w[j] = w[j] / norm;
  return w;
}

export function syWeights(config: SyConfig): SyWeights {
  return {
    wAlpha: unitVector(config.seed, 0, config.features),
    wBeta: unitVector(config.seed, 1, config.features),
    wM: unitVector(config.seed, 2, config.features),
  };
}

function dot(w: Float64Array, x: ArrayLike<number>, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += w[j] * x[j];
  return s;
}

/** Per-user constants from the static features. */
export interface SyUser {
  alpha: number;
  beta: number;
  basket: number;
  targetingScore: number;
}

export function syUserConstants(config: SyConfig, w: SyWeights, x: ArrayLike<number>): SyUser {
  const targetingScore = dot(w.wBeta, x, config.features);
  return {
    alpha: dot(w.wAlpha, x, config.features) + config.alphaShift,
    targetingScore,
    beta: psoftplus(targetingScore),
    basket: config.basketScale * pexp(config.basketSpread * dot(w.wM, x, config.features)),
  };
}

/** Monetary value of a (bundled) action for a user with basket value `basket`. */
export function syCouponValue(config: SyConfig, action: ArrayLike<number>, basket: number): number {
  let value = 0;
  for (let j = 0; j < config.actionDims.length; j++) {
    const dim = config.actionDims[j];
    const v = dim.values[action[j]];
    value += dim.kind === 'cash' ? v : v * basket;
  }
  return value;
}

export function syPurchaseProbability(config: SyConfig, user: SyUser, engagement: number, fatigue: number, couponValue: number): number {
  const delta = config.sequential ? config.delta : 0.0;
  const effect = user.beta * plog(1.0 + couponValue) * pexp(-delta * fatigue);
  return psigmoid(user.alpha + config.gammaE * engagement + effect);
}

// The biased logger's unnormalised weight of each value of one dimension, exp(logit − max).
function loggerWeights(config: SyConfig, values: number[], user: SyUser): { weights: Float64Array; total: number } {
  const kCount = values.length;
  const strength = config.logging.kind === 'biased' ? config.logging.strength : 0;
  let vmax = 0;
  for (const v of values) vmax = Math.abs(v) > vmax ? Math.abs(v) : vmax;
  const weights = new Float64Array(kCount);
  let lmax = -1e300;
  for (let k = 0; k < kCount; k++) {
    const scaled = vmax > 0 ? values[k] / vmax : 0.0;
    weights[k] = strength * user.targetingScore * scaled;
    lmax = weights[k] > lmax ? weights[k] : lmax;
  }
  let total = 0;
  for (let k = 0; k < kCount; k++) {
    weights[k] = pexp(weights[k] - lmax);
    total += weights[k];
  }
  return { weights, total };
}

function logAction(config: SyConfig, values: number[], user: SyUser, stream: CounterStream): number {
  const kCount = values.length;
  const u = stream.uniform();
  if (config.logging.kind === 'uniform') {
    const k = Math.floor(u * kCount);
    return k < kCount ? k : kCount - 1;
  }
  const { weights, total } = loggerWeights(config, values, user);
  const target = u * total;
  let cumulative = 0;
  for (let k = 0; k < kCount; k++) {
    cumulative += weights[k];
    if (target < cumulative) return k;
  }
  return kCount - 1;
}

/**
 * The logging policy's probability of each row's logged joint action (SY knows it: the logger
 * is part of the world): 1 / (values) per dimension for the uniform logger, the softmax of
 * strength · targeting score · value / max value for the biased one, multiplied over the
 * dimensions. Users are the log's ids 0..users−1 (features drawn from their stream).
 */
export function syLoggingPropensities(log: SyLog): Float64Array {
  const { config } = log;
  const A = config.actionDims.length;
  const out = new Float64Array(config.users * config.rounds);
  if (config.logging.kind === 'uniform') return out.fill(config.actionDims.reduce((p, d) => p / d.values.length, 1));
  const w = syWeights(config);
  for (let i = 0; i < config.users; i++) {
    const consts = syInitialUser(config, w, i).consts;
    const perDim = config.actionDims.map((d) => loggerWeights(config, d.values, consts));
    for (let t = 0; t < config.rounds; t++) {
      const row = i * config.rounds + t;
      let p = 1;
      for (let j = 0; j < A; j++) {
        const dim = perDim[j];
        p *= dim.weights[log.actions[row * A + j]] / dim.total;
      }
      out[row] = p;
    }
  }
  return out;
}

/** One SY user's latent state: static features and constants, then engagement and fatigue. */
export interface SyUserState {
  id: number;
  x: Float64Array;
  consts: SyUser;
  engagement: number;
  fatigue: number;
}

/**
 * A user at round 0 (engagement = fatigue = 0). `features` are the user's x when given (a
 * plan for known users); otherwise x is drawn from the user's features stream.
 */
export function syInitialUser(config: SyConfig, weights: SyWeights, id: number, features?: ArrayLike<number>): SyUserState {
  const d = config.features;
  const x = new Float64Array(d);
  if (features) for (let j = 0; j < d; j++) x[j] = features[j];
  else {
    const stream = new CounterStream(config.seed, id, 0, Streams.features);
    for (let j = 0; j < d; j++) x[j] = stream.normal();
  }
  return { id, x, consts: syUserConstants(config, weights, x), engagement: 0, fatigue: 0 };
}

/**
 * Writes the observed state of round t, (x, engagement, fatigue, t/rounds) plus sigmaObs
 * noise from the obsNoise stream, at out[offset..offset+features+3). The values are computed
 * in doubles and stored in whatever precision `out` has.
 */
export function syObserve(config: SyConfig, user: SyUserState, t: number, out: Float64Array | Float32Array, offset: number): void {
  const d = config.features;
  const noisy = config.sigmaObs > 0;
  const obs = new CounterStream(config.seed, user.id, t, Streams.obsNoise);
  for (let j = 0; j < d; j++) out[offset + j] = noisy ? user.x[j] + config.sigmaObs * obs.normal() : user.x[j];
  out[offset + d] = noisy ? user.engagement + config.sigmaObs * obs.normal() : user.engagement;
  out[offset + d + 1] = noisy ? user.fatigue + config.sigmaObs * obs.normal() : user.fatigue;
  out[offset + d + 2] = t / config.rounds;
}

/**
 * Whether the user buys in round t if offered a coupon worth `couponValue`, from the purchase
 * stream. Pure: the budget check draws it before the step, and the step draws it again.
 */
export function syPurchaseDraw(config: SyConfig, user: SyUserState, t: number, couponValue: number): { probability: number; purchase: boolean } {
  const probability = syPurchaseProbability(config, user.consts, user.engagement, user.fatigue, couponValue);
  const purchase = new CounterStream(config.seed, user.id, t, Streams.purchase).uniform() < probability;
  return { probability, purchase };
}

export interface SyStepResult {
  /** Monetary value of the coupon offered. */
  value: number;
  /** The true purchase probability (ground truth, not observable). */
  probability: number;
  purchase: boolean;
  reward: number;
  /** value when the coupon was redeemed (a purchase), else 0. */
  cost: number;
}

/** Round t of one user under `action`: the response, and engagement and fatigue move on in place. */
export function syStep(config: SyConfig, user: SyUserState, t: number, action: ArrayLike<number>): SyStepResult {
  const value = syCouponValue(config, action, user.consts.basket);
  const { probability, purchase } = syPurchaseDraw(config, user, t, value);
  const eta = config.sequential ? config.eta : 0.0;
  const noise = new CounterStream(config.seed, user.id, t, Streams.engagement).normal();
  user.engagement = config.rho * user.engagement + eta * (purchase ? 1.0 : 0.0) + config.sigma * noise;
  user.fatigue = config.phi * user.fatigue + (value > 0 ? 1.0 : 0.0);
  return { value, probability, purchase, reward: purchase ? user.consts.basket : 0.0, cost: purchase ? value : 0.0 };
}

/**
 * Generates the SY log in TypeScript: the readable reference path. The native generator
 * (`generateSy` in src/native) is the fast one and must produce the same bits.
 */
export function generateSyReference(options: SyOptions = {}): SyLog {
  const config = resolveSyConfig(options);
  const log = allocateSyLog(config);
  const stateDim = config.features + 3;
  const A = config.actionDims.length;
  const w = syWeights(config);
  const action = new Int32Array(A);
  for (let i = 0; i < config.users; i++) {
    const user = syInitialUser(config, w, i);
    for (let t = 0; t < config.rounds; t++) {
      const row = i * config.rounds + t;
      syObserve(config, user, t, log.states, row * stateDim);
      const logger = new CounterStream(config.seed, i, t, Streams.logger);
      for (let j = 0; j < A; j++) action[j] = logAction(config, config.actionDims[j].values, user.consts, logger);
      log.actions.set(action, row * A);
      const step = syStep(config, user, t, action);
      log.purchaseProb[row] = step.probability;
      log.reward[row] = step.reward;
      log.cost[row] = step.cost;
    }
  }
  return log;
}
