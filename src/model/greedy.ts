/**
 * Decisions from CODT logits laid out [rows, sum K]: one block of K_j logits per action
 * dimension. The greedy rule is the native engine's (the first index wins a tie), so a plan
 * made from onnxruntime logits equals the native one.
 */

/** Greedy action of each dimension for the row at `offset`, written to out[outOffset..+dims). */
export function greedyRow(logits: ArrayLike<number>, offset: number, actionSizes: readonly number[], out: Int32Array, outOffset = 0): void {
  let off = offset;
  for (let j = 0; j < actionSizes.length; j++) {
    const k = actionSizes[j];
    let best = 0;
    for (let a = 1; a < k; a++) if (logits[off + a] > logits[off + best]) best = a;
    out[outOffset + j] = best;
    off += k;
  }
}

/** Greedy actions of every row of logits [N, sum K]; [N, dims]. */
export function greedyActions(logits: Float32Array, actionSizes: readonly number[]): Int32Array {
  const K = actionSizes.reduce((a, b) => a + b, 0);
  const dims = actionSizes.length;
  const N = logits.length / K;
  const out = new Int32Array(N * dims);
  for (let i = 0; i < N; i++) greedyRow(logits, i * K, actionSizes, out, i * dims);
  return out;
}

/** Softmax of each dimension's logits for the row at `offset` (in doubles, max-shifted). */
export function softmaxPerDimension(logits: ArrayLike<number>, offset: number, actionSizes: readonly number[]): number[][] {
  const probabilities: number[][] = [];
  let off = offset;
  for (const k of actionSizes) {
    let max = -Infinity;
    for (let a = 0; a < k; a++) max = Math.max(max, logits[off + a]);
    const p = new Array<number>(k);
    let z = 0;
    for (let a = 0; a < k; a++) z += p[a] = Math.exp(logits[off + a] - max);
    for (let a = 0; a < k; a++) p[a] /= z;
    probabilities.push(p);
    off += k;
  }
  return probabilities;
}
