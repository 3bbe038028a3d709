/**
 * Trains the small SY model that several test files use, once per test run, and hands its
 * path to them via `inject('syModelPath')`. The native trainer makes it (the default on CPU,
 * about 3 s); the same recipe also runs on the tfjs reference trainer (about 30 s on 2 cores)
 * so train.test.ts can compare the two runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { syLogToInteractionLog } from '../src/data/log.js';
import { buildTrajectories, splitByUser } from '../src/data/trajectories.js';
import { selectBackend } from '../src/model/backend.js';
import { writeOnnx } from '../src/model/onnx.js';
import { trainCodt } from '../src/model/train.js';
import { generateSy } from '../src/native/index.js';

/** The data and training recipe of the shared model (tests re-create the same split). */
export const SY_MODEL_DATA = { users: 3000, rounds: 5, seed: 1 } as const;
export const SY_MODEL_TRAINING = { dModel: 32, layers: 2, heads: 2, batchSize: 64, lr: 2e-3, dropout: 0, seed: 3, variant: 'weighted', epochs: 8, patience: 8 } as const;

declare module 'vitest' {
  export interface ProvidedContext {
    syModelPath: string;
    syModelHistory: string;
    syTfjsModelPath: string;
    syTfjsModelHistory: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'saco-model-'));
  await selectBackend('auto');
  const sy = await generateSy(SY_MODEL_DATA);
  const { train } = splitByUser(buildTrajectories(syLogToInteractionLog(sy)), { seed: 1 });
  for (const trainer of ['native', 'tfjs'] as const) {
    const result = await trainCodt(train, { ...SY_MODEL_TRAINING, trainer });
    const file = path.join(dir, `sy-weighted-${trainer}.onnx`);
    writeOnnx(result.model, file);
    const history = JSON.stringify({ history: result.history, samplesPerSecond: result.samplesPerSecond, backend: result.trainer.engine });
    if (trainer === 'native') {
      project.provide('syModelPath', file);
      project.provide('syModelHistory', history);
    } else {
      project.provide('syTfjsModelPath', file);
      project.provide('syTfjsModelHistory', history);
    }
  }
  return () => rmSync(dir, { recursive: true, force: true });
}
