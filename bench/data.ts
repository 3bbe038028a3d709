/**
 * Data-stage benchmarks: SY generation (native vs the TS reference, side by side) and
 * DuckDB ingestion of a 1,000,000-row CSV into trajectories.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readTrajectories } from '../src/data/ingest.js';
import { syLogToInteractionLog } from '../src/data/log.js';
import { generateSyReference } from '../src/data/synth.js';
import { writeLog } from '../src/data/write.js';
import { generateSy } from '../src/native/index.js';
import { time, type Timing } from './harness.js';

export async function benchData(options: { quick?: boolean } = {}): Promise<Timing[]> {
  const results: Timing[] = [];
  const sy = { users: 10000, rounds: 10, seed: 1 };
  results.push(await time('SY 10,000 x 10, native (all cores)', options.quick ? 5 : 30, () => generateSy(sy)));
  results.push(await time('SY 10,000 x 10, native (1 thread)', options.quick ? 5 : 30, () => generateSy({ ...sy, threads: 1 })));
  results.push(await time('SY 10,000 x 10, TypeScript reference', options.quick ? 2 : 5, () => generateSyReference(sy)));

  const dir = mkdtempSync(path.join(tmpdir(), 'saco-bench-'));
  try {
    const rows = options.quick ? 100000 : 1000000;
    const file = path.join(dir, 'log.csv');
    await writeLog(syLogToInteractionLog(await generateSy({ users: rows / 10, rounds: 10, seed: 2 })), file);
    results.push(await time(`ingest ${rows.toLocaleString('en-US')}-row CSV -> trajectories (DuckDB)`, options.quick ? 1 : 3, () => readTrajectories(file), 0));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
