/**
 * evaluate() on a log (`saco eval --data <log> --schema <s.json>`): a small SY log written to a
 * CSV and read back with a schema; every method fitted on the training users and run on the test
 * users in the learned simulator fitted on the training users, the Oracle marked unavailable,
 * budgets multiples of the uniform logging policy's spend in that simulator on the test users;
 * and bad input refused before anything is fitted.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { splitByUser } from '../../src/data/trajectories.js';
import { writeLog } from '../../src/data/write.js';
import { ArgumentError, SchemaError } from '../../src/errors.js';
import { METHOD_NAMES } from '../../src/eval/methods.js';
import { evaluate } from '../../src/eval/run.js';
import { generateSy, nativeRollout } from '../../src/native/index.js';
import { readSimulator, simUsers } from '../../src/sim/simulator.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
const LOG = path.join(tmp.dir, 'sy-log.csv');
const SCHEMA = path.join(tmp.dir, 'schema.json');
const QUICK = { seeds: [1], budgets: ['0.5x'], quick: true, charts: false, training: { epochs: 1, dModel: 16, layers: 1, heads: 1, batchSize: 32 } };

beforeAll(async () => {
  // user ids that are not numbers, as in most logs: the simulator then keys users by position,
  // so a plan that named them by simulator id instead of the log's would show it
  const log = syLogToInteractionLog(await generateSy({ seed: 4, rounds: 3, users: 500 }));
  await writeLog({ ...log, userIds: log.userIds.map((u) => `u${u}`) }, LOG);
  writeFileSync(SCHEMA, JSON.stringify({ user: 'user_id', time: 'time', cost: 'cost', reward: 'reward' }));
}, 30_000);
afterAll(() => tmp.cleanup());

describe('evaluate() on a log, in the learned simulator', () => {
  it('runs every available method on the test users, marks the Oracle unavailable, and states the world and the budget reference', async () => {
    const out = path.join(tmp.dir, 'run');
    const notices: string[] = [];
    const r = await evaluate({ ...QUICK, data: LOG, schema: SCHEMA, out, plans: true, onNotice: (l) => notices.push(l) });
    const rep = r.report;
    // 500 users: a seeded 20% are test users
    expect(rep.data).toMatchObject({ kind: 'log', users: 500, trainUsers: 400, testUsers: 100, rounds: 3 });
    expect(rep.data.unavailable?.map((u) => u.method)).toEqual(['oracle']);
    expect(notices.join('\n')).toMatch(/oracle skipped: knows the true response/);
    // reading warnings are passed on as notices; this log gives none
    expect(notices.filter((n) => n.startsWith('warning:'))).toEqual([]);
    const ran = new Set(rep.perBudget.map((x) => x.method));
    expect([...ran].sort()).toEqual(METHOD_NAMES.filter((m) => m !== 'oracle').sort());
    // the "1x" budget is what the uniform logging policy spends in the simulator fitted on the
    // training users, on the test users: measured here with a plain rollout of that simulator
    const { trajectories } = await readTrajectories(LOG);
    const { train, test } = splitByUser(trajectories, { testFraction: 0.2, seed: 1 });
    const simDir = readdirSync(path.join(out, 'cache')).find((d) => d.startsWith('simulator__seed1__'));
    expect(simDir).toBeDefined();
    const sim = readSimulator(path.join(out, 'cache', simDir as string, 'simulator.bin'));
    try {
      const users = simUsers(sim, test, { round: 0 });
      const logging = await nativeRollout({ env: sim.nativeEnv({ seed: 1 }), rounds: sim.rounds, budget: Infinity, policy: 'random', lambda: 0, ...users });
      expect(rep.datasets[0].referenceSpend).toBe(logging.cost);
      expect(logging.cost).toBeGreaterThan(0);
    } finally {
      sim.dispose();
    }
    for (const row of rep.perBudget) {
      expect(row.budgetAmount.mean).toBeCloseTo(0.5 * rep.datasets[0].referenceSpend, 9);
      expect(row.cost.mean, row.method).toBeLessThanOrEqual(row.budgetAmount.mean + 1e-9);
      if (row.method === 'no-coupon') expect(row.cost.mean).toBe(0);
    }
    // the off-policy check of round 0: No coupon's plan gives everyone the control, so its IPS is
    // the control's logged round-0 rewards over the control's share of the training users' round 0
    const A = test.actionDims;
    const isControl = (t: typeof test, i: number) => t.actionEncodings.every((e, j) => t.actions[i * t.rounds * A + j] === e.control);
    const share = Array.from({ length: train.users }, (_, i) => isControl(train, i)).filter(Boolean).length / train.users;
    let sum = 0;
    let controls = 0;
    for (let i = 0; i < test.users; i++) if (isControl(test, i)) [sum, controls] = [sum + test.rewards[i * test.rounds] / share, controls + 1];
    const none = rep.offPolicy.find((o) => o.method === 'no-coupon');
    expect(none).toMatchObject({ users: test.users, source: 'action shares', seeds: 1, simulatorRevenuePerUser: null });
    expect(none?.revenue.ips).toBeCloseTo(sum / test.users, 9);
    expect(none?.cost.ips).toBe(0);
    expect(new Set(rep.offPolicy.map((o) => o.method))).toEqual(ran);
    // its plan agrees with the log exactly where the log gave the control
    expect(none?.agreement).toBeCloseTo(controls / test.users, 12);
    const md = readFileSync(r.files.markdown, 'utf8');
    expect(md).toContain("## Off-policy check: each plan's round 0 on the test users' logged round 0");
    expect(md).toContain('Only round 0 can be checked');
    expect(md).toContain('the learned simulator (fitSimulator) fitted on each seed');
    expect(md).toMatch(/Not run on this data: Oracle \(knows the true response: SY only\)/);
    expect(md).toContain("N times the uniform logging policy's spend on the same users in the simulator");

    // every run's plan is a file: the test users by their ids in the log, each round, as many
    // coupons as the run issued and its λ*
    expect(md).toContain("Every run's plan is a file in the run's folder, plans/<method>__<budget>__seed<seed>__<key>.csv.gz");
    expect(md).toContain('**The judge is a model.**');
    const enc = test.actionEncodings[0];
    expect(enc.control).toBe(0);
    const control = String(enc.values[0]);
    for (const rec of rep.records) {
      const file = path.join(out, rec.planFile as string);
      const [head, ...rows] = gunzipSync(readFileSync(file)).toString('utf8').trim().split('\n').map((l) => l.split(','));
      expect(head).toEqual(['user_id', 'round', 'action', 'probability', 'expected_revenue', 'expected_cost', 'withheld', 'lambda']);
      expect(rows.length, rec.method).toBe(test.users * test.rounds);
      expect(rows.map((x) => `${x[0]}/${x[1]}`)).toEqual(test.userIds.flatMap((u) => [0, 1, 2].map((t) => `${u}/${t}`)));
      expect(rows.filter((x) => x[2] !== control).length, rec.method).toBe(rec.coupons);
      if (rec.lambda !== null) expect(Number(rows[0][7]), rec.method).toBeCloseTo(rec.lambda, 9);
      else expect(rows[0][7], rec.method).toBe('');
    }

    // a second run reads the simulator back from the cache and computes nothing else
    const again = await evaluate({ ...QUICK, data: LOG, schema: SCHEMA, out, plans: true, onNotice: (l) => notices.push(l) });
    expect(again.work).toMatchObject({ fits: 0, runs: 0 });
    expect(notices.join('\n')).toMatch(/simulator fitted on the training users is read back/);
    // the Oracle, which cannot run on a log, is not a task left to do
    expect(notices.join('\n')).toMatch(/every result is already in/);
    expect(notices.join('\n')).not.toMatch(/resuming/);
    expect(again.report.perBudget).toEqual(rep.perBudget);
    // a result whose plan file is gone is computed again when plans are asked for, and only then
    const randomPlan = path.join(out, rep.records.find((x) => x.method === 'random')?.planFile as string);
    rmSync(randomPlan);
    expect((await evaluate({ ...QUICK, data: LOG, schema: SCHEMA, out })).work).toMatchObject({ fits: 0, runs: 0 });
    const third = await evaluate({ ...QUICK, data: LOG, schema: SCHEMA, out, plans: true });
    expect(third.work).toMatchObject({ fits: 0, runs: 1 });
    expect(existsSync(randomPlan)).toBe(true);
  }, 120_000);
});

describe('evaluate() on a log refuses bad input before anything is fitted', () => {
  const out = path.join(tmp.dir, 'bad');
  const nothingFitted = () => !existsSync(path.join(out, 'cache')) || readdirSync(path.join(out, 'cache')).length === 0;

  it('a schema that does not read the log: the typed schema error', async () => {
    const bad = path.join(tmp.dir, 'bad-schema.json');
    writeFileSync(bad, JSON.stringify({ user: 'customer', time: 'time', cost: 'cost', reward: 'reward' }));
    const e = await evaluate({ ...QUICK, data: LOG, schema: bad, out }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SchemaError);
    expect(String((e as Error).message)).toMatch(/customer/);
    expect(nothingFitted()).toBe(true);
  });

  it('a log without a schema, an unknown data name, the Oracle asked for on a log, an unknown method, a budget ≤ 0', async () => {
    const cases: Array<[Parameters<typeof evaluate>[0], RegExp]> = [
      [{ ...QUICK, data: LOG, out }, /name the schema/],
      [{ ...QUICK, data: path.join(tmp.dir, 'nope.csv'), schema: SCHEMA, out }, /neither an SY preset \(sy, sy-static, sy-strong\) nor a log file/],
      [{ ...QUICK, data: LOG, schema: SCHEMA, methods: ['random', 'oracle'], out }, /oracle cannot run on a log: knows the true response/],
      [{ ...QUICK, data: LOG, schema: SCHEMA, methods: ['saco', 'nope'], out }, /known: saco, /],
      [{ ...QUICK, data: LOG, schema: SCHEMA, budgets: ['0.5x', '0'], out }, /> 0/],
    ];
    for (const [options, message] of cases) {
      const e = await evaluate(options).catch((x: unknown) => x);
      expect(e, String(message)).toBeInstanceOf(ArgumentError);
      expect(String((e as Error).message)).toMatch(message);
    }
    expect(nothingFitted()).toBe(true);
  });

  it('passes on what reading the log found as notices (a control that costs), before refusing too few users', async () => {
    // the first no-coupon row of the log made to cost something (the schema names the control)
    const lines = readFileSync(LOG, 'utf8').trim().split('\n');
    const head = lines[0].split(',');
    const at = lines.findIndex((l, k) => k > 0 && Number(l.split(',')[head.indexOf('action')]) === 0);
    lines[at] = lines[at].split(',').map((v, c) => (c === head.indexOf('cost') ? '1.5' : v)).join(',');
    const costly = path.join(tmp.dir, 'costly-control.csv');
    writeFileSync(costly, lines.join('\n') + '\n');
    const named = path.join(tmp.dir, 'named-control.json');
    writeFileSync(named, JSON.stringify({ user: 'user_id', time: 'time', cost: 'cost', reward: 'reward', actions: [{ column: 'action', control: 0 }] }));
    const notices: string[] = [];
    const e = await evaluate({ ...QUICK, data: costly, schema: named, users: 20, testFraction: 0.9, out, onNotice: (l) => notices.push(l) }).catch((x: unknown) => x);
    expect(String((e as Error).message)).toMatch(/leave 2 to train on and 18 to test on/);
    expect(notices.filter((n) => n.startsWith('warning:'))).toEqual([expect.stringMatching(/control action \(action=0\) costs something in 1 of its/)]);
    expect(nothingFitted()).toBe(true);
  });

  it('an unwritable out, before the log is read', async () => {
    const file = path.join(tmp.dir, 'a-file');
    writeFileSync(file, 'x');
    const e = await evaluate({ ...QUICK, data: LOG, schema: SCHEMA, out: path.join(file, 'sub') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ArgumentError);
    expect((e as ArgumentError).code).toBe('ARGUMENT_OUTPUT');
  });
});
