/**
 * The schema's `propensity` role: the logging policy's probability of the logged action, read
 * from a column or an SQL expression, checked to lie in (0, 1], carried into the trajectories
 * (1 in calendar rounds filled as the control, the first row's where rows are combined), and
 * used by off-policy estimates and DFCL's decision objective. On a targeted log (the logger
 * treats users with x > 0 more often) the estimate of "treat everyone" with the logged
 * propensities lands on the closed-form truth, while the log's action shares, the fallback for
 * logs that do not say, are far off: the reason the role exists.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLog, readTrajectories } from '../../src/data/ingest.js';
import { inspectLog } from '../../src/data/inspect.js';
import { parseSchema } from '../../src/data/schema.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { DataError, SchemaError } from '../../src/errors.js';
import { deterministicTargetProbabilities, offPolicyEstimates } from '../../src/eval/ope.js';
import { stat } from '../../src/eval/report.js';
import { userDecisionValues } from '../../src/policy/dfcl.js';
import type { ActionScorer } from '../../src/policy/scored.js';
import { featureLayout, jointActions, loggedJointActions, loggingPropensities } from '../../src/sim/features.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig, syWeights } from '../../src/data/synth.js';
import { generateSy } from '../../src/native/index.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function csv(name: string, header: string, rows: string[]): string {
  const file = tmp.file(name);
  writeFileSync(file, [header, ...rows].join('\n') + '\n');
  return file;
}

// A small seeded generator for the fixture (mulberry32), and normals by Box-Muller.
function generator(seed: number): { uniform: () => number; normal: () => number } {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

const N = 20_000;
const treatProbability = (x: number) => 1 / (1 + Math.exp(-1.5 * x));
// E[y | x, a] = 1 + a·(2 if x > 0 else −1): treating everyone is worth 1 + 0.5·2 − 0.5·1 = 1.5 (x symmetric)
const TRUE_VALUE_TREAT_ALL = 1.5;
const TARGETED = { user: 'user', time: null, states: ['x'], actions: [{ column: 'a' }], reward: 'y', cost: { sql: '0.5 * a' } };

/** One round per user: x ~ N(0, 1), a ~ Bernoulli(σ(1.5x)), p the probability of the a drawn. */
function targetedLog(): string {
  const g = generator(12345);
  const rows: string[] = [];
  for (let u = 0; u < N; u++) {
    const x = g.normal();
    const q = treatProbability(x);
    const a = g.uniform() < q ? 1 : 0;
    const y = 1 + a * (x > 0 ? 2 : -1) + 0.5 * g.normal();
    rows.push(`${u},${x.toPrecision(17)},${a},${y.toPrecision(17)},${(a ? q : 1 - q).toPrecision(17)}`);
  }
  return csv('targeted.csv', 'user,x,a,y,p', rows);
}

describe('the propensity role of a schema', () => {
  let file: string;
  let traj: Trajectories;
  beforeAll(async () => {
    file = targetedLog();
    traj = (await readTrajectories(file, { schema: parseSchema({ ...TARGETED, propensity: 'p' }) })).trajectories;
  });

  it('reads the column into the trajectories, not as a state; an SQL expression gives the same values; inspect names the role', async () => {
    expect(traj.stateNames).toEqual(['x']);
    expect(traj.propensity).toBeInstanceOf(Float32Array);
    const lines = (await import('node:fs')).readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    lines.forEach(([, , , , p], u) => expect(traj.propensity?.[u]).toBe(Math.fround(p)));
    const sql = 'CASE WHEN a = 1 THEN 1 / (1 + exp(-1.5 * x)) ELSE 1 - 1 / (1 + exp(-1.5 * x)) END';
    const derived = (await readLog(file, { schema: parseSchema({ ...TARGETED, propensity: { sql } }) })).log;
    lines.forEach(([, , , , p], u) => expect(Math.abs((derived.propensity as Float64Array)[u] - p)).toBeLessThan(1e-12));
    const report = await inspectLog(file, parseSchema({ ...TARGETED, propensity: 'p' }));
    expect(report.columns.find((c) => c.column === 'p')).toMatchObject({ role: 'propensity', outOfRange: 0 });
    // without the role, the column would be a state
    const { states: named, ...everyColumn } = TARGETED;
    expect(named).toEqual(['x']);
    const plain = (await readTrajectories(file, { schema: parseSchema(everyColumn) })).trajectories;
    expect(plain.stateNames).toEqual(['x', 'p']);
    expect(plain.propensity).toBeUndefined();
  });

  it("off-policy estimates of 'treat everyone' hit the truth with the logged propensities, and miss it with the action shares", () => {
    const logged = loggingPropensities(traj);
    expect(logged.source).toBe('logged');
    const shares = loggingPropensities({ ...traj, propensity: undefined });
    expect(shares.source).toBe('action shares');
    const treated = Array.from(traj.actions).filter((a) => a === 1).length;
    expect(shares.values[traj.actions.indexOf(1)]).toBeCloseTo(treated / N, 12);
    const treatIndex = 1; // values [0, 1]: index 1 is a = 1
    const target = deterministicTargetProbabilities(loggedJointActions(traj), new Int32Array(N).fill(treatIndex));
    const ope = (logging: Float64Array) =>
      offPolicyEstimates({ user: Int32Array.from({ length: N }, (_, i) => i), round: new Int32Array(N), logging, target, reward: traj.rewards, cost: traj.costs }).reward.ips;
    const withLogged = ope(logged.values);
    const withShares = ope(shares.values);
    console.log(`IPS of treat-everyone on a targeted log of ${N} users (truth ${TRUE_VALUE_TREAT_ALL}): logged propensities ${withLogged.value.toFixed(4)} ± ${withLogged.se.toFixed(4)}, action shares ${withShares.value.toFixed(4)} ± ${withShares.se.toFixed(4)}`);
    expect(Math.abs(withLogged.value - TRUE_VALUE_TREAT_ALL)).toBeLessThan(3 * withLogged.se);
    expect(Math.abs(withShares.value - TRUE_VALUE_TREAT_ALL)).toBeGreaterThan(10 * withShares.se);
  });

  it("DFCL's decision objective weights by the logged propensities", async () => {
    // a scorer that always prefers a = 1 (reward 1 against 0, no cost): J is the IPW value of treating everyone
    const layout = featureLayout(traj);
    const actions = jointActions(layout.actionSizes);
    const scorer: ActionScorer = {
      layout,
      actions,
      K: 2,
      async score(x) {
        const n = x.length / layout.names.length;
        return { reward: Float64Array.from({ length: 2 * n }, (_, i) => i % 2), cost: new Float64Array(2 * n) };
      },
    };
    const lambdas = [0.25, 0.5, 1, 2];
    // E[y − λ·0.5] under treat-everyone, mean over λ
    const truth = TRUE_VALUE_TREAT_ALL - 0.5 * (lambdas.reduce((a, b) => a + b, 0) / lambdas.length);
    const meanAndSe = (v: Float64Array) => {
      const s = stat(Array.from(v));
      return { m: s.mean, se: (s.sd as number) / Math.sqrt(s.n) };
    };
    const logged = meanAndSe(await userDecisionValues(scorer, traj, lambdas));
    const shares = meanAndSe(await userDecisionValues(scorer, { ...traj, propensity: undefined }, lambdas));
    console.log(`DFCL's J of treat-everyone (truth ${truth}): logged propensities ${logged.m.toFixed(4)} ± ${logged.se.toFixed(4)}, action shares ${shares.m.toFixed(4)} ± ${shares.se.toFixed(4)}`);
    expect(Math.abs(logged.m - truth)).toBeLessThan(3 * logged.se);
    expect(Math.abs(shares.m - truth)).toBeGreaterThan(10 * shares.se);
  });

  it('refuses a propensity outside (0, 1] or missing, naming file, row and column; --skip-bad-rows counts them; a missing column is a schema error', async () => {
    const schema = parseSchema({ ...TARGETED, propensity: 'p' });
    const good = ['0,0.5,1,3,0.6', '1,-0.5,0,1,0.7'];
    for (const [bad, code, value] of [
      ['2,0.1,1,2,0', 'DATA_OUT_OF_RANGE', '0'],
      ['2,0.1,1,2,1.5', 'DATA_OUT_OF_RANGE', '1.5'],
      ['2,0.1,1,2,-0.2', 'DATA_OUT_OF_RANGE', '-0.2'],
      ['2,0.1,1,2,', 'DATA_MISSING_VALUE', undefined],
      ['2,0.1,1,2,high', 'DATA_WRONG_TYPE', 'high'],
    ] as const) {
      const f = csv(`bad-${code}-${value}.csv`, 'user,x,a,y,p', [...good, bad]);
      const e = await readLog(f, { schema }).catch((err: unknown) => err);
      expect(e, bad).toBeInstanceOf(DataError);
      expect(e).toMatchObject({ code, row: 3, column: 'p', ...(value !== undefined ? { value } : {}) });
      expect((e as Error).message).toContain(f);
    }
    const skipFile = csv('skip.csv', 'user,x,a,y,p', [...good, '2,0.1,1,2,0', '3,0.1,1,2,1']);
    expect((await inspectLog(skipFile, schema)).columns.find((c) => c.column === 'p')).toMatchObject({ role: 'propensity', outOfRange: 1 });
    const { log, report } = await readLog(skipFile, { schema, skipBadRows: true });
    expect(report.skipped).toEqual({ 'DATA_OUT_OF_RANGE (p)': 1 });
    expect(Array.from(log.propensity as Float64Array)).toEqual([0.6, 0.7, 1]);
    await expect(readLog(csv('no-p.csv', 'user,x,a,y', ['0,0.5,1,3']), { schema })).rejects.toMatchObject({ code: 'SCHEMA_MISSING_COLUMN', field: 'propensity' });
    expect(() => parseSchema({ ...TARGETED, propensity: 3 })).toThrow(SchemaError);
    expect(() => parseSchema({ ...TARGETED, propensity: 'p', combine: { action: 'max' } })).toThrow(/combine.action: "max" takes a round's action from any of its rows/);
    // a log built in code is checked too
    const built = (await readLog(csv('built.csv', 'user,x,a,y,p', good), { schema })).log;
    expect(() => buildTrajectories({ ...built, propensity: Float64Array.from([0.5, 0]) })).toThrow(/logging propensity 0 is not in \(0, 1\]/);
    expect(() => buildTrajectories({ ...built, propensity: Float64Array.from([NaN, 0.5]) })).toThrow(DataError);
    await expect(readLog(csv('twice.csv', 'user,x,a,y,p', good), { schema: parseSchema({ ...TARGETED, propensity: 'x' }) })).rejects.toMatchObject({ code: 'SCHEMA_DUPLICATE_COLUMN' });
  });

  it('is 1 in a calendar round filled as the control, and the first row’s where rows are combined', async () => {
    const f = csv('calendar.csv', 'user,day,x,a,y,p', ['1,0,0.1,1,2,0.3', '1,2,0.2,0,1,0.8', '2,0,0.3,0,0,0.6', '2,1,0.4,1,5,0.2', '2,1.5,0.5,0,1,0.9', '2,2,0.6,1,1,0.4']);
    const schema = parseSchema({ ...TARGETED, time: 'day', propensity: 'p', round: { every: 1 }, combine: { reward: 'sum', cost: 'sum', action: 'first' } });
    const { trajectories: t } = await readTrajectories(f, { schema });
    expect(t.rounds).toBe(3);
    expect(Array.from(t.filled as Uint8Array)).toEqual([0, 1, 0, 0, 0, 0]);
    expect(Array.from(t.propensity as Float32Array)).toEqual([0.3, 1, 0.8, 0.6, 0.2, 0.4].map(Math.fround));
  });
});

describe("SY logs carry their logger's propensities", () => {
  it('biased: the softmax of strength · (w_β · x) · value / max value per dimension, multiplied; uniform: 1 / values; each action weighs 1 on average', async () => {
    const strength = 1.5;
    const actionDims = [
      { name: 'coupon', kind: 'cash' as const, values: [0, 2, 5, 10] },
      { name: 'discount', kind: 'discount' as const, values: [0, 0.1, 0.2] },
    ];
    const config = resolveSyConfig({ seed: 3, users: 4000, rounds: 3, actionDims, logging: { kind: 'biased', strength } });
    const log = await generateSy(config);
    const traj = buildTrajectories(syLogToInteractionLog(log));
    const wBeta = syWeights(config).wBeta;
    const F = config.features;
    const d = F + 3;
    const weighted = new Float64Array(12);
    const squares = new Float64Array(12);
    for (let row = 0; row < config.users * config.rounds; row++) {
      // σ_obs is 0: the observed x is the user's own
      let score = 0;
      for (let j = 0; j < F; j++) score += wBeta[j] * log.states[row * d + j];
      let p = 1;
      actionDims.forEach((dim, j) => {
        const vmax = Math.max(...dim.values);
        const e = dim.values.map((v) => Math.exp(strength * score * (v / vmax)));
        p *= e[log.actions[row * 2 + j]] / e.reduce((a, b) => a + b, 0);
      });
      expect(Math.abs((traj.propensity as Float32Array)[row] - p), `row ${row}`).toBeLessThan(1e-6 * p + 1e-9);
      const k = log.actions[row * 2] * 3 + log.actions[row * 2 + 1];
      weighted[k] += 1 / p;
      squares[k] += 1 / p ** 2;
    }
    // E[1{a = k} / p(k | x)] = 1 for every joint action: the propensities are the logger's
    // distribution, not only the code's formula (within 5 SE: a user's rows share x)
    const rows = config.users * config.rounds;
    for (let k = 0; k < 12; k++) {
      const mean = weighted[k] / rows;
      const se = Math.sqrt((squares[k] / rows - mean ** 2) / (rows - 1));
      expect(Math.abs(mean - 1), `action ${k}: ${mean} ± ${se}`).toBeLessThan(5 * se);
    }
    const uniform = buildTrajectories(syLogToInteractionLog(await generateSy(resolveSyConfig({ seed: 3, users: 50, rounds: 2, actionDims }))));
    expect(new Set(uniform.propensity)).toEqual(new Set([Math.fround(1 / 12)]));
  });
});

