/**
 * What makes a model usable by every engine (native, onnxruntime, tfjs): a valid config, every
 * weight present, of its size and finite, and normalisation and target tables that are finite
 * numbers. Checked when a model is read, encoded or loaded, so a corrupt model is refused up
 * front instead of producing a plan of NaNs on one engine and an error on another.
 */
import { ArgumentError } from '../errors.js';
import type { CodtModel } from './artifact.js';
import { validateCodtConfig } from './config.js';
import { checkParams } from './params.js';

/** @throws {ArgumentError} naming the field or parameter (codes `MODEL_PARAM_*`, `MODEL_META_INVALID`). */
export function validateModel(model: CodtModel, where = 'model'): void {
  if (typeof model !== 'object' || model === null || !(model.params instanceof Map) || typeof model.meta !== 'object' || model.meta === null) {
    throw new ArgumentError(where, 'is not a model: expected { meta, params } as readOnnx returns it', 'MODEL_META_INVALID');
  }
  const { config, normalization: n, targets } = model.meta;
  validateCodtConfig(config);
  checkParams(config, model.params, where);
  for (const [name, data] of model.params) {
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new ArgumentError(where, `parameter ${name}[${bad}] is ${data[bad]}: the weights must be finite`, 'MODEL_PARAM_NONFINITE');
  }
  const finite = (field: string, values: readonly number[], positive = false) => {
    const bad = values.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0));
    if (bad >= 0) throw new ArgumentError(where, `${field}[${bad}] is ${String(values[bad])}: must be a finite number${positive ? ' > 0' : ''}`, 'MODEL_META_INVALID');
  };
  if (!n || !targets) throw new ArgumentError(where, 'meta needs normalization and targets', 'MODEL_META_INVALID');
  if (n.stateMean?.length !== config.stateDim || n.stateStd?.length !== config.stateDim) {
    throw new ArgumentError(where, `normalization needs ${config.stateDim} state means and standard deviations`, 'MODEL_META_INVALID');
  }
  finite('normalization.stateMean', n.stateMean);
  finite('normalization.stateStd', n.stateStd, true);
  finite('normalization.rtgScale/ctgScale/lambdaMax', [n.rtgScale, n.ctgScale, n.lambdaMax], true);
  if (!targets.lambdas?.length || targets.rtg?.length !== targets.lambdas.length || targets.ctg?.length !== targets.lambdas.length) {
    throw new ArgumentError(where, 'targets need one rtg and ctg value per λ of the table', 'MODEL_META_INVALID');
  }
  finite('targets.lambdas', targets.lambdas);
  finite('targets.rtg', targets.rtg);
  finite('targets.ctg', targets.ctg);
}

/**
 * How far from the training data a state value may lie, in training standard deviations:
 * beyond it the model's scores are extrapolation at best and overflow at worst.
 */
export const STATE_RANGE_SDS = 1000;

/** The accepted interval of each state feature, [mean − STATE_RANGE_SDS·sd, mean + STATE_RANGE_SDS·sd], computed once per model. */
const stateBounds = new WeakMap<CodtModel['meta'], { lo: Float64Array; hi: Float64Array }>();

function boundsOf(meta: CodtModel['meta']): { lo: Float64Array; hi: Float64Array } {
  let bounds = stateBounds.get(meta);
  if (!bounds) {
    const { stateMean, stateStd } = meta.normalization;
    bounds = { lo: Float64Array.from(stateMean, (m, j) => m - STATE_RANGE_SDS * stateStd[j]), hi: Float64Array.from(stateMean, (m, j) => m + STATE_RANGE_SDS * stateStd[j]) };
    stateBounds.set(meta, bounds);
  }
  return bounds;
}

/**
 * True when one row of states (a user's round) lies in the range checkStatesInRange accepts:
 * the per-decision check, which builds no error text; a row it rejects goes to
 * checkStatesInRange for the error that names the feature.
 */
export function stateRowInRange(model: Pick<CodtModel, 'meta'>, row: ArrayLike<number>): boolean {
  const { lo, hi } = boundsOf(model.meta);
  for (let j = 0; j < row.length; j++) if (!(row[j] >= lo[j] && row[j] <= hi[j])) return false;
  return true;
}

/**
 * Refuses state values [rows, width] (the first `width` state columns of the model) that lie
 * more than STATE_RANGE_SDS training standard deviations from the training mean.
 * @throws {ArgumentError} code `INPUT_OUT_OF_RANGE`, naming the row and the state column.
 */
export function checkStatesInRange(model: Pick<CodtModel, 'meta'>, states: ArrayLike<number>, width: number, where: string): void {
  const { stateMean, stateStd } = model.meta.normalization;
  const { lo, hi } = boundsOf(model.meta);
  const names = model.meta.stateNames;
  for (let i = 0; i < states.length; i++) {
    const j = i % width;
    if (states[i] >= lo[j] && states[i] <= hi[j]) continue;
    const z = (states[i] - stateMean[j]) / stateStd[j];
    const row = Math.floor(i / width);
    throw new ArgumentError(where, `row ${row}, state "${names[j] ?? j}" = ${states[i]} lies ${Number.isFinite(z) ? Math.abs(z).toExponential(1) : 'infinitely many'} training standard deviations from the training mean (${stateMean[j].toPrecision(4)} ± ${stateStd[j].toPrecision(4)}); at most ${STATE_RANGE_SDS} are accepted`, 'INPUT_OUT_OF_RANGE');
  }
}
