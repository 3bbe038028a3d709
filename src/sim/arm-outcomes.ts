/**
 * Outcome models by arm: one model per joint action (a T-learner: each arm's response learnt
 * from that arm's rows only) or one pooled model with the action one-hot (an S-learner), and
 * the rule that picks between them. The learned simulator (src/sim/simulator.ts) and DFCL's
 * response model (src/policy/dfcl.ts) fit through here, and native/env_sim.h and
 * native/policy_scored.h read the same `armModel` map.
 */
import { ArgumentError, NativeError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import type { DesignMatrix, FeatureLayout } from './features.js';
import { designRowOutcomes, fitOutcomeRows, type OutcomeModel, type OutcomeParams } from './outcome.js';

/** 'per-arm': one model per joint action; 'pooled': one model, the action one-hot; 'auto': per arm where the log supports it (`choosePerArm`). */
export type ArmsChoice = 'auto' | 'per-arm' | 'pooled';

export const ARMS_CHOICES: readonly ArmsChoice[] = ['auto', 'per-arm', 'pooled'];

/** 'auto' fits per arm with at most this many joint actions … */
export const PER_ARM_MAX_ACTIONS = 16;
/** … each logged on at least this many rows. */
export const PER_ARM_MIN_ROWS = 500;

/** Outcome models by joint action: action k is scored by outcomes[armModel[k]] (pooled: one model, armModel all 0). */
export interface ArmOutcomes {
  outcomes: OutcomeModel[];
  armModel: number[];
}

/** The design rows of `m` by the joint action logged there (`joint`: loggedJointActions of m's trajectories): [K][rows]. */
export function rowsByArm(joint: Int32Array, m: DesignMatrix, K: number): number[][] {
  const rowsOf: number[][] = Array.from({ length: K }, () => []);
  for (let r = 0; r < m.rows; r++) rowsOf[joint[m.cells[r]]].push(r);
  return rowsOf;
}

/**
 * Whether to fit per arm: 'per-arm' always (every joint action must have been logged), 'pooled'
 * never, 'auto' with at most PER_ARM_MAX_ACTIONS joint actions each on ≥ PER_ARM_MIN_ROWS rows.
 * @throws {ArgumentError} (argument `arms`) for an unknown choice, or 'per-arm' with an arm never logged.
 */
export function choosePerArm(choice: ArmsChoice, rowsOf: number[][]): boolean {
  checkArmsChoice(choice);
  if (choice === 'per-arm') {
    const empty = rowsOf.findIndex((rows) => rows.length === 0);
    if (empty >= 0) throw new ArgumentError('arms', `'per-arm' needs every joint action logged; action ${empty} (jointActions order) never was: use 'pooled' or 'auto'`);
    return true;
  }
  return choice === 'auto' && rowsOf.length <= PER_ARM_MAX_ACTIONS && rowsOf.every((rows) => rows.length >= PER_ARM_MIN_ROWS);
}

/** @throws {ArgumentError} (argument `arms`) unless `choice` is one of ARMS_CHOICES. */
export function checkArmsChoice(choice: unknown): asserts choice is ArmsChoice {
  if (!ARMS_CHOICES.includes(choice as ArmsChoice)) throw new ArgumentError('arms', `must be ${ARMS_CHOICES.map((c) => `'${c}'`).join(', ')}, got ${String(choice)}`);
}

export interface ArmRowsFit {
  /** Users whose rows are validation rows (early stopping, residuals): [users] 1/0. */
  held: Uint8Array;
  params: OutcomeParams;
  /** Transition heads for layout.dynamic (where the next round is logged). Default true. */
  next?: boolean;
}

/**
 * One outcome model on the design rows `rows` of `m` (reward and cost heads; transitions where
 * the next round is logged, unless `next` is false). The history columns come from the whole
 * trajectory, whatever the subset.
 */
export async function fitArmRows(traj: Trajectories, m: DesignMatrix, rows: number[], layout: FeatureLayout, options: ArmRowsFit): Promise<OutcomeModel> {
  const dynamic = options.next === false ? [] : layout.dynamic;
  const o = designRowOutcomes(traj, m, rows, options.held, dynamic);
  try {
    return await fitOutcomeRows(layout, {
      rows: rows.length,
      cols: m.cols,
      features: o.features,
      reward: o.reward,
      cost: o.cost,
      validation: o.anyHeld ? o.validation : undefined,
      nextFrom: dynamic.length > 0 ? dynamic.map((s) => layout.offsets.state + s) : undefined,
      next: dynamic.length > 0 ? o.next : undefined,
      params: options.params,
    });
  } catch (e) {
    if (e instanceof NativeError && e.code === 'NATIVE_ARGUMENT') throw new ArgumentError('options', e.message);
    throw e;
  }
}

/** One model per joint action, on that action's rows (see fitArmRows); disposes what it fitted when one fails. */
export async function fitPerArm(traj: Trajectories, m: DesignMatrix, rowsOf: number[][], layout: FeatureLayout, options: ArmRowsFit): Promise<ArmOutcomes> {
  const outcomes: OutcomeModel[] = [];
  try {
    for (let k = 0; k < rowsOf.length; k++) {
      outcomes.push(await fitArmRows(traj, m, rowsOf[k], layout, options));
    }
  } catch (e) {
    for (const o of outcomes) o.dispose();
    throw e;
  }
  return { outcomes, armModel: outcomes.map((_, k) => k) };
}

/** Joint actions of a layout: the product of the action dimensions' sizes. */
export const jointCount = (layout: Pick<FeatureLayout, 'actionSizes'>): number => layout.actionSizes.reduce((a, b) => a * b, 1);

/**
 * Checks models by joint action against each other: at least one model, one model index per
 * joint action of the first model's layout, each in range, every model reading that layout's columns.
 * @throws {ArgumentError} (argument `armModel` or `outcomes`) naming the entry that is wrong.
 */
export function checkArms(arms: ArmOutcomes): void {
  if (!arms.outcomes.length) throw new ArgumentError('outcomes', 'must hold at least one outcome model');
  const layout = arms.outcomes[0].layout;
  const K = jointCount(layout);
  if (arms.armModel.length !== K) throw new ArgumentError('armModel', `must hold one model index per joint action (${K}), got ${arms.armModel.length}`);
  arms.armModel.forEach((m, k) => {
    if (!Number.isInteger(m) || m < 0 || m >= arms.outcomes.length) throw new ArgumentError('armModel', `[${k}] = ${m} is not an index of the ${arms.outcomes.length} models`);
  });
  arms.outcomes.forEach((o, i) => {
    if (o.layout.names.length !== layout.names.length) throw new ArgumentError('outcomes', `[${i}] reads ${o.layout.names.length} design columns, model 0 reads ${layout.names.length}`);
  });
}

/** One pooled model scoring every joint action. */
export const pooled = (model: OutcomeModel): ArmOutcomes => ({ outcomes: [model], armModel: Array.from({ length: jointCount(model.layout) }, () => 0) });

/** Frees every model. */
export function disposeArms(arms: ArmOutcomes): void {
  for (const o of arms.outcomes) o.dispose();
}
