/**
 * A worker_thread that ends while a native call it started is running — terminated from the
 * main thread, or calling process.exit() itself — must not take the process down (it used to
 * abort with "terminate called after throwing an instance of 'Napi::Error'"). Each case runs
 * in a child process whose exit code and output are checked.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { nativeBinaryPath } from '../../src/native/index.js';

const workerFile = new URL('./teardown-worker.mjs', import.meta.url).href;

function runCase(call: string, how: 'terminate' | 'exit'): { status: number | null; stdout: string; stderr: string } {
  const script = `
    import { Worker } from 'node:worker_threads';
    const w = new Worker(new URL(${JSON.stringify(workerFile)}), { workerData: { binary: ${JSON.stringify(nativeBinaryPath())}, call: ${JSON.stringify(call)}, exit: ${how === 'exit'} }, execArgv: [] });
    await new Promise((resolve) => w.once('message', resolve));
    if (${how === 'terminate'}) { await new Promise((r) => setTimeout(r, 150)); await w.terminate(); }
    else await new Promise((resolve) => w.once('exit', resolve));
    await new Promise((r) => setTimeout(r, 500)); // let the abandoned work complete
    console.log('main alive');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('a worker_thread ending during a native call', () => {
  for (const call of ['synthSY', 'rollout', 'searchLambda']) {
    for (const how of ['terminate', 'exit'] as const) {
      it(`${call}, worker ${how === 'exit' ? 'calls process.exit()' : 'terminated'}: the process lives on`, () => {
        const r = runCase(call, how);
        expect(r.stderr).not.toMatch(/terminate called|Abort|Segmentation/);
        expect(r.status).toBe(0);
        expect(r.stdout.trim()).toBe('main alive');
      });
    }
  }
});
