/**
 * decideBatch(): every user's next-round decision in batched native calls equals decide() per
 * user; readHistoryForModel() reads a log against a model (its states, action values and
 * category levels); `saco decide` writes the file, and refuses bad input with one line and no
 * file. `saco train --split-out` writes exactly the held-out users.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import type { InteractionLog } from '../../src/data/log.js';
import { DEFAULT_SCHEMA } from '../../src/data/schema.js';
import { buildTrajectories, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { dataFingerprint, type CodtModel } from '../../src/model/artifact.js';
import type { CodtConfig } from '../../src/model/config.js';
import { readOnnx } from '../../src/model/onnx.js';
import { loadNativeModel } from '../../src/native/index.js';
import { decideBatch, readHistoryForModel, writeDecisions } from '../../src/solve/decide-batch.js';
import { quoteLiteral, withDuck } from '../../src/data/duck.js';
import { decide } from '../../src/solve/index.js';
import { tempDir } from '../helpers/fixtures.js';
import { randomModel } from '../helpers/model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** A log built in code: user i has 1 + (i mod context−1) rounds, two action dimensions (3 and 2 values). */
function smallLog(users: number, context: number): InteractionLog {
  const d = 4;
  const rowsOf = (i: number) => 1 + (i % (context - 1));
  const rows = Array.from({ length: users }, (_, i) => rowsOf(i)).reduce((a, b) => a + b, 0);
  const log: InteractionLog = {
    source: 'code',
    rows,
    userIndex: new Int32Array(rows),
    roundIndex: new Int32Array(rows),
    userIds: Array.from({ length: users }, (_, i) => `u${i}`),
    stateNames: ['s0', 's1', 's2', 's3'],
    states: new Float64Array(rows * d),
    actionEncodings: [
      { column: 'a0', values: [0, 1, 2], control: 0 },
      { column: 'a1', values: [0, 1], control: 0 },
    ],
    actions: new Int32Array(rows * 2),
    cost: new Float64Array(rows),
    reward: new Float64Array(rows),
    categorical: [],
  };
  let r = 0;
  for (let i = 0; i < users; i++) {
    for (let t = 0; t < rowsOf(i); t++, r++) {
      log.userIndex[r] = i;
      log.roundIndex[r] = t;
      for (let j = 0; j < d; j++) log.states[r * d + j] = Math.sin(1 + i * 7 + t * 3 + j * 11) * (1 + j);
      log.actions[r * 2] = (i + t) % 3;
      log.actions[r * 2 + 1] = (i * t) % 2;
      log.reward[r] = ((i * 13 + t * 5) % 7) * 1.5;
      log.cost[r] = log.actions[r * 2] * ((i + t) % 2);
    }
  }
  return log;
}

const CONFIG: CodtConfig = { stateDim: 4, actionSizes: [3, 2], context: 5, dModel: 16, layers: 2, heads: 2, dropout: 0, variant: 'weighted' };

function historyOf(t: Trajectories, i: number) {
  const T = t.rounds;
  const past = t.lengths[i];
  return {
    states: Array.from({ length: past }, (_, k) => Array.from(t.states.subarray((i * T + k) * 4, (i * T + k + 1) * 4))),
    actions: Array.from({ length: past }, (_, k) => Array.from(t.actions.subarray((i * T + k) * 2, (i * T + k + 1) * 2))),
    rewards: Array.from({ length: past }, (_, k) => t.rewards[i * T + k]),
    costs: Array.from({ length: past }, (_, k) => t.costs[i * T + k]),
  };
}

describe('decideBatch', () => {
  // targets 10 → 8 (RTG) and 2 → 1 (CTG) over λ in [0, 3]: the realised past is subtracted from them
  const model = randomModel(CONFIG, 7);
  const traj = buildTrajectories(smallLog(37, CONFIG.context));

  it('equals decide() for every user of a small log (histories of 1 to 4 rounds, two action dimensions), in one call and in chunks', async () => {
    const handle = loadNativeModel(model);
    try {
      for (const lambda of [0, 1.3]) {
        const batch = await decideBatch({ model: handle, lambda, history: traj });
        const chunked = await decideBatch({ model: handle, lambda, history: traj, chunk: 5 });
        expect(batch.users).toBe(37);
        expect(Array.from(batch.round)).toEqual(Array.from(traj.lengths));
        let maxDiff = 0;
        let distinct = new Set<string>();
        for (let i = 0; i < traj.users; i++) {
          const h = historyOf(traj, i);
          // the current state: the last logged one, carried forward
          const one = await decide({ model: handle, lambda, state: h.states[h.states.length - 1], history: h });
          expect(Array.from(batch.actions.subarray(i * 2, i * 2 + 2)), `user ${i}`).toEqual(one.action);
          expect(batch.labels.slice(i * 2, i * 2 + 2)).toEqual(one.labels);
          expect(Array.from(chunked.actions.subarray(i * 2, i * 2 + 2))).toEqual(one.action);
          for (let j = 0; j < 2; j++) {
            const p = one.probabilities[j][one.action[j]];
            maxDiff = Math.max(maxDiff, Math.abs(batch.probabilities[i * 2 + j] - p), Math.abs(chunked.probabilities[i * 2 + j] - p));
          }
          expect(batch.probability[i]).toBeCloseTo(one.probabilities[0][one.action[0]] * one.probabilities[1][one.action[1]], 6);
          distinct.add(one.action.join(','));
        }
        console.log(`decideBatch vs decide() at λ ${lambda}: 37 users, same actions; largest probability difference ${maxDiff.toExponential(2)}; ${distinct.size} distinct actions`);
        expect(maxDiff).toBeLessThan(1e-5);
        // a random model still chooses different actions for different users: the comparison is not vacuous
        expect(distinct.size).toBeGreaterThan(1);
        distinct = new Set();
      }
    } finally {
      handle.unload();
    }
  });

  it('takes the current states when given, and refuses what decide() refuses, naming the user', async () => {
    const states = Float32Array.from({ length: traj.users * 4 }, (_, k) => Math.cos(k));
    const batch = await decideBatch({ model, lambda: 2, history: traj, states });
    for (const i of [0, 5, 36]) {
      const one = await decide({ model, lambda: 2, state: Array.from(states.subarray(i * 4, i * 4 + 4)), history: historyOf(traj, i) });
      expect(Array.from(batch.actions.subarray(i * 2, i * 2 + 2))).toEqual(one.action);
    }
    await expect(decideBatch({ model, lambda: 4, history: traj })).rejects.toThrow(/lambda: must be in \[0, 3\]/);
    await expect(decideBatch({ model, lambda: 1, history: traj, states: new Float32Array(5) })).rejects.toThrow(/states: holds 5 values/);
    const far = states.slice();
    far[9 * 4 + 2] = 1e9;
    await expect(decideBatch({ model, lambda: 1, history: traj, states: far })).rejects.toMatchObject({ code: 'INPUT_OUT_OF_RANGE', message: /user u9: state/ });
    const long = buildTrajectories(smallLog(6, CONFIG.context + 2));
    await expect(decideBatch({ model, lambda: 1, history: long })).rejects.toMatchObject({ code: 'HISTORY_BEYOND_CONTEXT', message: /user u4 has 5 logged rounds: .*campaign .* is over; give the rounds of the campaign being decided/ });
    const other = { ...traj, stateNames: ['s0', 's1', 's2', 'x'] };
    await expect(decideBatch({ model, lambda: 1, history: other })).rejects.toMatchObject({ code: 'MODEL_DATA_MISMATCH' });
  });

  it('writes each action column with the type of the model’s values, whichever of them were chosen', async () => {
    const batch = await decideBatch({ model, lambda: 2, history: traj });
    // a dimension whose values include 2.5 is DOUBLE even in a round where every user got 0
    const decided = { ...batch, actionValues: [[0, 2.5, 5], ['none', 'sms']], labels: Array.from({ length: batch.users * 2 }, (_, k) => (k % 2 === 0 ? 0 : 'sms')) };
    const file = tmp.file('typed.parquet');
    await writeDecisions(decided, file);
    const types = await withDuck(async (conn) => (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${quoteLiteral(file)}`)).getRowObjectsJS() as Array<{ column_name: string; column_type: string }>);
    expect(types.filter((t) => t.column_name === 'a0' || t.column_name === 'a1').map((t) => t.column_type)).toEqual(['DOUBLE', 'VARCHAR']);
  });

  it('readHistoryForModel recodes categories to the model’s levels and names what does not fit', async () => {
    // a model whose first two states are a one-hot category ch ∈ {app, web}
    const m: CodtModel = randomModel(CONFIG, 11);
    m.meta.stateNames = ['ch=app', 'ch=web', 's2', 's3'];
    m.meta.categorical = [{ column: 'ch', kind: 'onehot', levels: ['app', 'web'] }];
    m.meta.actionEncodings = [
      { column: 'a0', values: [0, 1, 2], control: 0 },
      { column: 'a1', values: [0, 1], control: 0 },
    ];
    m.meta.fingerprint = dataFingerprint(m.meta);
    // only "web" in this file: its one-hot has one column; the model's "app" column is 0
    const file = tmp.file('cat.csv', 'user_id,time,ch,s2,s3,a0,a1,cost,reward,extra\n1,0,web,0.5,1,2,1,1,3,9\n1,1,web,0.25,2,0,0,0,1,9\n2,0,web,1,1,1,0,0,0,9\n');
    const { trajectories: t } = await readHistoryForModel(file, m.meta);
    expect(t.stateNames).toEqual(m.meta.stateNames);
    expect(Array.from(t.states.subarray(0, 8))).toEqual([0, 1, 0.5, 1, 0, 1, 0.25, 2]);
    expect(Array.from(t.lengths)).toEqual([2, 1]);
    const next = await decideBatch({ model: m, lambda: 1, history: t });
    expect(Array.from(next.round)).toEqual([2, 1]);
    // a level the model never saw ("tv", user 1's second round): none of the ch columns is set,
    // and a warning counts the one user it touches; the others read as before
    const tv = tmp.file('cat-tv.csv', 'user_id,time,ch,s2,s3,a0,a1,cost,reward\n1,0,web,0.5,1,2,1,1,3\n1,1,tv,0.25,2,0,0,0,1\n2,0,app,1,1,1,0,0,0\n');
    const withTv = await readHistoryForModel(tv, m.meta);
    expect(Array.from(withTv.trajectories.states)).toEqual([0, 1, 0.5, 1, 0, 0, 0.25, 2, 1, 0, 1, 1, 0, 0, 0, 0]); // user 2 has one round: its second is padding
    expect(withTv.report.warnings).toEqual([expect.stringMatching(/^1 user\(s\) have value\(s\) "tv" of category column "ch", which the model was not trained on \(its levels: app, web\)/)]);
    expect((await decideBatch({ model: m, lambda: 1, history: withTv.trajectories })).users).toBe(2);
    // an index-coded category has no such reading: refused
    const indexed = { ...m.meta, stateNames: ['ch', 's2', 's3', 's4'], categorical: [{ column: 'ch', kind: 'index' as const, levels: ['app', 'web'] }] };
    await expect(readHistoryForModel(tv, indexed)).rejects.toMatchObject({ code: 'MODEL_DATA_MISMATCH', message: /"tv" of category column "ch" were not in the data/ });
    const noS3 = tmp.file('cat-nos3.csv', 'user_id,time,ch,s2,a0,a1,cost,reward\n1,0,web,0.5,2,1,1,3\n');
    await expect(readHistoryForModel(noS3, m.meta)).rejects.toMatchObject({ code: 'MODEL_DATA_MISMATCH', message: /has no column "s3"/ });
    // a part of a log without the model's action value a0 = 2: no "never occur" warning when read
    // to decide from; read to learn from (declared values [0, 1, 2]) it is warned of
    const partial = tmp.file('cat-partial.csv', 'user_id,time,ch,s2,s3,a0,a1,cost,reward\n1,0,web,0.5,1,1,1,1,3\n2,0,app,1,1,0,0,0,0\n');
    expect((await readHistoryForModel(partial, m.meta)).report.warnings).toEqual([]);
    const learned = await readTrajectories(partial, { schema: { ...DEFAULT_SCHEMA, actions: [{ column: 'a0', values: [0, 1, 2] }, { column: 'a1', values: [0, 1] }], categorical: { ch: 'onehot' } } });
    expect(learned.report.warnings).toEqual(['action column "a0": value(s) 2 never occur in the log, so nothing learned from it will choose them']);
    const unseen = tmp.file('cat-a.csv', 'user_id,time,ch,s2,s3,a0,a1,cost,reward\n1,0,web,0.5,1,2,1,1,3\n1,1,app,0.5,1,3,1,1,3\n');
    await expect(readHistoryForModel(unseen, m.meta)).rejects.toMatchObject({ code: 'DATA_UNKNOWN_ACTION', row: 2, column: 'a0', value: '3' });
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI: synth → train --split-out → decide on the held-out users' first rounds.

const cliArgs = ['--import', 'tsx', path.join(root, 'src', 'cli.ts')];

function saco(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, SACO_PROGRESS: 'off' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function expectUserError(r: { code: number; stdout: string; stderr: string }, message: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^saco: /);
  expect(lines[0]).toMatch(message);
}

describe('saco train --split-out, saco decide', () => {
  it('writes the held-out users, then every user’s next-round coupon as decideBatch computes it; bad input: one line, exit 2, no file', async () => {
    const dir = tmp.dir;
    const data = tmp.file('sy.csv');
    expect(saco('synth', '--users', '150', '--rounds', '3', '--seed', '4', '--out', data).code).toBe(0);
    const modelFile = tmp.file('m.onnx');
    const held = tmp.file('held.csv');
    const train = saco('train', '--data', data, '--out', modelFile, '--epochs', '1', '--d-model', '8', '--layers', '1', '--heads', '1', '--seed', '5', '--no-spend-curve', '--split-out', held, '--json');
    expect(train.code, train.stderr).toBe(0);
    const summary = JSON.parse(train.stdout);
    // exactly the test users of the split, with all their rows
    const { trajectories: all } = await readTrajectories(data);
    const { test } = splitByUser(all, { testFraction: 0.2, seed: 5 });
    expect(summary.splitOut).toEqual({ file: held, users: 30, rows: 90 });
    // what reading reported: an SY log has nothing to skip, merge, fill or warn of
    expect(summary.read).toEqual({ skipped: {}, combinedRows: 0, filledRounds: 0, warnings: [] });
    const heldIds = [...new Set(readFileSync(held, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]))];
    expect(heldIds.sort()).toEqual([...test.userIds].sort());
    expect(readFileSync(held, 'utf8').split('\n')[0]).toBe(readFileSync(data, 'utf8').split('\n')[0]);

    // the campaign so far: rounds 0 and 1 of the held-out users; decide round 2
    const lines = readFileSync(held, 'utf8').trim().split('\n');
    const sofar = tmp.file('sofar.csv', [lines[0], ...lines.slice(1).filter((l) => Number(l.split(',')[1]) < 2)].join('\n') + '\n');
    const out = tmp.file('next.csv');
    const r = saco('decide', '--model', modelFile, '--data', sofar, '--lambda', '0.8', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ out, users: 30, rounds: [2], states: null, read: { filledRounds: 0, combinedRows: 0, skipped: {}, warnings: [] } });
    const meta = readOnnx(modelFile).meta;
    const { trajectories } = await readHistoryForModel(sofar, meta);
    const want = await decideBatch({ model: readOnnx(modelFile), lambda: 0.8, history: trajectories });
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('user_id,round,action,probability');
    expect(rows).toHaveLength(31);
    rows.slice(1).forEach((row, i) => {
      const [id, round, label, p] = row.split(',');
      expect(id).toBe(want.userIds[i]);
      expect(Number(round)).toBe(2);
      expect(label).toBe(String(want.labels[i])); // as the log writes it: "10", not "10.0"
      expect(Number(p)).toBeCloseTo(want.probability[i], 12);
    });
    // this round's states from a file of their own (no time, action or outcome columns): all
    // but three users, plus one the history does not hold (decided at its round 0); the three
    // keep their last state
    const heads = lines[0].split(',');
    const keep = heads.map((h, k) => (['time', 'action', 'cost', 'reward'].includes(h) ? -1 : k)).filter((k) => k >= 0);
    const round2 = lines.slice(1).filter((l) => Number(l.split(',')[1]) === 2);
    const left = new Set(heldIds.slice(0, 3)); // (sorted above)
    const stateRows = round2.filter((l) => !left.has(l.split(',')[0])).map((l) => keep.map((k) => l.split(',')[k]).join(','));
    const stranger = [...stateRows[0].split(',')];
    stranger[0] = '999999';
    const statesFile = tmp.file('this-round.csv', [keep.map((k) => heads[k]).join(','), ...stateRows, stranger.join(',')].join('\n') + '\n');
    const withStates = tmp.file('next-states.csv');
    const rs = saco('decide', '--model', modelFile, '--data', sofar, '--states', statesFile, '--lambda', '0.8', '--out', withStates, '--json');
    expect(rs.code, rs.stderr).toBe(0);
    expect(JSON.parse(rs.stdout).states).toEqual({ file: statesFile, matched: 27, carriedForward: 3, newUsers: 1, read: { skipped: {}, combinedRows: 0, filledRounds: 0, warnings: [] } });
    expect(rs.stderr).toMatch(/3 of 30 users have no row in .*this-round\.csv: their last logged state is carried forward/);
    expect(rs.stderr).toMatch(/1 user\(s\) in .*this-round\.csv have no logged history .*: decided at their round 0/);
    // the states as the full log holds them (round 2), or round 1's for the three
    const { trajectories: full } = await readHistoryForModel(held, meta);
    const fullIndex = (id: string) => full.userIds.indexOf(id);
    const d = meta.stateNames.length;
    const expected = new Float32Array(30 * d);
    for (let i = 0; i < 30; i++) {
      expect(full.userIds[i]).toBe(trajectories.userIds[i]);
      const t = left.has(full.userIds[i]) ? 1 : 2;
      expected.set(full.states.subarray((i * full.rounds + t) * d, (i * full.rounds + t + 1) * d), i * d);
    }
    const wantNow = await decideBatch({ model: readOnnx(modelFile), lambda: 0.8, history: trajectories, states: expected });
    const nowRows = readFileSync(withStates, 'utf8').trim().split('\n').slice(1);
    expect(nowRows).toHaveLength(31);
    // the newcomer: decide() for a user with no history, from the state its row holds
    const [newId, newRound, newLabel, newP] = (nowRows.pop() as string).split(',');
    const strangerState = expected.slice(fullIndex(stateRows[0].split(',')[0]) * d, (fullIndex(stateRows[0].split(',')[0]) + 1) * d);
    const alone = await decide({ model: readOnnx(modelFile), lambda: 0.8, state: strangerState });
    expect([newId, Number(newRound), newLabel]).toEqual(['999999', 0, String(alone.labels[0])]);
    expect(Number(newP)).toBeCloseTo(alone.probabilities[0][alone.action[0]], 6);
    nowRows.forEach((row, i) => {
      const [id, , label, p] = row.split(',');
      expect(id).toBe(wantNow.userIds[i]);
      expect(label).toBe(String(wantNow.labels[i]));
      expect(Number(p)).toBeCloseTo(wantNow.probability[i], 12);
    });
    // the current states reach the model: some user's probabilities differ from carrying the last state forward
    expect(nowRows.some((row, i) => Number(row.split(',')[3]) !== Number(rows[i + 1].split(',')[3]))).toBe(true);
    // Parquet by extension
    const parquet = tmp.file('next.parquet');
    expect(saco('decide', '--model', modelFile, '--users', sofar, '--lambda', '0.8', '--out', parquet).code).toBe(0);

    const noFile = (name: string) => expect(readdirSync(dir).filter((f) => f.includes(name)), `${name} left behind`).toEqual([]);
    // an output path that cannot be written: refused before any work
    expectUserError(saco('decide', '--model', modelFile, '--data', sofar, '--lambda', '0.8', '--out', path.join(dir, 'missing', 'n.csv')), /--out: .*folder .* does not exist/);
    mkdirSync(path.join(dir, 'folder.csv'));
    expectUserError(saco('decide', '--model', modelFile, '--data', sofar, '--lambda', '0.8', '--out', path.join(dir, 'folder.csv')), /folder\.csv is a folder/);
    // a user file without the model's state columns
    const header = lines[0].split(',');
    const drop = header.indexOf('fatigue');
    const cut = tmp.file('nofatigue.csv', readFileSync(sofar, 'utf8').trim().split('\n').map((l) => l.split(',').filter((_, k) => k !== drop).join(',')).join('\n') + '\n');
    expectUserError(saco('decide', '--model', modelFile, '--data', cut, '--lambda', '0.8', '--out', tmp.file('bad1.csv')), /nofatigue\.csv: has no column "fatigue": the model .* decides from the state column\(s\)/);
    noFile('bad1');
    // an action value the model never saw, named with its row
    const act = header.indexOf('action');
    const sofarRows = readFileSync(sofar, 'utf8').trim().split('\n');
    const odd = sofarRows.map((l, k) => (k === 3 ? l.split(',').map((v, c) => (c === act ? '7' : v)).join(',') : l));
    const unseen = tmp.file('unseen.csv', odd.join('\n') + '\n');
    expectUserError(saco('decide', '--model', modelFile, '--data', unseen, '--lambda', '0.8', '--out', tmp.file('bad2.csv')), /unseen\.csv, row 3, column "action": action value not among \[0,2,5,10\].*was trained on these values only/);
    noFile('bad2');
    // a history that leaves no round to decide in the model's context
    expectUserError(saco('decide', '--model', modelFile, '--data', held, '--lambda', '0.8', '--out', tmp.file('bad3.csv')), /has 3 logged rounds: the model decides rounds 0\.\.2/);
    noFile('bad3');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);
});
