/**
 * λ augmentation. The paper draws λ ~ U(0, 1) ten times per trajectory and stores ten
 * copies; we draw λ per sample when a batch is formed (same distribution, no copies) and
 * keep the literal copies for the `--lambda-copies` recipe.
 */
import { ArgumentError } from '../errors.js';
import { CounterStream, Streams } from './rng.js';
import { selectUsers, type Trajectories } from './trajectories.js';

export interface LambdaOptions {
  seed: number;
  /** Upper end of the λ range (the paper: 1). */
  lambdaMax?: number;
  /**
   * λ = lambdaMax · u^power with u ~ U(0, 1): 1 (the default) is the uniform draw; above 1 puts
   * more of the samples at small λ (loose budgets), below 1 at large λ (tight budgets).
   */
  power?: number;
  /**
   * Share of λmax drawn below zero: λ = lambdaMax · ((1 + margin) · u^power − margin), so the
   * draws span [−margin · λmax, λmax]. Decisions use λ in [0, λmax]; a margin puts λ = 0 (the
   * revenue-maximising end of the budgets) inside the range the model learns instead of at its
   * edge. Default 0.
   */
  margin?: number;
}

function checkLambdaMax(lambdaMax: number): void {
  if (!Number.isFinite(lambdaMax) || lambdaMax <= 0) throw new ArgumentError('lambdaMax', `must be a finite number > 0, got ${lambdaMax}`);
}

function checkMargin(margin: number): void {
  if (!Number.isFinite(margin) || margin < 0 || margin >= 1) throw new ArgumentError('lambdaMargin', `must be a number in [0, 1), got ${margin}`);
}

function checkPower(power: number): void {
  if (!Number.isFinite(power) || power < 0.1 || power > 10) throw new ArgumentError('lambdaPower', `must be a number in [0.1, 10], got ${power}`);
}

/** λ ~ lambdaMax · ((1 + margin) · U(0, 1)^power − margin) (default: U(0, lambdaMax)) for each sample of batch number `step`; a pure function of (seed, step, i). */
export function sampleLambdas(count: number, step: number, options: LambdaOptions): Float32Array {
  const lambdaMax = options.lambdaMax ?? 1;
  const power = options.power ?? 1;
  const margin = options.margin ?? 0;
  checkLambdaMax(lambdaMax);
  checkPower(power);
  checkMargin(margin);
  if (!Number.isInteger(step) || step < 0 || step > 0xffffffff) throw new ArgumentError('step', 'must be an integer in [0, 2^32)');
  const out = new Float32Array(count);
  const stream = new CounterStream(options.seed, step, 0, Streams.lambda);
  for (let i = 0; i < count; i++) out[i] = ((1 + margin) * stream.uniform() ** power - margin) * lambdaMax;
  return out;
}

/**
 * The literal recipe: every trajectory `copies` times, each copy with its own fixed λ
 * (copy c of user i gets the draw keyed by (seed, user i, round c)).
 */
export function withLambdaCopies(traj: Trajectories, copies: number, options: LambdaOptions): Trajectories {
  if (!Number.isInteger(copies) || copies < 1 || copies > 1000) throw new ArgumentError('lambdaCopies', `must be an integer in [1, 1000], got ${copies}`);
  const lambdaMax = options.lambdaMax ?? 1;
  checkLambdaMax(lambdaMax);
  const indices = new Int32Array(traj.users * copies);
  const lambda = new Float32Array(traj.users * copies);
  for (let i = 0; i < traj.users; i++) {
    for (let c = 0; c < copies; c++) {
      indices[i * copies + c] = i;
      lambda[i * copies + c] = new CounterStream(options.seed, i, c, Streams.lambda).uniform() * lambdaMax;
    }
  }
  return { ...selectUsers(traj, indices), lambda };
}
