/**
 * `npm run bench`: latency and throughput of each stage available so far. Prints a
 * markdown table and writes bench/results/<date>-<host>.json. `--quick` for a smoke run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeInfo } from '../src/native/index.js';
import { benchData } from './data.js';
import { benchTraining } from './train.js';
import { formatTable, machine } from './harness.js';

const quick = process.argv.includes('--quick');
const info = nativeInfo();
console.log(`machine: ${machine()}`);
console.log(`native core: CUDA ${info.cudaBuilt ? 'built' : 'not built'}, ${info.cudaDevices} GPU(s) visible${info.cudaDevices === 0 ? ' (no GPU here: GPU scenarios are skipped)' : ''}`);
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const results = [];
if (!only || only === 'data') results.push(...(await benchData({ quick })));
if (!only || only === 'train') {
  const training = await benchTraining({ quick });
  results.push(...training);
  for (const t of training) console.log(`training throughput on ${t.backend}: ${t.samplesPerSecond.toFixed(1)} trajectories/s`);
}
console.log(formatTable(results));
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `${new Date().toISOString().slice(0, 10)}-${os.hostname()}.json`);
writeFileSync(file, JSON.stringify({ machine: machine(), native: info, quick, results }, null, 2));
console.log(`wrote ${file}`);
