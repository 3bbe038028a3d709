/**
 * The test-only addon (build/Release/saco_test.node): hooks the tests need and the library
 * does not ship in its binary — Philox and our exp/log for cross-language known-answer
 * tests, and the finite-difference checks of the native backward passes.
 */
import { loadBinary } from './index.js';

/** One tensor's finite-difference check (native/gradcheck.h). */
export interface GradCheckRow {
  tensor: string;
  maxAbsError: number;
  maxAbsGrad: number;
  checked: number;
}

interface TestBinding {
  philox4x32(counter: Uint32Array, key: Uint32Array): Uint32Array;
  pmath(name: 'exp' | 'log', values: Float64Array): Float64Array;
  gradCheck(what: string, seed: number): GradCheckRow[];
  gradCheckNames: string[];
  gemmBench(rows: number, k: number, n: number, seconds: number): GemmBench;
  bf16Matmul(inp: Float32Array, w: Float32Array, b: Float32Array | null, rows: number, k: number, n: number): Bf16Matmul;
}

/** The engine's bf16 product (AMX where this process has it: nativeBf16Hardware) and its plain-loop reference, of the same rounded operands. */
export interface Bf16Matmul {
  kernel: Float32Array;
  reference: Float32Array;
}

/** One thread's GFLOP/s on one GEMM shape: the engine's row kernel, Eigen's GEMM and the engine's bf16 product, measured side by side. */
export interface GemmBench {
  ours: number;
  eigen: number;
  bf16: number;
  maxAbsDiff: number;
}

let testBinding: TestBinding | undefined;
const testing = (): TestBinding => (testBinding ??= loadBinary<TestBinding>('saco_test.node'));

/** Philox4x32-10 in C++ (for known-answer tests). */
export function philox4x32Native(counter: readonly number[], key: readonly number[]): number[] {
  return Array.from(testing().philox4x32(Uint32Array.from(counter), Uint32Array.from(key)));
}

/** saco::pmath::exp / log applied to each value (for cross-language bit tests). */
export function pmathNative(name: 'exp' | 'log', values: Float64Array): Float64Array {
  return testing().pmath(name, values);
}

/** Finite-difference checks of the backward passes; `nativeGradCheckNames` lists what can be checked. */
export function nativeGradCheck(what: string, seed: number): GradCheckRow[] {
  return testing().gradCheck(what, seed);
}

export function nativeGradCheckNames(): string[] {
  return [...testing().gradCheckNames];
}

/** GFLOP/s of out[rows, n] = inp[rows, k] @ w[k, n] + b on one thread: the engine's kernel (native/layers.h) against Eigen's GEMM, alternated, best of five. */
export function nativeGemmBench(rows: number, k: number, n: number, seconds = 0.5): GemmBench {
  return testing().gemmBench(rows, k, n, seconds);
}

/** out[rows, n] = bf16(inp) @ bf16(w) + b through the engine's bf16 product and its reference (native/bf16.h). */
export function nativeBf16Matmul(inp: Float32Array, w: Float32Array, b: Float32Array | null, rows: number, k: number, n: number): Bf16Matmul {
  return testing().bf16Matmul(inp, w, b, rows, k, n);
}
