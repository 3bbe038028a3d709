/**
 * Plans a user can ship (`solve({ planDetails: true })`, `writePlan`, `saco solve --sim --out`):
 * the plan file's rows, labels, the policy's probability of each issued action, the
 * environment's expected revenue and cost of it (recomputed through SY's TypeScript closed
 * form), and the budget's withheld coupons; the CLI's checks before any work.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDuck, quoteLiteral } from '../../src/data/duck.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig, syCouponValue, syInitialUser, syPurchaseProbability, syStep, syWeights } from '../../src/data/synth.js';
import { buildTrajectories, selectUsers, splitByUser, type Trajectories } from '../../src/data/trajectories.js';
import { writeLog } from '../../src/data/write.js';
import { ArgumentError } from '../../src/errors.js';
import type { CodtModel } from '../../src/model/artifact.js';
import { readOnnx } from '../../src/model/onnx.js';
import { generateSy, loadNativeModel, nativeSearchLambda, type NativeModel } from '../../src/native/index.js';
import { fitSimulator, writeSimulator, type Simulator } from '../../src/sim/simulator.js';
import { decideSync, solve, writePlan, type SolveResult } from '../../src/solve/index.js';
import { tempDir } from '../helpers/fixtures.js';
import { SHARED_MODEL_TIMEOUT, SY_MODEL_DATA, sharedModel } from '../helpers/shared-model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = tempDir();
const env = { seed: SY_MODEL_DATA.seed, rounds: SY_MODEL_DATA.rounds };
const sy = resolveSyConfig(env);
const CONTROL = 0; // SY's coupon values [0, 2, 5, 10]: index 0 is no coupon

let modelFile: string;
let model: CodtModel;
let handle: NativeModel;
let test: Trajectories;
let train: Trajectories;
let sim: Simulator;
let simFile: string;

beforeAll(async () => {
  modelFile = (await sharedModel('native')).path;
  model = readOnnx(modelFile);
  handle = loadNativeModel(model);
  ({ train, test } = splitByUser(buildTrajectories(syLogToInteractionLog(await generateSy(SY_MODEL_DATA))), { seed: 1 }));
  sim = await fitSimulator(selectUsers(train, Array.from({ length: 1200 }, (_, i) => i)), { seed: 1, rounds: 40 });
  simFile = tmp.file('sim.bin');
  writeSimulator(sim, simFile);
}, SHARED_MODEL_TIMEOUT);

afterAll(() => {
  handle?.unload();
  sim?.dispose();
  tmp.cleanup();
});

async function readBack(file: string): Promise<Array<Record<string, unknown>>> {
  return withDuck(async (conn) => (await conn.runAndReadAll(`SELECT * FROM ${quoteLiteral(file)}`)).getRowObjectsJS() as Array<Record<string, unknown>>);
}

/** SY's expected revenue and cost of user i's issued actions, replayed in TypeScript from their logged first state. */
function syExpected(users: Trajectories, r: SolveResult, i: number): Array<{ revenue: number; cost: number }> {
  const weights = syWeights(sy);
  const x = users.states.subarray(i * users.rounds * users.stateDim, i * users.rounds * users.stateDim + sy.features);
  const user = syInitialUser(sy, weights, Number(users.userIds[i]), x);
  const out = [];
  for (let t = 0; t < r.rounds; t++) {
    const action = [r.plan[i * r.rounds + t]];
    const value = syCouponValue(sy, action, user.consts.basket);
    const p = syPurchaseProbability(sy, user.consts, user.engagement, user.fatigue, value);
    out.push({ revenue: p * user.consts.basket, cost: p * value });
    syStep(sy, user, t, action);
  }
  return out;
}

describe('plan details and the plan file', () => {
  it('CODT in SY: labels, expected values from SY truth, softmax probabilities, expected cost near realised cost', async () => {
    const r = await solve({ model: handle, users: test, budget: '0.5x', env, planDetails: true });
    const d = r.planDetails!;
    const N = test.users;
    const R = r.rounds;
    expect(d.startRound).toBe(0);
    for (const a of [d.probability, d.expectedRevenue, d.expectedCost, d.withheld]) expect(a).toHaveLength(N * R);
    // the details change nothing of the plan; the λ search records the same ones when asked
    const plain = await solve({ model: handle, users: test, budget: '0.5x', env });
    expect(plain.plan).toEqual(r.plan);
    expect(r.rollouts).toBe(plain.rollouts + 1);
    const users = { userIds: Uint32Array.from(test.userIds, Number), features: Float64Array.from({ length: N * sy.features }, (_, q) => test.states[Math.floor(q / sy.features) * test.rounds * test.stateDim + (q % sy.features)]) };
    const searched = await nativeSearchLambda({ env: sy, rounds: R, budget: Infinity, policy: 'codt', lambda: 0, model: handle.id, ...users, recordDetails: true }, { method: 'bisection', budget: r.budget, lambdaMax: model.meta.normalization.lambdaMax });
    expect(searched.lambda).toBe(r.lambda);
    expect(searched.plan.details).toEqual({ probability: d.probability, expectedRevenue: d.expectedRevenue, expectedCost: d.expectedCost, withheld: d.withheld });
    // expected revenue and cost: the native SY environment's, recomputed in TypeScript
    for (const i of [0, 7, 123, N - 1]) {
      syExpected(test, r, i).forEach((e, t) => {
        expect(d.expectedRevenue[i * R + t]).toBeCloseTo(e.revenue, 9);
        expect(d.expectedCost[i * R + t]).toBeCloseTo(e.cost, 9);
      });
    }
    // the probability is the model's softmax at the issued index: at round 0 every user's state
    // is its logged first state (SY observes without noise here)
    for (const i of [0, 5, 42]) {
      const state = test.states.subarray(i * test.rounds * test.stateDim, i * test.rounds * test.stateDim + test.stateDim);
      const decision = decideSync({ model: handle, lambda: r.lambda, state });
      expect(d.probability[i * R]).toBeCloseTo(decision.probabilities[0][r.plan[i * R]], 5);
      if (!d.withheld[i * R]) expect(r.plan[i * R]).toBe(decision.action[0]);
    }
    // expected spend is what the realised spend averages to: close, within sampling (SY's
    // purchases are Bernoulli: variance E[c](v − E[c]) per issued coupon of value v)
    let expected = 0;
    let variance = 0;
    for (let q = 0; q < N * R; q++) {
      expected += d.expectedCost[q];
      variance += d.expectedCost[q] * (sy.actionDims[0].values[r.plan[q]] - d.expectedCost[q]);
    }
    expect(expected).not.toBe(r.cost);
    expect(Math.abs(expected - r.cost)).toBeLessThan(4 * Math.sqrt(variance));

    const file = tmp.file('codt-plan.parquet');
    expect(await writePlan(r, test, file)).toBe(N * R);
    const rows = await readBack(file);
    expect(rows).toHaveLength(N * R);
    expect(Object.keys(rows[0])).toEqual(['user_id', 'round', 'action', 'probability', 'expected_revenue', 'expected_cost', 'withheld', 'lambda']);
    rows.forEach((row, q) => {
      expect(String(row.user_id)).toBe(test.userIds[Math.floor(q / R)]);
      expect(row.round).toBe(q % R);
      expect(row.action).toBe(model.meta.actionEncodings[0].values[r.plan[q]]);
      expect(row.withheld).toBe(d.withheld[q] === 1);
      expect(row.lambda).toBe(r.lambda);
    });
    expect(rows[9].expected_cost).toBe(d.expectedCost[9]);
  });

  it('Random under a binding budget: probability 1/K exactly, withheld rows issue the control; the Oracle a point mass', async () => {
    const r = await solve({ policy: 'random', users: test, budget: '0.3x', env, planDetails: true });
    const d = r.planDetails!;
    expect(r.blocked).toBeGreaterThan(0);
    expect(d.probability.every((p) => p === 1 / 4)).toBe(true);
    let withheld = 0;
    d.withheld.forEach((w, q) => {
      if (w) {
        withheld++;
        expect(r.plan[q]).toBe(CONTROL);
      }
    });
    expect(withheld).toBe(r.blocked);

    const o = await solve({ policy: 'oracle', users: test, budget: '0.5x', env, planDetails: true, lambdaMax: 10 });
    const od = o.planDetails!;
    od.probability.forEach((p, q) => expect(p).toBe(od.withheld[q] ? 0 : 1));
  });

  it('in the simulator: expected values from it, rounds from --start-round; a plan without details is refused', async () => {
    const users = selectUsers(test, Array.from({ length: 300 }, (_, i) => i));
    const r = await solve({ model: handle, users, budget: '0.5x', env: { kind: 'sim', simulator: sim, startRound: 2 }, planDetails: true });
    const d = r.planDetails!;
    expect(d.startRound).toBe(2);
    expect(r.rounds).toBe(SY_MODEL_DATA.rounds - 2);
    expect(d.expectedRevenue.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
    const expected = d.expectedCost.reduce((a, b) => a + b, 0);
    expect(expected).not.toBe(r.cost);
    expect(Math.abs(expected - r.cost) / r.cost).toBeLessThan(0.25);
    const file = tmp.file('sim-plan.csv');
    await writePlan(r, users, file);
    const rows = await readBack(file);
    expect(rows.map((row) => Number(row.round)).slice(0, r.rounds)).toEqual([2, 3, 4]); // CSV reads back as BIGINT
    // whole-number labels are written as the log has them ("10", not "10.0")
    const actions = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((line) => line.split(',')[2]);
    expect(actions.map(Number)).toEqual(Array.from(r.plan, (k) => model.meta.actionEncodings[0].values[k]));
    expect(actions.every((a) => /^\d+$/.test(a))).toBe(true);

    const plain = await solve({ policy: 'random', users, budget: '0.5x', env });
    expect(plain.planDetails).toBeUndefined();
    await expect(writePlan(plain, users, tmp.file('none.csv'))).rejects.toThrow(ArgumentError);
    await expect(writePlan(r, { userIds: ['a'], actionEncodings: model.meta.actionEncodings }, tmp.file('x.csv'))).rejects.toThrow(/userIds/);
  });
});

describe('saco solve --sim --out', () => {
  const cli = (...args: string[]) => {
    const p = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), 'solve', ...args], { cwd: root, encoding: 'utf8' });
    return { code: p.status ?? -1, stdout: p.stdout, stderr: p.stderr };
  };

  it('writes a parquet DuckDB reads back; an unwritable --out fails first with exit 2 and no file; another schema is named', async () => {
    const log = tmp.file('log.parquet');
    const small = await generateSy({ ...SY_MODEL_DATA, users: 200 });
    await writeLog(syLogToInteractionLog(small), log);
    const out = tmp.file('plan.parquet');
    const ok = cli('--model', modelFile, '--sim', simFile, '--data', log, '--budget', '0.5x', '--out', out, '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)[0]).toMatchObject({ out, users: 200, rounds: 5 });
    const rows = await readBack(out);
    expect(rows).toHaveLength(200 * 5);
    expect(rows.every((row) => typeof row.probability === 'number' && typeof row.expected_cost === 'number')).toBe(true);
    // another seed of the simulator's draws: another sample of the same campaign
    const reseeded = cli('--model', modelFile, '--sim', simFile, '--data', log, '--budget', '0.5x', '--sim-seed', '7', '--json');
    expect(reseeded.code, reseeded.stderr).toBe(0);
    expect(JSON.parse(reseeded.stdout)[0].revenue).not.toBe(JSON.parse(ok.stdout)[0].revenue);

    const nowhere = path.join(tmp.file('missing-folder'), 'plan.parquet');
    const bad = cli('--model', modelFile, '--sim', simFile, '--data', log, '--budget', '0.5x', '--out', nowhere);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^saco: .*--out.*does not exist/);
    expect(existsSync(nowhere)).toBe(false);

    // a users file without the model's (and simulator's) columns x6, x7, read against the model; a simulator fitted on such a log
    const otherLog = syLogToInteractionLog(await generateSy({ ...SY_MODEL_DATA, users: 300, features: 6 }));
    const other = tmp.file('other.parquet');
    await writeLog(otherLog, other);
    const missing = cli('--model', modelFile, '--sim', simFile, '--data', other, '--budget', '0.5x', '--out', tmp.file('p2.csv'));
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^saco: .*other\.parquet: has no columns "x6", "x7": the model .* decides from the state column\(s\) x0, .*x7/);
    expect(existsSync(tmp.file('p2.csv'))).toBe(false);
    const otherSim = await fitSimulator(buildTrajectories(otherLog), { seed: 1, rounds: 10 });
    const otherSimFile = tmp.file('other-sim.bin');
    writeSimulator(otherSim, otherSimFile);
    otherSim.dispose();
    const mismatch = cli('--model', modelFile, '--sim', otherSimFile, '--data', log, '--budget', '0.5x', '--out', tmp.file('p3.csv'));
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr.trim().split('\n')).toHaveLength(1);
    expect(mismatch.stderr).toMatch(new RegExp(`^saco: .*${otherSimFile}.*(x6|x7)`));
    expect(existsSync(tmp.file('p3.csv'))).toBe(false);
  });
});
