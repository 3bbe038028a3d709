/**
 * CMDP (fitted-Q iteration at a fixed λ) and DFCL (decision-focused re-weighted response model)
 * are themselves: FQI's Bellman residual falls over its iterations and its greedy decisions on a
 * tiny fixture with a carry-over effect equal the closed-form Q; DFCL on SY static reaches its
 * measured share of the myopic Oracle's incremental revenue at 0.5x, and its decision-focused
 * step is judged on held-out users (both objectives printed).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { CounterStream } from '../../src/data/rng.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { generateSy, nativeRollout } from '../../src/native/index.js';
import { fitCmdp } from '../../src/policy/cmdp.js';
import { decisionObjective, fitDfcl } from '../../src/policy/dfcl.js';
import { greedyActions, searchScoredLambda } from '../../src/policy/scored.js';
import { buildFeatures } from '../../src/sim/features.js';
import type { ArmOutcomes } from '../../src/sim/arm-outcomes.js';
import { solve } from '../../src/solve/index.js';
import { methodsByName } from '../../src/eval/methods.js';
import { tempDir } from '../helpers/fixtures.js';

// ------------------------------------------------------------ the tiny fixture
// Two rounds, one binary state g (constant), actions {0: control, 1: coupon}. Immediate value
// u(g, a) = r − λc: g = 0: control r = 1, coupon r = 3, c = 1; g = 1: control r = 2, coupon
// r = 2.3, c = 1. Round 1 adds 2 to the reward when round 0 gave a coupon (a carry-over).
const LAMBDA = 0.5;
const R = [[1, 3], [2, 2.3]];
const C = [[0, 1], [0, 1]];
const u = (g: number, a: number) => R[g][a] - LAMBDA * C[g][a];
// closed form: Q1(g, a, h) = u(g, a) + 2h;  Q0(g, a) = u(g, a) + max_a' Q1(g, a', h = [a = 1])
const q1 = (g: number, a: number, h: number) => u(g, a) + 2 * h;
const q0 = (g: number, a: number) => u(g, a) + Math.max(q1(g, 0, a), q1(g, 1, a));

function fixture(users: number, seed: number, actionsOf?: (i: number) => [number, number]): Trajectories {
  const T = 2;
  const states = new Float32Array(users * T);
  const actions = new Int32Array(users * T);
  const rewards = new Float32Array(users * T);
  const costs = new Float32Array(users * T);
  for (let i = 0; i < users; i++) {
    const s = new CounterStream(seed, i, 0, 3);
    const g = actionsOf ? i % 2 : s.uniform() < 0.5 ? 0 : 1;
    const acts = actionsOf ? actionsOf(i) : [s.uniform() < 0.5 ? 0 : 1, s.uniform() < 0.5 ? 0 : 1];
    for (let t = 0; t < T; t++) {
      const c = i * T + t;
      states[c] = g;
      actions[c] = acts[t];
      rewards[c] = R[g][acts[t]] + (t === 1 && acts[0] === 1 ? 2 : 0);
      costs[c] = C[g][acts[t]];
    }
  }
  return {
    source: 'fixture',
    users,
    rounds: T,
    stateDim: 1,
    actionDims: 1,
    stateNames: ['g'],
    actionEncodings: [{ column: 'coupon', values: [0, 1], control: 0 }],
    categorical: [],
    userIds: Array.from({ length: users }, (_, i) => String(i)),
    gamma: 1,
    lengths: new Int32Array(users).fill(T),
    mask: new Uint8Array(users * T).fill(1),
    states,
    actions,
    rewards,
    costs,
    rtg: new Float32Array(users * T),
    ctg: new Float32Array(users * T),
  };
}

describe('CMDP: fitted-Q iteration at a fixed λ', () => {
  it('the Bellman residual falls over the iterations and the greedy decisions equal the closed-form Q', async () => {
    const train = fixture(2000, 5);
    const fit = await fitCmdp(train, { lambda: LAMBDA, iterations: 4, rounds: 300, depth: 4, eta: 0.3, earlyStopping: 0, seed: 1 });
    try {
      console.log(`CMDP fixture, λ = ${LAMBDA}: Bellman residual per iteration ${fit.iterations.map((i) => i.bellmanResidual.toFixed(4)).join(', ')}; change ${fit.iterations.map((i) => i.change.toFixed(4)).join(', ')}`);
      const res = fit.iterations.map((i) => i.bellmanResidual);
      for (let k = 1; k < res.length; k++) expect(res[k]).toBeLessThan(res[k - 1] + 1e-3);
      expect(res[res.length - 1]).toBeLessThan(0.02 * res[0]);
      // every (g, a0) path: decisions at round 0 (from g) and at round 1 (from g and the history)
      const paths = fixture(4, 1, (i) => [i < 2 ? 0 : 1, 0]);
      const m = buildFeatures(paths, fit.q.layout);
      const s = await fit.scorer.score(m.x);
      const chosen = greedyActions(s.reward, s.cost, fit.scorer.K, 0);
      for (let r = 0; r < m.rows; r++) {
        const i = Math.floor(m.cells[r] / 2);
        const t = m.cells[r] % 2;
        const g = i % 2;
        const h = paths.actions[i * 2];
        const truth = t === 0 ? [q0(g, 0), q0(g, 1)] : [q1(g, 0, h), q1(g, 1, h)];
        const want = truth[1] > truth[0] ? 1 : 0;
        expect(chosen[r], `user g=${g}, round ${t}, h=${h}: Q ${truth.join('/')} vs fitted ${s.reward[r * 2].toFixed(3)}/${s.reward[r * 2 + 1].toFixed(3)}`).toBe(want);
        for (let a = 0; a < 2; a++) expect(Math.abs(s.reward[r * 2 + a] - truth[a])).toBeLessThan(0.05);
      }
      // the planning matters here: g = 1 gets the coupon at round 0 though it is myopically worse
      expect(u(1, 1)).toBeLessThan(u(1, 0));
      expect(q0(1, 1)).toBeGreaterThan(q0(1, 0));
    } finally {
      fit.release();
    }
  });
});

describe('DFCL on SY static (no sequential effects)', () => {
  it("reaches its measured share of the myopic Oracle's incremental revenue at 0.5x; the decision-focused step is judged on held-out users", async () => {
    const env = { seed: 7, sequential: false };
    const config = resolveSyConfig(env);
    const train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users: 3000 })));
    const held = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, seed: 8, users: 2000 })));
    const fit = await fitDfcl(train, { seed: 1, rounds: 150 });
    try {
      const ids = Uint32Array.from({ length: 2000 }, (_, i) => 100000 + i);  // fresh users
      const logging = await nativeRollout({ env: config, rounds: config.rounds, budget: Infinity, policy: 'random', lambda: 0, userIds: ids });
      const budget = 0.5 * logging.cost;
      const d = await searchScoredLambda({ env: config, rounds: config.rounds, userIds: ids, template: train, scorer: fit.scorer, budget });
      const o = await solve({ policy: 'oracle', users: { ids }, budget, env, lambdaMax: 20 });
      const none = await nativeRollout({ env: config, rounds: config.rounds, budget: 1e-9, policy: 'random', lambda: 0, userIds: ids });
      const share = (d.revenue - none.revenue) / (o.revenue - none.revenue);
      const jHeld = await decisionObjective(fit.scorer, held, fit.lambdas);
      console.log(
        `DFCL, SY static, 3000 training users, 2000 fresh users, budget ${budget.toFixed(0)} (0.5x of the logging spend ${logging.cost.toFixed(0)}): ` +
          `DFCL revenue ${d.revenue.toFixed(0)} (λ* ${d.lambda.toFixed(3)}, BARate ${(d.cost / budget).toFixed(3)}, ${d.rollouts} rollouts), Oracle ${o.revenue.toFixed(0)} (λ* ${o.lambda.toFixed(3)}), no coupon ${none.revenue.toFixed(0)}: ` +
          `DFCL reaches ${(100 * share).toFixed(1)}% of the Oracle's incremental revenue. Decision objective (value per user, mean over λ ${fit.lambdas.join('/')}) on the held-out quarter of the log: ` +
          `two-stage ${fit.objective.before.toFixed(3)}, fine-tuned ${fit.objective.after.toFixed(3)} (difference ${fit.objective.difference.mean.toFixed(3)} ± ${fit.objective.difference.se.toFixed(3)} SE); kept ${fit.objective.kept}; the kept scorer on 2000 other logged users: ${jHeld.toFixed(3)}`,
      );
      expect(d.cost).toBeLessThanOrEqual(budget);
      expect(d.cost / budget).toBeGreaterThanOrEqual(0.9);
      expect(share).toBeGreaterThanOrEqual(0.9);
    } finally {
      fit.release();
    }
  });
});

/** An eval dataset of SY seed 3 (4 rounds; `users` training users, 300 test users), quick settings and a cache folder. */
async function evalFixture(users: number) {
  const env = { seed: 3, sequential: true, rounds: 4 };
  const config = resolveSyConfig(env);
  const train = buildTrajectories(syLogToInteractionLog(await generateSy({ ...env, users })));
  const testIds = Uint32Array.from({ length: 300 }, (_, i) => 50000 + i);
  const logging = await nativeRollout({ env: config, rounds: config.rounds, budget: Infinity, policy: 'random', lambda: 0, userIds: testIds });
  const data = { preset: 'sy', seed: 3, kind: 'sy' as const, env, config, rounds: config.rounds, train, testIds, referenceSpend: logging.cost };
  return { data, settings: { quick: true, threads: 0, training: {}, oracleLambdaMax: 20 }, logging, tmp: tempDir() };
}

describe('saco eval entries', () => {
  it('cmdp25/50/75 and dfcl are registered; cmdp50 fits, caches and runs within the budget', async () => {
    expect(methodsByName(['cmdp25', 'cmdp50', 'cmdp75', 'dfcl']).map((m) => m.label)).toEqual(['CMDP25', 'CMDP50', 'CMDP75', 'DFCL']);
    const { data, settings, logging, tmp } = await evalFixture(400);
    try {
      const cache = { dir: tmp.dir, file: (name: string) => join(tmp.dir, name) };
      const [cmdp] = methodsByName(['cmdp50']);
      const lines: string[] = [];
      const first = await cmdp.prepare!({ data, settings, cache, progress: (l) => lines.push(l) });
      expect(first.fitted).toBe(true);
      expect(lines.some((l) => l.includes('Bellman residual'))).toBe(true);
      first.release?.();
      const again = await cmdp.prepare!({ data, settings, cache, progress: () => {} });
      expect(again.fitted).toBe(false);
      const budget = 0.5 * logging.cost;
      const out = await cmdp.run({ data, settings, budget, progress: () => {} }, again.artifact);
      again.release?.();
      console.log(`cmdp50 on 300 fresh SY users (4 rounds), budget ${budget.toFixed(0)}: revenue ${out.revenue.toFixed(0)}, cost ${out.cost.toFixed(0)}, coupons ${out.coupons}, withheld ${out.blocked}; Bellman residuals ${JSON.stringify((again.info as { bellmanResidual: number[] }).bellmanResidual.map((v) => +v.toFixed(2)))}`);
      expect(out.cost).toBeLessThanOrEqual(budget);
      expect(out.lambda).toBeNull();
    } finally {
      tmp.cleanup();
    }
  });

  it('dfcl caches a start of models per arm and reads it back: the same models, the same plan', async () => {
    // 1,000 users × 4 rounds: ≥ 500 fit rows per arm, so both starts are fitted; on this seed the held-out J keeps the models per arm
    const { data, settings, logging, tmp } = await evalFixture(1000);
    try {
      const cache = { dir: tmp.dir, file: (name: string) => join(tmp.dir, name) };
      const [dfcl] = methodsByName(['dfcl']);
      const first = await dfcl.prepare!({ data, settings, cache, progress: () => {} });
      const again = await dfcl.prepare!({ data, settings, cache, progress: () => {} });
      try {
        expect(first.fitted).toBe(true);
        expect(again.fitted).toBe(false);
        expect((first.info as { arms: string }).arms).toBe('per-arm');
        const [a, b] = [first.artifact as { model: ArmOutcomes }, again.artifact as { model: ArmOutcomes }];
        expect(a.model.outcomes.length).toBe(4);
        expect(b.model.armModel).toEqual(a.model.armModel);
        b.model.outcomes.forEach((o, i) => expect(Buffer.from(o.save()).equals(Buffer.from(a.model.outcomes[i].save()))).toBe(true));
        const budget = 0.4 * logging.cost;
        const [ra, rb] = [await dfcl.run({ data, settings, budget, progress: () => {} }, first.artifact), await dfcl.run({ data, settings, budget, progress: () => {} }, again.artifact)];
        expect(rb.revenue).toBe(ra.revenue);
        expect(rb.lambda).toBe(ra.lambda);
        expect(ra.cost).toBeLessThanOrEqual(budget);
      } finally {
        first.release?.();
        again.release?.();
      }
    } finally {
      tmp.cleanup();
    }
  });
});
