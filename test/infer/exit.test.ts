/**
 * process.exit() while solve({ engine: 'ort' }) runs must exit with the code asked for. It used
 * to abort (exit 134, "terminate called after throwing an instance of 'Napi::Error'") in most
 * runs: Node terminates the pool's workers at exit, and onnxruntime-node aborts when a worker
 * is terminated inside one of its native calls (loading the binding, creating or running a
 * session). Each case runs in a child process (exit.child.ts) whose exit code and output are
 * checked, at several moments of the solve: while the pool starts, while its workers run the
 * model, through a SIGTERM handler that exits; and `pool.destroy()` while the pool runs.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SHARED_MODEL_TIMEOUT, sharedModel } from '../helpers/shared-model.js';

// enough users that the workers spend most of a λ probe inside onnxruntime (before the fix,
// nearly every exit during the search aborted at this size; at 300 users about half)
const USERS = 2000;
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'exit.child.ts');

interface Outcome {
  anchor: string;
  delay: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runChild(modelPath: string, anchor: string, delay: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, modelPath, anchor, String(delay), String(USERS)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 40_000 });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    p.on('error', reject);
    p.on('close', (status, signal) => resolve({ anchor, delay, status, signal, stderr }));
  });
}

let modelPath: string;

beforeAll(async () => {
  modelPath = (await sharedModel('native')).path;
}, SHARED_MODEL_TIMEOUT);

describe('process exit during an ORT solve', () => {
  it('exits with the code asked for, never an abort, whenever it comes', async () => {
    const cases: Array<[string, number]> = [
      ['start', 0], ['start', 400],
      ['search', 0], ['search', 30], ['search', 80],
      ['sigterm', 0], ['sigterm', 60],
      ['destroy', 10],
    ];
    const outcomes: Outcome[] = [];
    // two at a time: the whole file stays well under a minute on a busy two-core machine
    for (let i = 0; i < cases.length; i += 2) outcomes.push(...(await Promise.all(cases.slice(i, i + 2).map(([a, d]) => runChild(modelPath, a, d)))));
    const bad = outcomes.filter((o) => o.status !== 3 || /terminate called|Abort|Segmentation|Napi::Error/.test(o.stderr));
    expect(bad.map((o) => `${o.anchor}+${o.delay}ms: exit ${o.status ?? o.signal}${o.stderr ? `, stderr: ${o.stderr.trim().split('\n').slice(0, 3).join(' | ')}` : ''}`)).toEqual([]);
  }, 120_000);
});
