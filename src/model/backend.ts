/**
 * tfjs backend choice: @tensorflow/tfjs-node-gpu when it is installed and a GPU is visible,
 * else @tensorflow/tfjs-node, else the wasm backend, else plain JS (cpu). The node
 * packages are optional dependencies whose installer downloads libtensorflow; where that
 * is impossible they are absent and we fall through. tfjs itself is imported on the first
 * selection, so code that only lists the choices (the CLI) does not pay for it.
 */
import { existsSync } from 'node:fs';
import { ArgumentError } from '../errors.js';

type Tfjs = typeof import('@tensorflow/tfjs');

let tfjsModule: Promise<Tfjs> | undefined;

/** tfjs and its wasm backend, loaded on first use: they cost most of a second to import. */
function tfjs(): Promise<Tfjs> {
  tfjsModule ??= (async () => {
    const tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-wasm'); // registers the 'wasm' backend
    return tf;
  })();
  return tfjsModule;
}

export type BackendChoice = 'auto' | 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

export interface BackendInfo {
  /** What runs: tfjs-node-gpu, tfjs-node, wasm or cpu. */
  name: Exclude<BackendChoice, 'auto'>;
  /** Why the ones before it did not. */
  skipped: string[];
}

function gpuVisible(): boolean {
  return existsSync('/proc/driver/nvidia/gpus') || existsSync('/dev/nvidia0');
}

async function tryNode(tf: Tfjs, pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<string | null> {
  try {
    await import(pkg);
    if (!(await tf.setBackend('tensorflow'))) return `${pkg} loaded but its backend did not start`;
    return null;
  } catch (e) {
    return `${pkg} not available (${(e as Error).message.split('\n')[0].slice(0, 120)})`;
  }
}

let current: BackendInfo | undefined;

/** Whether @tensorflow/tfjs-node-gpu is installed and a GPU is visible (it is then selected). */
export async function gpuTfjsAvailable(): Promise<boolean> {
  if (current?.name === 'tfjs-node-gpu') return true;
  if (!gpuVisible()) return false;
  try {
    await selectBackend('tfjs-node-gpu');
    return true;
  } catch {
    return false;
  }
}

/**
 * Selects and initialises a tfjs backend (loading tfjs on the first call); returns what runs
 * and why the ones before it in the 'auto' order were skipped. Only the tfjs trainer and the
 * tfjs reference model need it.
 *
 * @throws {ArgumentError} code `ARGUMENT_INVALID` for an unknown choice, `BACKEND_UNAVAILABLE` when none could start.
 * @example
 * const { name, skipped } = await selectBackend('auto'); // e.g. 'wasm', ['tfjs-node-gpu: no GPU visible', …]
 */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!BACKEND_CHOICES.includes(choice)) throw new ArgumentError('backend', `must be one of ${BACKEND_CHOICES.join(', ')}`);
  if (current && (choice === 'auto' || choice === current.name)) return current;
  const tf = await tfjs();
  const skipped: string[] = [];
  const order: Array<Exclude<BackendChoice, 'auto'>> = choice === 'auto' ? ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] : [choice];
  for (const name of order) {
    if (name === 'tfjs-node-gpu' && choice === 'auto' && !gpuVisible()) {
      skipped.push('tfjs-node-gpu: no GPU visible');
      continue;
    }
    if (name === 'tfjs-node-gpu' || name === 'tfjs-node') {
      const why = await tryNode(tf, name === 'tfjs-node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
      if (why === null) return (current = { name, skipped });
      skipped.push(why);
      continue;
    }
    if (await tf.setBackend(name)) {
      await tf.ready();
      return (current = { name, skipped });
    }
    skipped.push(`${name}: backend did not start`);
  }
  throw new ArgumentError('backend', `no tfjs backend could start: ${skipped.join('; ')}`, 'BACKEND_UNAVAILABLE');
}
