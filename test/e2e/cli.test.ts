import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';
import { SHARED_MODEL_TIMEOUT, sharedModel } from '../helpers/shared-model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = tempDir();
afterAll(() => tmp.cleanup());

function saco(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('saco CLI', () => {
  it('synth writes a file that data inspect and data trajectories read without a schema', () => {
    const out = tmp.file('sy.parquet');
    const s = saco('synth', '--users', '400', '--rounds', '5', '--seed', '3', '--out', out, '--json');
    expect(s.code).toBe(0);
    const summary = JSON.parse(s.stdout);
    expect(summary).toMatchObject({ rows: 2000, users: 400, rounds: 5, engine: 'native' });

    const i = saco('data', 'inspect', out, '--json');
    expect(i.code).toBe(0);
    const report = JSON.parse(i.stdout);
    expect(report).toMatchObject({ rows: 2000, users: 400, roundsPerUser: { min: 5, max: 5 } });
    expect(report.actions[0].mix.map((m: { value: string }) => Number(m.value))).toEqual([0, 2, 5, 10]);

    const t = saco('data', 'trajectories', out, '--lambda-copies', '10', '--json');
    expect(t.code).toBe(0);
    const tj = JSON.parse(t.stdout);
    expect(tj.train).toBe(320 * 10);
    expect(tj.test).toBe(80);
    expect(tj.all.rounds).toBe(5);
  });

  it('the TS and native generators write the same file contents', () => {
    const a = tmp.file('a.csv');
    const b = tmp.file('b.csv');
    expect(saco('synth', '--users', '50', '--rounds', '3', '--bundle', '--logging', 'biased', '--out', a).code).toBe(0);
    expect(saco('synth', '--users', '50', '--rounds', '3', '--bundle', '--logging', 'biased', '--engine', 'ts', '--out', b).code).toBe(0);
    expect(readFileSync(a, 'utf8')).toBe(readFileSync(b, 'utf8'));
  });

  it('bad data exits 2 with one line naming file, row and column', () => {
    const bad = tmp.file('bad.csv', 'user_id,time,x,action,cost,reward\n1,0,1,0,0,1\n1,1,1,0,-3,1\n');
    const r = saco('data', 'trajectories', bad);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`saco: ${bad}, row 2, column "cost": negative cost (cost must be >= 0) (value: "-3")`);
    const skipped = saco('data', 'trajectories', bad, '--skip-bad-rows');
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toMatch(/1\/2 rows used/);
    expect(skipped.stdout).toMatch(/DATA_NEGATIVE_COST \(cost\): 1/);
  });

  it('train writes an ONNX model that reads back, and refuses a schema the data does not have', () => {
    const data = tmp.file('train.parquet');
    expect(saco('synth', '--users', '300', '--rounds', '3', '--out', data).code).toBe(0);
    const model = tmp.file('m.onnx');
    const r = saco('train', '--data', data, '--out', model, '--epochs', '2', '--d-model', '8', '--layers', '1', '--heads', '1', '--quiet');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/trainer: native-cpu \(\d+ threads?\)/);
    expect(r.stdout).toMatch(/epoch 2: train loss/);
    expect(r.stdout).toMatch(/wrote .*m\.onnx/);
    expect(readFileSync(model).length).toBeGreaterThan(1000);
    // the reference trainer on request; naming a tfjs backend picks it too
    const ref = saco('train', '--data', data, '--out', tmp.file('t.onnx'), '--epochs', '1', '--d-model', '8', '--layers', '1', '--heads', '1', '--quiet', '--backend', 'cpu');
    expect(ref.code).toBe(0);
    expect(ref.stdout).toMatch(/trainer: tfjs-cpu/);
    const clash = saco('train', '--data', data, '--out', tmp.file('u.onnx'), '--trainer', 'gpu');
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toMatch(/--trainer <t>' argument 'gpu' is invalid/);
    const bad = saco('train', '--data', data, '--out', tmp.file('x.onnx'), '--reward-col', 'revenue');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/column "revenue" is not in/);
  });

  it('solve plans a campaign for the users of a file and compares with Random and the Oracle', async () => {
    const modelPath = (await sharedModel('native')).path;
    const users = tmp.file('users.parquet');
    expect(saco('synth', '--users', '300', '--rounds', '5', '--seed', '1', '--out', users).code).toBe(0);
    const r = saco('solve', '--model', modelPath, '--users', users, '--budget', '0.5x', '--compare', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Array<{ policy: string; baRate: number; cost: number; budget: number; rollouts: number }>;
    expect(out.map((o) => o.policy)).toEqual(['codt', 'random', 'oracle']);
    for (const o of out) expect(o.cost).toBeLessThanOrEqual(o.budget);
    const text = saco('solve', '--model', modelPath, '--users', '200', '--budget', '150');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/λ\*.*revenue.*cost.*ROI.*BARate.*rollouts/);
    const bad = saco('solve', '--model', modelPath, '--users', '200', '--budget', '-1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/budget/);
  }, SHARED_MODEL_TIMEOUT);

  it('bad flags are refused with usage help', () => {
    const r = saco('synth', '--users', '-3', '--out', tmp.file('x.csv'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--users.*expected an integer/);
    expect(saco('synth', '--users', '10', '--out', tmp.file('x.xlsx')).stderr).toMatch(/unknown format/);
    const help = saco('--help');
    expect(help.stdout).toMatch(/synth/);
    expect(help.stdout).toMatch(/data/);
    expect(saco('data', 'inspect', '--help').stdout).toMatch(/--user-col/);
  });
});
