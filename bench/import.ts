/**
 * Import time of the package: a fresh `node` process that imports the built entry
 * (dist/index.js, what `import 'saco'` loads), against a fresh process that imports nothing
 * (Node's own start-up). The two run alternately so that load on the machine hits both alike;
 * the difference of their medians is what saco adds. Needs `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Timing } from './harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Wall time of one fresh process running `code` as an ES module, in ms. */
function runNode(code: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`import bench: node exited with ${r.status}: ${r.stderr.slice(0, 400)}`);
  return ms;
}

function summarise(name: string, samples: number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { name, runs: s.length, medianMs: at(0.5), p95Ms: at(0.95), minMs: s[0] };
}

/** `entry`: the built file to import, relative to the package root (default dist/index.js, checked against src/index.ts for staleness). */
export async function benchImport(options: { quick?: boolean; entry?: string } = {}): Promise<Timing[]> {
  const entry = path.join(root, options.entry ?? 'dist/index.js');
  if (!existsSync(entry)) throw new Error(`import bench: ${entry} does not exist; run \`npm run build\` first`);
  const source = path.join(root, 'src', 'index.ts');
  if (!options.entry && existsSync(source) && statSync(source).mtimeMs > statSync(entry).mtimeMs) console.log(`import bench: ${path.relative(root, entry)} is older than src/index.ts; run \`npm run build\` for current numbers`);
  const importCode = `await import(${JSON.stringify(pathToFileURL(entry).href)})`;
  const runs = options.quick ? 5 : 21;
  runNode(importCode); // warm the file system cache, as a service's second start would be
  const withImport: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    withImport.push(runNode(importCode));
    bare.push(runNode(''));
  }
  const imported = summarise(`import '${path.relative(root, entry)}', fresh node process`, withImport);
  const startup = summarise('node start-up alone (imports nothing)', bare);
  const paired = summarise(`import '${path.relative(root, entry)}' minus node start-up (paired runs)`, withImport.map((ms, i) => ms - bare[i]));
  return [imported, startup, paired];
}
