/**
 * Every asynchronous native call copies its inputs before it queues: a caller that
 * transfers or drops its buffers while the promise is pending gets the same result and no
 * crash. Runs in a child process with --expose-gc so GC can be forced mid-call.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('native input buffers', () => {
  it('detached and collected while every async call is pending: same results, no crash', () => {
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'buffer-lifetime.child.ts')], { encoding: 'utf8', timeout: 120_000 });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const { checks } = JSON.parse(child.stdout) as { checks: string[] };
    expect(checks).toEqual(['codtForward full', 'codtForward incremental', 'rollout', 'searchLambda', 'synthSY', 'trainer step', 'trainer evaluate', 'trainer gradients']);
  });
});
