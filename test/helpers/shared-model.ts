/**
 * The small trained SY models that several test files share, built on first use instead of
 * before every run. A model is cached as a file under the OS temp folder, keyed by a hash of
 * its recipe and of the code that trains it (src/**, the native binary, the lockfile), so a
 * run after a code change retrains and a run without one starts at once. A lock file keeps
 * parallel vitest workers (one process per test file) from training the same model twice.
 * Delete $SACO_TEST_MODEL_CACHE (default <tmp>/saco-test-models) to force a retrain.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The data and training recipe of the shared models (tests re-create the same split). */
export const SY_MODEL_DATA = { users: 3000, rounds: 5, seed: 1 } as const;
export const SY_MODEL_TRAINING = { dModel: 32, layers: 2, heads: 2, batchSize: 64, lr: 2e-3, dropout: 0, seed: 3, variant: 'weighted', epochs: 8, patience: 8 } as const;

/** Timeout for a hook or test that may have to train (tfjs: ~30 s alone, more on a busy machine). */
export const SHARED_MODEL_TIMEOUT = 300_000;

export type SharedTrainer = 'native' | 'tfjs';

export interface SharedModel {
  /** The .onnx file (do not modify it: other runs share it). */
  path: string;
  /** How the training went: per-epoch validation loss, speed, and the engine that ran. */
  run: { history: Array<{ valLoss: number }>; samplesPerSecond: number; backend: string };
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cacheDir = process.env.SACO_TEST_MODEL_CACHE ?? path.join(tmpdir(), 'saco-test-models');
const STALE_ENTRY_MS = 24 * 3600 * 1000;
const LOCK_WAIT_MS = 15 * 60 * 1000;

function hashTree(hash: ReturnType<typeof createHash>, dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) hashTree(hash, p);
    else if (entry.isFile()) hash.update(path.relative(root, p)).update('\0').update(readFileSync(p)).update('\0');
  }
}

/** Changes whenever the recipe or anything that could change the trained bits changes. */
function cacheKey(trainer: SharedTrainer): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ trainer, SY_MODEL_DATA, SY_MODEL_TRAINING }));
  hashTree(hash, path.join(root, 'src'));
  const binary = process.env.SACO_NATIVE_PATH ?? path.join(root, 'build', 'Release', 'saco.node');
  for (const file of [binary, path.join(root, 'package-lock.json'), fileURLToPath(import.meta.url)]) {
    hash.update(existsSync(file) ? readFileSync(file) : 'absent').update('\0');
  }
  return `${trainer}-${hash.digest('hex').slice(0, 20)}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the lock when the process that took it is gone (killed mid-training). */
function clearStaleLock(lock: string): void {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    // an empty file is a lock being written right now, unless it has been empty for a while
    const stale = Number.isInteger(pid) && pid > 0 ? !alive(pid) : Date.now() - statSync(lock).mtimeMs > 10_000;
    if (stale) rmSync(lock, { force: true });
  } catch {
    // the lock went away meanwhile
  }
}

function writeAtomically(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

async function train(trainer: SharedTrainer, onnxFile: string, runFile: string): Promise<void> {
  // imported here so a file that finds the model cached never loads the trainers (or tfjs)
  const [{ syLogToInteractionLog }, { buildTrajectories, splitByUser }, { encodeOnnx }, { trainCodt }, { generateSy }] = await Promise.all([
    import('../../src/data/log.js'),
    import('../../src/data/trajectories.js'),
    import('../../src/model/onnx.js'),
    import('../../src/native/train-engine.js'),
    import('../../src/native/index.js'),
  ]);
  const sy = await generateSy(SY_MODEL_DATA);
  const { train: trainSet } = splitByUser(buildTrajectories(syLogToInteractionLog(sy)), { seed: 1 });
  const result = await trainCodt(trainSet, { ...SY_MODEL_TRAINING, trainer });
  const run: SharedModel['run'] = { history: result.history, samplesPerSecond: result.samplesPerSecond, backend: result.trainer.engine };
  writeAtomically(onnxFile, encodeOnnx(result.model));
  writeAtomically(runFile, JSON.stringify(run)); // written last: its presence means "complete"
}

function pruneOldEntries(keep: string): void {
  for (const name of readdirSync(cacheDir)) {
    const p = path.join(cacheDir, name);
    try {
      if (!name.startsWith(keep) && Date.now() - statSync(p).mtimeMs > STALE_ENTRY_MS) rmSync(p, { force: true });
    } catch {
      // another run pruned it
    }
  }
}

async function build(trainer: SharedTrainer): Promise<SharedModel> {
  mkdirSync(cacheDir, { recursive: true });
  const key = cacheKey(trainer);
  const onnxFile = path.join(cacheDir, `${key}.onnx`);
  const runFile = path.join(cacheDir, `${key}.json`);
  const lock = path.join(cacheDir, `${key}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (!existsSync(runFile)) {
    let fd: number | undefined;
    try {
      fd = openSync(lock, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (fd === undefined) {
      // another worker is training this model: wait for its file
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${lock} (delete it if no test run is training)`);
      clearStaleLock(lock);
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    try {
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      if (!existsSync(runFile)) {
        await train(trainer, onnxFile, runFile);
        pruneOldEntries(key);
      }
    } finally {
      rmSync(lock, { force: true });
    }
  }
  return { path: onnxFile, run: JSON.parse(readFileSync(runFile, 'utf8')) as SharedModel['run'] };
}

const built = new Map<SharedTrainer, Promise<SharedModel>>();

/**
 * The shared SY model trained by `trainer` on SY_MODEL_DATA's training split with
 * SY_MODEL_TRAINING: from the cache, or trained now (native ~3 s, tfjs ~30 s). Call it from
 * a hook or test with SHARED_MODEL_TIMEOUT.
 */
export function sharedModel(trainer: SharedTrainer): Promise<SharedModel> {
  let model = built.get(trainer);
  if (!model) {
    model = build(trainer);
    built.set(trainer, model);
  }
  return model;
}
