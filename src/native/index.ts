/**
 * The one place that loads the native binary (build/Release/saco.node) and the typed
 * wrappers around it. Arguments are validated here first (typed errors) and again in C++.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SacoError } from '../errors.js';
import { allocateSyLog, resolveSyConfig, type SyLog, type SyOptions, type SyWeights } from '../data/synth.js';

/** The raw binding, as exported by native/addon.cc. */
interface NativeBinding {
  synthSY(config: object, out: { states: Float64Array; actions: Int32Array; cost: Float64Array; reward: Float64Array; purchaseProb: Float64Array }): Promise<void>;
  syWeights(config: object): SyWeights;
  philox4x32(counter: Uint32Array, key: Uint32Array): Uint32Array;
  pmath(name: 'exp' | 'log', values: Float64Array): Float64Array;
  cudaBuilt: boolean;
  cudaDeviceCount(): number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// src/native/index.ts and dist/native/index.js both sit two levels below the package root.
const packageRoot = path.resolve(here, '..', '..');

let binding: NativeBinding | undefined;

/** Where the binary is looked for: $SACO_NATIVE_PATH, else build/Release/saco.node. */
export function nativeBinaryPath(): string {
  return process.env.SACO_NATIVE_PATH ?? path.join(packageRoot, 'build', 'Release', 'saco.node');
}

/** Loads the binary once; throws a SacoError that says how to build it when it is missing. */
export function native(): NativeBinding {
  if (binding) return binding;
  const file = nativeBinaryPath();
  if (!existsSync(file)) {
    throw new SacoError('NATIVE_MISSING', `native core not built: ${file} does not exist. Run \`npm run build:native\` (needs cmake, g++, libeigen3-dev, libnlopt-dev).`);
  }
  const require = createRequire(import.meta.url);
  binding = require(file) as NativeBinding;
  return binding;
}

/** What the native build can use: whether CUDA was compiled in and how many GPUs are visible. */
export function nativeInfo(): { cudaBuilt: boolean; cudaDevices: number } {
  const b = native();
  return { cudaBuilt: b.cudaBuilt, cudaDevices: b.cudaDeviceCount() };
}

/** Generates the SY log with the native core (same bits as `generateSyReference`). */
export async function generateSy(options: SyOptions = {}): Promise<SyLog> {
  const config = resolveSyConfig(options);
  const log = allocateSyLog(config);
  await native().synthSY(config, log);
  return log;
}

/** The SY weight vectors as drawn by the native core. */
export function syWeightsNative(options: SyOptions = {}): SyWeights {
  return native().syWeights(resolveSyConfig(options));
}

/** Philox4x32-10 in C++ (for known-answer tests). */
export function philox4x32Native(counter: readonly number[], key: readonly number[]): number[] {
  return Array.from(native().philox4x32(Uint32Array.from(counter), Uint32Array.from(key)));
}

/** saco::pmath::exp / log applied to each value (for cross-language bit tests). */
export function pmathNative(name: 'exp' | 'log', values: Float64Array): Float64Array {
  return native().pmath(name, values);
}
