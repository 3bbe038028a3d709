/**
 * `import 'saco'` must stay light: a fresh process that imports the entry loads none of the
 * heavy packages (tfjs, DuckDB, onnxruntime, Piscina, protobufjs), and reading a model,
 * deciding and solving still never load tfjs (only the tfjs trainer and reference do). The
 * child lists every CommonJS module it loaded (require.cache holds those an ES module
 * imports too, and all of these packages are CommonJS under Node).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const url = (rel: string) => JSON.stringify(pathToFileURL(path.join(root, rel)).href);

const HEAVY = /node_modules\/(@tensorflow\/[^/]+|@duckdb\/[^/]+|onnxruntime-[^/]+|piscina|protobufjs|onnx-proto)\//;

/** Runs `body` in a fresh node (tsx, so the sources run as they are) after `loaded(stage)` helpers are defined; returns the stages' package lists. */
function inChild(body: string): Record<string, string[]> {
  const code = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const stages = {};
    const loaded = (stage) => {
      const found = Object.keys(require.cache).map((f) => ${HEAVY.toString()}.exec(f)?.[1]).filter(Boolean);
      stages[stage] = [...new Set(found)].sort();
    };
    ${body}
    process.stdout.write('\\n@@' + JSON.stringify(stages));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('@@') + 2)) as Record<string, string[]>;
}

describe('import weight', () => {
  it('the entry loads no heavy package; readOnnx, decide and solve load no tfjs', () => {
    const stages = inChild(`
      const saco = await import(${url('src/index.ts')});
      loaded('import');
      const { randomModel } = await import(${url('test/helpers/model.ts')});
      const { mkdtempSync, rmSync } = await import('node:fs');
      const dir = mkdtempSync(require('node:os').tmpdir() + '/saco-import-');
      try {
        saco.writeOnnx(randomModel({ stateDim: 4, actionSizes: [3], context: 3, dModel: 8, layers: 1, heads: 2, dropout: 0, variant: 'weighted' }, 1), dir + '/m.onnx');
        const model = saco.loadNativeModel(saco.readOnnx(dir + '/m.onnx'));
        const d = await saco.decide({ model, lambda: 1, state: [0, 1, 2, 3] });
        if (d.action.length !== 1) throw new Error('decide returned ' + JSON.stringify(d));
        model.unload();
        const plan = await saco.solve({ users: 200, budget: '0.5x', policy: 'random', env: { seed: 1, rounds: 3 } });
        if (!(plan.cost > 0)) throw new Error('solve returned ' + JSON.stringify(plan.cost));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      loaded('used');
    `);
    expect(stages.import).toEqual([]);
    expect(stages.used.filter((p) => p.startsWith('@tensorflow'))).toEqual([]);
  });

  it('the check sees tfjs when it is loaded', () => {
    // guards the guard: if require.cache stopped listing these packages, the test above would pass vacuously
    const stages = inChild(`
      await import(${url('src/model/engine-tfjs.ts')});
      loaded('tfjs');
    `);
    expect(stages.tfjs).toContain('@tensorflow/tfjs-core');
  });
});
