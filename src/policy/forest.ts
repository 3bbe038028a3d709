/**
 * The Forest baseline: a multi-arm causal forest with honest trees (native/forest.h, after
 * Wager & Athey 2018 and Athey, Tibshirani & Wager 2019), fitted on a training log, predicting
 * each coupon's uplift over no coupon in reward and in cost from the state; the policy
 * (native/policy_forest.cc) gives each user argmax uplift_r − λ·uplift_c, or no coupon when
 * nothing scores above 0, and λ is searched.
 *
 * Each logged (user, round) row is one unit; the arm is its joint action (one arm per
 * combination of the action dimensions' values, the last dimension fastest, as the native
 * policy decodes it).
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import { jointIndex, loggedJointActions } from '../sim/features.js';
import {
  nativeForestFit,
  nativeForestInfo,
  nativeForestLoad,
  nativeForestPredict,
  nativeForestSave,
  nativeForestUnload,
  type NativeForestData,
  type NativeForestInfo,
  type NativeForestOptions,
} from '../native/index.js';
import type { PolicyDefinition } from './types.js';

export const forestPolicy = {
  name: 'forest',
  description: 'multi-arm causal forest (honest trees) on the log; argmax uplift_r − λ·uplift_c, no coupon when none is positive',
  needsModel: false,
  searched: true,
  fittedOn: 'a causal forest fitted on a log (fitForest)',
} as const satisfies PolicyDefinition;

/** Training rows of a forest: one per (user, round) unit. */
export type ForestRows = NativeForestData;

/** How the forest grows (defaults in native/forest.h: 100 trees on half-samples cut into honest halves, GRF's mtry and min.node.size 5, here per arm). */
export type ForestOptions = NativeForestOptions;

const unloadOnGc = new FinalizationRegistry<number>((id) => {
  try {
    nativeForestUnload(id);
  } catch {
    // the addon is gone with the process
  }
});

/** A fitted forest in the native registry (shared by every thread); unload it when done (also done on GC). */
export class CausalForest {
  readonly id: number;
  readonly info: NativeForestInfo;
  private unloaded = false;

  /** @internal use fitForest or loadForest */
  constructor(id: number) {
    this.id = id;
    this.info = nativeForestInfo(id);
    unloadOnGc.register(this, id, this);
  }

  /** Uplift over control of every arm, [rows, arms] (0 in the control column), for x [rows, features]. */
  async predict(x: Float32Array): Promise<{ reward: Float64Array; cost: Float64Array }> {
    if (!(x instanceof Float32Array) || x.length % this.info.features !== 0) throw new ArgumentError('x', `must be a Float32Array of rows x ${this.info.features} values`);
    if (!x.every(Number.isFinite)) throw new ArgumentError('x', 'holds NaN or infinite values');
    return nativeForestPredict(this.id, x);
  }

  /** The forest as bytes (a versioned format; `loadForest` reads it back). */
  async save(): Promise<Uint8Array> {
    return nativeForestSave(this.id);
  }

  unload(): void {
    if (this.unloaded) return;
    this.unloaded = true;
    unloadOnGc.unregister(this);
    nativeForestUnload(this.id);
  }
}

/**
 * The control arm of trajectories built without control values: the one arm (joint action) whose logged cost is always 0.
 * @throws {ArgumentError} when no action, or more than one, never costs anything.
 */
function controlArm(arm: Int32Array, cost: Float64Array, arms: number): number {
  const costs = new Array<boolean>(arms).fill(false);
  for (let r = 0; r < arm.length; r++) if (cost[r] !== 0) costs[arm[r]] = true;
  const free = costs.flatMap((c, k) => (c ? [] : [k]));
  if (free.length !== 1) {
    throw new ArgumentError('control', `cannot tell the no-coupon action: ${free.length === 0 ? 'every action has a logged cost' : `actions ${free.join(', ')} never cost anything`}; name it with { control }`);
  }
  return free[0];
}

/** The most arms (joint actions) a forest takes: the native forest's limit. */
const MAX_FOREST_ARMS = 256;

/**
 * The training rows of a forest from trajectories: every real (user, round) row, its state,
 * the index of its joint action, reward and cost. The control arm is `control`, else the
 * joint action of the log's control values (as reading recorded them: stated in the schema or
 * implied by the log), else, for trajectories built without them, the one arm never logged
 * with a cost.
 * @throws {ArgumentError} for more than 256 joint actions, or no control arm to be found.
 */
export function forestRows(traj: Trajectories, control?: number): ForestRows {
  const sizes = traj.actionEncodings.map((e) => e.values.length);
  const arms = sizes.reduce((p, k) => p * k, 1);
  if (arms > MAX_FOREST_ARMS) {
    throw new ArgumentError('trajectories', `the forest takes at most ${MAX_FOREST_ARMS} joint actions; ${traj.actionEncodings.map((e) => `${e.column} (${e.values.length})`).join(' × ')} make ${arms}`);
  }
  const joint = loggedJointActions(traj);
  const d = traj.stateDim;
  let rows = 0;
  for (let i = 0; i < traj.mask.length; i++) rows += traj.mask[i];
  const x = new Float32Array(rows * d);
  const arm = new Int32Array(rows);
  const reward = new Float64Array(rows);
  const cost = new Float64Array(rows);
  let r = 0;
  for (let i = 0; i < traj.mask.length; i++) {
    if (!traj.mask[i]) continue;
    x.set(traj.states.subarray(i * d, i * d + d), r * d);
    arm[r] = joint[i];
    reward[r] = traj.rewards[i];
    cost[r] = traj.costs[i];
    r++;
  }
  const stated = traj.actionEncodings.every((e) => e.control !== undefined) ? jointIndex(sizes, traj.actionEncodings.map((e) => e.control as number)) : undefined;
  return { x, features: d, arm, arms, control: control ?? stated ?? controlArm(arm, cost, arms), reward, cost };
}

function checkRows(data: ForestRows): void {
  if (!(data.x instanceof Float32Array) || !(data.arm instanceof Int32Array) || !(data.reward instanceof Float64Array) || !(data.cost instanceof Float64Array)) {
    throw new ArgumentError('rows', 'x must be a Float32Array, arm an Int32Array, reward and cost Float64Arrays');
  }
  const rows = data.arm.length;
  const features = data.features;
  if (!Number.isInteger(features) || features < 1 || data.x.length !== rows * features) throw new ArgumentError('rows.x', `must hold rows x features (${rows} x ${features}) values, has ${data.x.length}`);
  if (data.reward.length !== rows || data.cost.length !== rows) throw new ArgumentError('rows', 'arm, reward and cost must have one value per row');
  if (!Number.isInteger(data.arms) || data.arms < 2 || data.arms > 256) throw new ArgumentError('rows.arms', `must be an integer in [2, 256], got ${data.arms}`);
  if (!Number.isInteger(data.control) || data.control < 0 || data.control >= data.arms) throw new ArgumentError('control', `must be an arm index in [0, ${data.arms}), got ${data.control}`);
}

/**
 * Fits a causal forest on trajectories (or prepared rows) off the main thread.
 * @throws {ArgumentError} for more than 256 joint actions, an unknown control arm, bad rows or options; {@link NativeError} when the core refuses them (e.g. an arm with no rows).
 * @example
 * const forest = await fitForest(train, { trees: 200, seed: 1 });
 * const plan = await solve({ policy: 'forest', forest, users: test, budget: '0.5x' });
 */
export async function fitForest(data: Trajectories | ForestRows, options: ForestOptions & { control?: number } = {}): Promise<CausalForest> {
  const { control, ...grow } = options;
  const rows = 'x' in data ? { ...data, control: control ?? data.control } : forestRows(data, control);
  checkRows(rows);
  return new CausalForest(await nativeForestFit(rows, grow));
}

/** Reads a forest saved with `forest.save()`. @throws {NativeError} `NATIVE_ARGUMENT` for bytes that are not a valid forest. */
export async function loadForest(bytes: Uint8Array): Promise<CausalForest> {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError('bytes', 'must be a Uint8Array');
  return new CausalForest(await nativeForestLoad(bytes));
}
