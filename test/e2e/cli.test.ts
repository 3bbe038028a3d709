import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readOnnx } from '../../src/model/onnx.js';
import { tempDir } from '../helpers/fixtures.js';
import { SHARED_MODEL_TIMEOUT, sharedModel } from '../helpers/shared-model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = tempDir();
afterAll(() => tmp.cleanup());

const cliArgs = ['--import', 'tsx', path.join(root, 'src', 'cli.ts')];

function saco(...args: string[]): { code: number; stdout: string; stderr: string } {
  return sacoEnv({}, ...args);
}

function sacoEnv(env: Record<string, string>, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 2, nothing on stdout, exactly one line `saco: ...` on stderr, no stack trace. */
function expectUserError(r: { code: number; stdout: string; stderr: string }, message: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^saco: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:/);
}

describe('saco CLI', () => {
  it('synth writes a file that data inspect and data trajectories read without a schema', () => {
    const out = tmp.file('sy.parquet');
    const s = saco('synth', '--users', '400', '--rounds', '5', '--seed', '3', '--out', out, '--json');
    expect(s.code).toBe(0);
    const summary = JSON.parse(s.stdout);
    expect(summary).toMatchObject({ rows: 2000, users: 400, rounds: 5, engine: 'native' });

    const i = saco('data', 'inspect', '--data', out, '--json');
    expect(i.code).toBe(0);
    const report = JSON.parse(i.stdout);
    // the older positional form is an alias of --data
    expect(JSON.parse(saco('data', 'inspect', out, '--json').stdout)).toEqual(report);
    expect(report).toMatchObject({ rows: 2000, users: 400, roundsPerUser: { min: 5, max: 5 } });
    expect(report.actions[0].mix.map((m: { value: string }) => Number(m.value))).toEqual([0, 2, 5, 10]);

    const t = saco('data', 'trajectories', '--data', out, '--lambda-copies', '10', '--json');
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
    const r = saco('data', 'trajectories', '--data', bad);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`saco: ${bad}, row 2, column "cost": negative cost (cost must be >= 0) (value: "-3")`);
    const skipped = saco('data', 'trajectories', '--data', bad, '--skip-bad-rows');
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
    expect(readOnnx(model).meta.training.lambdaMargin).toBe(0.05); // the default recipe's λ draw reaches below 0
    const plain = tmp.file('m0.onnx');
    expect(saco('train', '--data', data, '--out', plain, '--epochs', '1', '--d-model', '8', '--layers', '1', '--heads', '1', '--quiet', '--lambda-margin', '0').code).toBe(0);
    expect(readOnnx(plain).meta.training.lambdaMargin).toBeUndefined();
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

  it('an RCT without cost or revenue columns: the error says how to give them, and the flags give them', () => {
    // 6 users per arm; treated users buy on rows 1, 2 and 5 of their 6, control users on row 3
    const rows = Array.from({ length: 12 }, (_, i) => `${i},${i % 7},${i < 6 ? 'Yes' : 'No'},${(i < 6 ? [1, 2, 5] : [9]).includes(i) ? 1 : 0}`);
    const file = tmp.file('rct.csv', ['ID,V1,Promotion,purchase', ...rows].join('\n') + '\n');
    const base = ['data', 'inspect', '--data', file, '--user-col', 'ID', '--time-col', 'none', '--action-cols', 'Promotion', '--state-cols', 'V1'];
    expectUserError(saco(...base, '--reward-col', 'purchase'), /column "cost" is not in .*--cost-per-action No=0,Yes=0\.15/);
    expectUserError(saco(...base, '--cost-per-action', 'No=0,Yes=0.15'), /column "reward" is not in .*--reward-sql/);
    expectUserError(saco(...base, '--cost-per-action', 'No=0,Yes=0.15', '--cost-sql', '0.15', '--reward-col', 'purchase'), /--cost-sql: conflicts with --cost-per-action/);
    expectUserError(saco(...base, '--cost-per-action', 'No=0,Yes=cheap'), /--cost-per-action.*"Yes=cheap"/);
    const r = saco(...base, '--cost-per-action', 'No=0,Yes=0.15', '--reward-sql', '10 * purchase', '--json');
    expect(r.code, r.stderr).toBe(0);
    const mix = (JSON.parse(r.stdout) as { actions: Array<{ mix: Array<{ value: string; rows: number; meanReward: number; meanCost: number }> }> }).actions[0].mix;
    expect(mix.map((m) => [m.value, m.rows, m.meanReward, m.meanCost])).toEqual([['No', 6, 10 / 6, 0], ['Yes', 6, 30 / 6, 0.15]]);
    expectUserError(saco('eval', '--data', 'sy', '--action-cols', 'Promotion', '--out', tmp.file('eval-x')), /"sy" is an SY preset, which needs no schema/);
    // a float action column ("1.0") is priced by the key "1", as ingestion prices it
    const floats = tmp.file('rct-float.csv', 'ID,V1,treat,purchase\n1,2,1.0,1\n2,3,0.0,0\n3,1,1.0,0\n');
    const f = saco('data', 'inspect', '--data', floats, '--user-col', 'ID', '--time-col', 'none', '--action-cols', 'treat', '--cost-per-action', '0=0,1=0.15', '--reward-col', 'purchase', '--json');
    expect(f.code, f.stderr).toBe(0);
    expect((JSON.parse(f.stdout) as { actions: Array<{ mix: Array<{ meanCost: number }> }> }).actions[0].mix.map((m) => m.meanCost)).toEqual([0, 0.15]);
  });

  it('a log in several files (--glob): train, its held-out users and fit-sim read them as one log', () => {
    const whole = tmp.file('whole.csv');
    expect(saco('synth', '--users', '200', '--rounds', '3', '--seed', '6', '--out', whole).code).toBe(0);
    // two exports of the same log, users 0-99 and 100-199
    const [header, ...rows] = readFileSync(whole, 'utf8').trim().split('\n');
    const dir = path.join(tmp.dir, 'parts');
    mkdirSync(dir);
    for (const [name, keep] of [['part-a.csv', (u: number) => u < 100], ['part-b.csv', (u: number) => u >= 100]] as const) {
      writeFileSync(path.join(dir, name), [header, ...rows.filter((r) => keep(Number(r.split(',')[0])))].join('\n') + '\n');
    }
    const pattern = path.join(dir, 'part-*.csv');
    const held = tmp.file('held-parts.csv');
    const args = ['--out', tmp.file('parts.onnx'), '--epochs', '1', '--d-model', '8', '--layers', '1', '--heads', '1', '--no-spend-curve', '--split-out', held, '--json'];
    const r = saco('train', '--data', pattern, '--glob', ...args);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { trainUsers: number; testUsers: number; splitOut: { users: number; rows: number } };
    expect([doc.trainUsers + doc.testUsers, doc.splitOut]).toEqual([200, { file: held, users: 40, rows: 120 }]);
    // the held-out users' rows come from both files
    const heldUsers = readFileSync(held, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[0]));
    expect(heldUsers.some((u) => u < 100) && heldUsers.some((u) => u >= 100)).toBe(true);
    const sim = saco('fit-sim', '--data', pattern, '--glob', '--out', tmp.file('parts.sim'), '--json');
    expect(sim.code, sim.stderr).toBe(0);
    const simDoc = JSON.parse(sim.stdout) as { users: number; read: unknown; control: string[] };
    expect([simDoc.users, simDoc.read]).toEqual([200, { skipped: {}, combinedRows: 0, filledRounds: 0, warnings: [] }]);
    // the default schema names no control: it was read off the log, and the run says so
    expect(simDoc.control).toEqual(['action=0 (zero-cost)']);
    // without --glob the pattern is one literal path, and the error says so
    expectUserError(saco('train', '--data', pattern, ...args), /file not found.*--glob/);
  });

  it('solve plans a campaign for the users of a file and compares with Random and the Oracle', async () => {
    const modelPath = (await sharedModel('native')).path;
    const users = tmp.file('users.parquet');
    expect(saco('synth', '--users', '300', '--rounds', '5', '--seed', '1', '--out', users).code).toBe(0);
    const r = saco('solve', '--model', modelPath, '--data', users, '--budget', '0.5x', '--compare', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Array<{ policy: string; lambda: number; baRate: number; cost: number; budget: number; rollouts: number }>;
    expect(out.map((o) => o.policy)).toEqual(['codt', 'random', 'oracle']);
    for (const o of out) expect(o.cost).toBeLessThanOrEqual(o.budget);
    const text = saco('solve', '--model', modelPath, '--users', '200', '--budget', '150');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/λ\*.*revenue.*cost.*ROI.*BARate.*rollouts/);
    const bad = saco('solve', '--model', modelPath, '--users', '200', '--budget', '-1');
    expectUserError(bad, /--budget/);
    // the older form: a file given to --users is read like --data
    const older = saco('solve', '--model', modelPath, '--users', users, '--budget', '0.5x', '--json');
    expect(older.code).toBe(0);
    expect(JSON.parse(older.stdout)[0].lambda).toBe(out[0].lambda);
    // bf16 products: the same campaign to bf16's rounding, within the budget; native only
    const bf16 = saco('solve', '--model', modelPath, '--data', users, '--budget', '0.5x', '--precision', 'bf16', '--json');
    expect(bf16.code, bf16.stderr).toBe(0);
    const [b] = JSON.parse(bf16.stdout) as Array<{ lambda: number; revenue: number; cost: number; budget: number }>;
    expect(b.cost).toBeLessThanOrEqual(b.budget);
    expect(Math.abs(b.lambda / out[0].lambda - 1)).toBeLessThan(0.05);
    expectUserError(saco('solve', '--model', modelPath, '--data', users, '--budget', '0.5x', '--precision', 'bf16', '--engine', 'ort'), /--precision bf16.*--engine ort/);
    expectUserError(saco('solve', '--model', modelPath, '--data', users, '--budget', '0.5x', '--precision', 'fp16'), /--precision.*fp32, bf16/);
  }, SHARED_MODEL_TIMEOUT);

  it('ROI of a campaign that spends nothing prints "–" in the table and null in JSON', async () => {
    const modelPath = (await sharedModel('native')).path;
    // a budget below every coupon's cost: the environment withholds all of them
    const text = saco('solve', '--model', modelPath, '--users', '100', '--budget', '1e-9', '--policy', 'random');
    expect(text.code, text.stderr).toBe(0);
    const row = text.stdout.split('\n').find((l) => l.startsWith('random'));
    expect(row?.split(/\s{2,}/)[5]).toBe('–');
    const json = saco('solve', '--model', modelPath, '--users', '100', '--budget', '1e-9', '--policy', 'random', '--json');
    const [r] = JSON.parse(json.stdout);
    expect(r.cost).toBe(0);
    expect(r.roi).toBeNull();
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
    expect(saco('train', '--data', tmp.file('x.csv'), '--out', tmp.file('x.onnx'), '--lambda-margin', '1').stderr).toMatch(/--lambda-margin.*expected a number in \[0, 0\.99\]/);
  });
  it('user errors exit 2 with one line and no stack: a missing file, a bad flag value, an unknown command', () => {
    const missing = tmp.file('nope.csv');
    expectUserError(saco('data', 'inspect', '--data', missing), /nope\.csv: file not found/);
    expectUserError(saco('data', 'trajectories', missing), /nope\.csv: file not found/);
    expectUserError(saco('train', '--data', missing, '--out', tmp.file('n.onnx')), /nope\.csv: file not found/);
    // hexadecimal and other non-decimal numbers are refused, not read as 16
    expectUserError(saco('synth', '--users', '0x10', '--out', tmp.file('h.csv')), /--users.*'0x10' is invalid/);
    expectUserError(saco('solve', '--model', 'm.onnx', '--users', '10', '--budget', '0x10'), /--budget.*'0x10' is invalid/);
    expectUserError(saco('solve', '--model', 'm.onnx', '--users', '10', '--budget', '0x10x'), /--budget.*is invalid/);
    expectUserError(saco('sovle'), /unknown command 'sovle'\. Did you mean 'solve'\?/);
    expectUserError(saco('data', 'inspct'), /unknown command 'inspct'\. Did you mean 'inspect'\?/);
    expectUserError(saco('synth', '--usres', '10', '--out', tmp.file('u.csv')), /unknown option '--usres'\. Did you mean '--users'\?/);
    expectUserError(saco('data', 'inspect'), /required option '--data <file>' not specified/);
    expectUserError(saco('solve', '--model', 'm.onnx', '--budget', '1'), /'--data <file>' or '--users <n>'/);
    expectUserError(saco('solve', '--model', tmp.file('absent.onnx'), '--users', '10', '--budget', '1'), /absent\.onnx/);
    // outputs are checked before any work
    expectUserError(saco('synth', '--users', '10', '--out', '/nonexistent-dir/z.csv'), /--out.*does not exist/);
    const data = tmp.file('in.csv', 'user_id,time,x,action,cost,reward\n1,0,1,0,0,1\n');
    expectUserError(saco('train', '--data', data, '--out', data), /--out.*\*\.onnx/);
    expectUserError(saco('train', '--data', data, '--out', tmp.file('o.onnx'), '--checkpoint', data), /--checkpoint/);
  });

  it('--help marks required options and shows examples on every command', () => {
    for (const cmd of [['synth'], ['data', 'inspect'], ['data', 'trajectories'], ['train'], ['solve'], ['demo']]) {
      const help = saco(...cmd, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout, cmd.join(' ')).toMatch(/Examples:\n {2}\$ saco /);
      expect(help.stdout, cmd.join(' ')).toMatch(/--json/);
    }
    const oneLine = (text: string) => text.replace(/\n\s+/g, ' ');
    expect(oneLine(saco('train', '--help').stdout)).toMatch(/--data <file> [^-]*\(required\)/);
    expect(oneLine(saco('train', '--help').stdout)).toMatch(/--out <file> [^-]*\(required\)/);
    expect(oneLine(saco('solve', '--help').stdout)).toMatch(/--model <file> [^-]*\(required\)/);
    expect(oneLine(saco('solve', '--help').stdout)).toMatch(/--budget <b> .*?\(required\)/);
    expect(oneLine(saco('synth', '--help').stdout)).toMatch(/--out <file> [^-]*\(required\)/);
    expect(oneLine(saco('synth', '--help').stdout)).not.toMatch(/--users <n> [^-]*\(required\)/);
  });

  it('train --json prints one JSON document; the epoch lines go to stderr', () => {
    const data = tmp.file('tj.parquet');
    expect(saco('synth', '--users', '200', '--rounds', '3', '--out', data).code).toBe(0);
    const model = tmp.file('tj.onnx');
    const r = saco('train', '--data', data, '--out', model, '--epochs', '2', '--d-model', '8', '--layers', '1', '--heads', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ model, interrupted: false, epochs: 2 });
    expect(doc.history).toHaveLength(2);
    expect(r.stderr).toMatch(/epoch 2: train loss/);
    expect(existsSync(model)).toBe(true);
  });

  it('Ctrl-C during train writes the checkpoint and exits 130', async () => {
    const data = tmp.file('int.parquet');
    expect(saco('synth', '--users', '2000', '--rounds', '5', '--out', data).code).toBe(0);
    const model = tmp.file('int.onnx');
    const child = spawn(process.execPath, [...cliArgs, 'train', '--data', data, '--out', model, '--epochs', '100000', '--patience', '100000', '--d-model', '16', '--layers', '1', '--heads', '1'], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      // progress reaches stderr as plain lines when it is not a terminal; interrupt once training runs
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no training progress on stderr: ${stderr}`)), 90_000);
        child.stderr.on('data', (b: Buffer) => {
          stderr += b.toString();
          if (/training: epoch \d+\//.test(stderr)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      child.kill('SIGINT');
      const code = await exited;
      expect(code, `${stdout}\n${stderr}`).toBe(130);
      expect(stderr).toMatch(/interrupt: finishing this step and writing the checkpoint/);
      expect(stdout).toMatch(/interrupted after epoch \d+: checkpoint .*int\.onnx\.ckpt/);
      expect(existsSync(`${model}.ckpt`)).toBe(true);
      expect(existsSync(model)).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120_000);

  it('long commands show progress on stderr and keep stdout one JSON document', async () => {
    const modelPath = (await sharedModel('native')).path;
    const lines = { SACO_PROGRESS: 'lines' };
    const users = tmp.file('pg.parquet');
    const s = sacoEnv(lines, 'synth', '--users', '300', '--rounds', '5', '--out', users, '--json');
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).rows).toBe(1500);
    expect(s.stderr).toMatch(/^\[\d+\.\ds\] generating 300 users x 5 rounds/m);
    expect(s.stderr).toMatch(/^\[\d+\.\ds\] writing .*pg\.parquet/m);
    const t = sacoEnv(lines, 'data', 'trajectories', '--data', users, '--json');
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout).all.users).toBe(300);
    expect(t.stderr).toMatch(/^\[\d+\.\ds\] reading .*pg\.parquet/m);
    const r = sacoEnv(lines, 'solve', '--model', modelPath, '--data', users, '--budget', '0.5x', '--compare', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(3);
    for (const p of ['codt', 'random', 'oracle']) expect(r.stderr).toMatch(new RegExp(`^\\[\\d+\\.\\ds\\] solving: ${p}\\b`, 'm'));
    // --quiet: nothing on stderr
    const q = sacoEnv(lines, 'synth', '--users', '300', '--rounds', '4', '--out', tmp.file('p.csv'), '--json', '--quiet');
    expect(q.code).toBe(0);
    expect(JSON.parse(q.stdout).rows).toBe(1200);
    expect(q.stderr).toBe('');
  }, SHARED_MODEL_TIMEOUT);
});
