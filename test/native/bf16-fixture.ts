/** The fixed inputs bf16.test.ts and its SACO_AMX=0 child both compute. */
import type { CodtModel } from '../../src/model/artifact.js';
import type { CodtConfig } from '../../src/model/config.js';
import type { NativeForwardInputs } from '../../src/native/index.js';
import { forwardInputs, randomModel } from '../helpers/model.js';

export const BF16_CONFIG: CodtConfig = { stateDim: 7, actionSizes: [4, 2], context: 6, dModel: 64, layers: 2, heads: 2, dropout: 0, variant: 'expected' };

export function bf16Fixture(): { inp: Float32Array; w: Float32Array; b: Float32Array; rows: number; k: number; n: number; model: CodtModel; batch: NativeForwardInputs } {
  const rows = 37;
  const k = 64;
  const n = 256;
  const inp = Float32Array.from({ length: rows * k }, (_, i) => 2 * Math.sin(0.37 * i));
  const w = Float32Array.from({ length: k * n }, (_, i) => 0.3 * Math.cos(0.11 * i));
  const b = Float32Array.from({ length: n }, (_, i) => 0.01 * i);
  return { inp, w, b, rows, k, n, model: randomModel(BF16_CONFIG, 3), batch: forwardInputs(BF16_CONFIG, 37, 6, 21) };
}
