/**
 * A trained CODT: weights plus everything needed to use them on new data (normalisation,
 * encodings, target tables, a fingerprint of the data schema). One ONNX file carries it.
 */
import { createHash } from 'node:crypto';
import { DataError } from '../errors.js';
import type { ActionEncoding, CategoricalEncoding } from '../data/log.js';
import type { Trajectories } from '../data/trajectories.js';
import type { CodtConfig } from './config.js';
import type { Params } from './params.js';
import type { Normalization, RoundMoments, TargetTable } from './stats.js';

export interface TrainingInfo {
  trainer: 'tfjs' | 'native' | 'custom';
  backend: string;
  seed: number;
  epochs: number;
  steps: number;
  bestValLoss: number;
  samplesPerSecond: number;
  data: string;
  /** Share of λmax the λ draw reached below 0 (TrainOptions.lambdaMargin); absent in models trained before it: 0. */
  lambdaMargin?: number;
}

export interface ModelMeta {
  format: 'saco-codt';
  version: 1;
  config: CodtConfig;
  normalization: Normalization;
  stateNames: string[];
  actionEncodings: ActionEncoding[];
  categorical: CategoricalEncoding[];
  /** beta of the Lagrangian weighting; null for unweighted variants. */
  beta: number | null;
  moments: RoundMoments;
  targets: TargetTable;
  /** sha256 of the state names and encodings the model was trained on. */
  fingerprint: string;
  training: TrainingInfo;
  /** The planned spend over λ on held-out users, measured after training (saco train). */
  spendCurve?: SpendCurveRecord;
}

/** C(λ) after training: see src/policy/spend-curve.ts. */
export interface SpendCurveRecord {
  lambdas: number[];
  /** Expected spend of the plan at each λ, and its expected revenue. */
  spend: number[];
  revenue: number[];
  /** The spend of every user getting the arm with the highest expected revenue. */
  referenceSpend: number;
  referenceArm: string;
  users: number;
  /** How the spend was measured. */
  source: string;
  warnings: string[];
}

export interface CodtModel {
  meta: ModelMeta;
  params: Params;
}

type SchemaSide = Pick<Trajectories, 'stateNames' | 'actionEncodings' | 'categorical'>;

export function dataFingerprint(t: SchemaSide): string {
  const canonical = JSON.stringify({ states: t.stateNames, actions: t.actionEncodings.map((e) => ({ column: e.column, values: e.values.map(String) })), categorical: t.categorical });
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * Refuses data whose features or action encoding differ from what the model was trained on
 * (run it before planning or deciding on data read from a file).
 *
 * @throws {DataError} code `MODEL_DATA_MISMATCH`, naming the feature, action column or encoding that differs.
 * @example
 * const model = readOnnx('codt.onnx');
 * const { trajectories } = await readTrajectories('today.parquet');
 * checkDataMatchesModel(model.meta, trajectories);
 */
export function checkDataMatchesModel(meta: ModelMeta, data: SchemaSide & { source?: string }): void {
  const file = data.source ?? 'data';
  if (data.stateNames.length !== meta.config.stateDim) {
    throw new DataError('MODEL_DATA_MISMATCH', `has ${data.stateNames.length} state features but the model expects ${meta.config.stateDim} (${meta.stateNames.join(', ')})`, { file });
  }
  const missing = meta.stateNames.filter((n, j) => data.stateNames[j] !== n);
  if (missing.length) throw new DataError('MODEL_DATA_MISMATCH', `state features differ from the model's: expected ${meta.stateNames.join(', ')}, got ${data.stateNames.join(', ')}`, { file });
  if (data.actionEncodings.length !== meta.actionEncodings.length) {
    throw new DataError('MODEL_DATA_MISMATCH', `has ${data.actionEncodings.length} action dimension(s), the model ${meta.actionEncodings.length}`, { file });
  }
  meta.actionEncodings.forEach((enc, j) => {
    const got = data.actionEncodings[j];
    const same = got.column === enc.column && got.values.length === enc.values.length && got.values.every((v, k) => String(v) === String(enc.values[k]));
    if (!same) {
      throw new DataError('MODEL_DATA_MISMATCH', `action encoding differs from the model's: model ${enc.column}=[${enc.values.join(',')}], data ${got.column}=[${got.values.join(',')}]`, { file, column: got.column });
    }
  });
  if (dataFingerprint(data) !== meta.fingerprint) {
    throw new DataError('MODEL_DATA_MISMATCH', 'categorical encodings differ from the ones the model was trained on', { file });
  }
}
