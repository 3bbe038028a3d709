/**
 * DFCL's decision-focused fine-tune (src/policy/dfcl.ts) against a plain recomputation: the
 * decision objective J (IPW value per user of argmax r̃ − λ·c̃, mean over the λ grid) is
 * recomputed here cell by cell from the logged outcomes with the logging policy's true
 * propensity 1/K, and the corrected scores from the booster's scores and the correction's
 * formula. Whether the fine-tune raises J on users nothing saw (issue 14's gate) is not asserted
 * from the default start: on this seed the paired gain of its last epoch is −0.06 ± 0.20 SE per
 * user (J ≈ 84), inside the noise, and with 8,000 training users bench/dfcl.ts measured no gain;
 * the test prints it. What it holds there is the computation and the keep rule: the fine-tune is
 * kept only when its validation J rose by more than 2 paired standard errors. From a start too
 * weak to represent the uplift, it asserts the gain.
 */
import { describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, selectUsers, type Trajectories } from '../../src/data/trajectories.js';
import { generateSy } from '../../src/native/index.js';
import { dfclScorer, fitDfcl, spendGrid } from '../../src/policy/dfcl.js';
import type { InteractionLog } from '../../src/data/log.js';
import { CounterStream } from '../../src/data/rng.js';
import { outcomeScorer, type ActionScorer } from '../../src/policy/scored.js';
import { buildFeatures } from '../../src/sim/features.js';
import { validationUsers } from '../../src/sim/outcome.js';

/** J per user, by a plain loop: Σ over the user's cells of [argmax_a r − λc = logged]·(r − λc)·K, mean over λ. */
async function plainObjective(scorer: ActionScorer, traj: Trajectories, lambdas: number[]): Promise<Float64Array> {
  const m = buildFeatures(traj, scorer.layout);
  const s = await scorer.score(m.x);
  const K = scorer.K;
  const out = new Float64Array(traj.users);
  for (let r = 0; r < m.rows; r++) {
    const cell = m.cells[r];
    const logged = traj.actions[cell];  // one action dimension: the joint index is the value index
    for (const lambda of lambdas) {
      let arg = 0;
      for (let a = 1; a < K; a++) if (s.reward[r * K + a] - lambda * s.cost[r * K + a] > s.reward[r * K + arg] - lambda * s.cost[r * K + arg]) arg = a;
      if (arg === logged) out[Math.floor(cell / traj.rounds)] += ((traj.rewards[cell] - lambda * traj.costs[cell]) * K) / lambdas.length;
    }
  }
  return out;
}

const mean = (v: Float64Array) => v.reduce((a, b) => a + b, 0) / v.length;

/** Per-user b − a and its standard error, recomputed plainly (not with the module's own statistics). */
function paired(a: Float64Array, b: Float64Array): { d: Float64Array; se: number } {
  const d = b.map((v, i) => v - a[i]);
  const m = mean(d);
  return { d, se: Math.sqrt(d.reduce((x, v) => x + (v - m) ** 2, 0) / (d.length - 1) / d.length) };
}

const users = 3000;
const freshUsers = 8000;

/** One log of SY static seed 7: the first 3,000 users train, the rest are fresh (same world, never seen). */
async function staticWorld(): Promise<{ train: Trajectories; fresh: Trajectories }> {
  const all = buildTrajectories(syLogToInteractionLog(await generateSy(resolveSyConfig({ seed: 7, sequential: false, users: users + freshUsers }))));
  return { train: selectUsers(all, Array.from({ length: users }, (_, i) => i)), fresh: selectUsers(all, Array.from({ length: freshUsers }, (_, i) => users + i)) };
}

/**
 * One round, two arms drawn 50/50: treating earns +0.02 where x > 0 and −0.01 elsewhere and
 * costs 0.1, so every decision changes below λ = 0.2.
 */
function cheapCouponLog(): Trajectories {
  const n = 4000;
  const s = new CounterStream(11, 0, 0, 7);
  const x = Float64Array.from({ length: n }, () => s.normal());
  const actions = Int32Array.from({ length: n }, () => (s.uniform() < 0.5 ? 1 : 0));
  const log: InteractionLog = {
    source: 'cheap-coupon',
    rows: n,
    userIndex: Int32Array.from({ length: n }, (_, i) => i),
    roundIndex: new Int32Array(n),
    userIds: Array.from({ length: n }, (_, i) => String(i)),
    stateNames: ['x'],
    states: x,
    actionEncodings: [{ column: 'treatment', values: [0, 1], control: 0 }],
    actions,
    cost: Float64Array.from(actions, (a) => 0.1 * a),
    reward: Float64Array.from(actions, (a, i) => 0.1 + a * (x[i] > 0 ? 0.02 : -0.01) + 0.01 * s.normal()),
    categorical: [],
    propensity: new Float64Array(n).fill(0.5),
  };
  return buildTrajectories(log);
}

describe('DFCL: the decision-focused fine-tune', () => {
  it('scores, reports J and keeps the fine-tune as a plain recomputation says (SY static); prints its gain on fresh users', async () => {
    const { train, fresh } = await staticWorld();
    const fit = await fitDfcl(train, { seed: 1, rounds: 150 });
    try {
      const base = outcomeScorer(fit.model);
      // the fine-tune's last epoch, kept or not
      const c = fit.objective.trace[fit.objective.trace.length - 1].correction;
      const tuned = dfclScorer(fit.model, c);
      // the corrected scorer is the booster's scores plus the correction's formula, row by row
      const m = buildFeatures(fresh, base.layout);
      const x = m.x.subarray(0, 50 * m.cols);
      const [b, s] = [await base.score(x), await tuned.score(x)];
      const Q = 1 + c.columns.length + (c.upliftScale ? 2 : 0);
      for (let r = 0; r < 50; r++) {
        for (let a = 0; a < c.K; a++) {
          const phi = [1, ...c.columns.map((j, q) => (x[r * m.cols + j] - c.mean[q]) / c.scale[q])];
          if (c.upliftScale) phi.push((b.reward[r * c.K + a] - b.reward[r * c.K + c.control]) / c.upliftScale[0], (b.cost[r * c.K + a] - b.cost[r * c.K + c.control]) / c.upliftScale[1]);
          let dr = 0;
          let dc = 0;
          for (let q = 0; q < Q; q++) [dr, dc] = [dr + c.reward[a * Q + q] * phi[q], dc + c.cost[a * Q + q] * phi[q]];
          expect(s.reward[r * c.K + a]).toBeCloseTo(b.reward[r * c.K + a] + dr, 9);
          expect(s.cost[r * c.K + a]).toBeCloseTo(b.cost[r * c.K + a] + dc, 9);
        }
      }
      // the reported objectives are J on the fit's validation users (propensities: the log's arm shares, ≈ 1/K)
      const held = validationUsers(train.users, 0.25, 1 + 101);
      const val = selectUsers(train, Array.from({ length: train.users }, (_, i) => i).filter((i) => held[i]));
      const [v0, v1] = [await plainObjective(base, val, fit.lambdas), await plainObjective(tuned, val, fit.lambdas)];
      const [valStart, valTuned] = [mean(v0), mean(v1)];
      expect(Math.abs(valStart - fit.objective.before)).toBeLessThan(0.03 * Math.abs(valStart));
      // kept only if the validation gain exceeds 2 standard errors of the paired difference (keepMargin)
      const gain = paired(v0, v1);
      const keep = mean(gain.d) > 2 * gain.se;
      expect(fit.objective.kept).toBe(keep ? 'decision-focused' : 'two-stage');
      expect(fit.correction === null).toBe(!keep);
      expect(Math.abs(fit.objective.after - (keep ? valTuned : valStart))).toBeLessThan(0.03 * Math.abs(valStart));
      // the gate: fresh users, paired per user
      const [j0, j1] = [await plainObjective(base, fresh, fit.lambdas), await plainObjective(tuned, fresh, fit.lambdas)];
      const { d, se } = paired(j0, j1);
      console.log(
        `DFCL fine-tune, SY static seed 7, ${users} training users (${fit.objective.trace[fit.objective.trace.length - 1].epoch} epochs, kept ${fit.objective.kept}): J on its validation users ${valStart.toFixed(3)} → ${valTuned.toFixed(3)} (${mean(gain.d).toFixed(3)} ± ${gain.se.toFixed(3)} SE); ` +
          `on ${freshUsers} fresh users ${mean(j0).toFixed(3)} → ${mean(j1).toFixed(3)} (paired difference ${mean(d).toFixed(3)} ± ${se.toFixed(3)} SE)`,
      );
    } finally {
      fit.release();
    }
  });

  it('from a misspecified start (one-split trees, 15 per head) raises J on fresh users by many standard errors: the fine-tune is itself, not a no-op', async () => {
    // At the default start (depth 3, up to 300 trees) there is ~1.4% of J left to gain on SY and
    // the fine-tune finds none (README); a start that cannot represent the uplift leaves room.
    const { train, fresh } = await staticWorld();
    // pooled: one-split trees of the action one-hot add one uplift for everyone (models per arm would not be misspecified)
    const fit = await fitDfcl(train, { seed: 1, rounds: 15, depth: 1, arms: 'pooled' });
    try {
      expect(fit.objective.kept).toBe('decision-focused');
      const [j0, j1] = [await plainObjective(outcomeScorer(fit.model), fresh, fit.lambdas), await plainObjective(fit.scorer, fresh, fit.lambdas)];
      const { d, se } = paired(j0, j1);
      console.log(`DFCL fine-tune from a depth-1 start, SY static seed 7: J on ${freshUsers} fresh users ${mean(j0).toFixed(3)} → ${mean(j1).toFixed(3)} (paired difference ${mean(d).toFixed(3)} ± ${se.toFixed(3)} SE)`);
      expect(mean(d)).toBeGreaterThan(5 * se);
    } finally {
      fit.release();
    }
  });

  it('its λ grid: where the greedy allocation spends 80/60/40/20% of its spend at λ = 0 (closed form)', () => {
    // 10 rows, arm 1 earns u = 1..10 over the free control and costs 1: at λ it is given where u > λ
    const K = 2;
    const reward = Float64Array.from({ length: 20 }, (_, i) => (i % 2 ? (i + 1) / 2 : 0));
    const cost = Float64Array.from({ length: 20 }, (_, i) => i % 2);
    const grid = spendGrid({ rows: 10, K, reward, cost }, [0.8, 0.6, 0.4, 0.2]);
    [2, 4, 6, 8].forEach((lambda, i) => expect(grid[i]).toBeCloseTo(lambda, 5));
    expect(spendGrid({ rows: 10, K, reward, cost: new Float64Array(20) }, [0.5])).toEqual([0]);
  });

  it('on a log whose coupon costs a tenth of a unit reward, the grid sits where decisions change and the plan at λ = 0 still treats', async () => {
    // (a grid of [0.25, 0.5, 1, 2] there taught "never treat")
    const train = cheapCouponLog();
    const fit = await fitDfcl(train, { seed: 1, rounds: 60 });
    try {
      expect(Math.max(...fit.lambdas)).toBeLessThan(0.2);
      const m = buildFeatures(train, fit.scorer.layout);
      const sc = await fit.scorer.score(m.x);
      let right = 0;
      for (let r = 0; r < m.rows; r++) if ((sc.reward[r * 2 + 1] > sc.reward[r * 2]) === (train.states[m.cells[r]] > 0)) right++;
      console.log(`DFCL on a cheap-coupon log: λ grid ${fit.lambdas.map((l) => l.toFixed(4)).join(', ')}, kept ${fit.objective.kept}, λ = 0 treats where x > 0 on ${((100 * right) / m.rows).toFixed(1)}% of users`);
      expect(right / m.rows).toBeGreaterThan(0.95);
    } finally {
      fit.release();
    }
    // on the old fixed grid no decision changes, so J cannot rise: the start is kept (a tie kept the fine-tune before)
    const fixed = await fitDfcl(train, { seed: 1, rounds: 60, lambdas: [0.25, 0.5, 1, 2] });
    try {
      expect(fixed.objective.kept).toBe('two-stage');
      expect(fixed.correction).toBeNull();
    } finally {
      fixed.release();
    }
  });

  it("its start: a pooled model of one-split trees cannot tell who gains from the coupon, models per arm can, and 'select' keeps those by a plainly recomputed held-out J", async () => {
    // depth 1: the pooled model is additive in x and the action, so its uplift is one number for
    // everyone; a model per arm is a function of x for each arm, so their difference is not
    const train = cheapCouponLog();
    const opts = { seed: 1, rounds: 60, depth: 1, epochs: 0 };
    const select = await fitDfcl(train, opts);
    const pooledFit = await fitDfcl(train, { ...opts, arms: 'pooled' });
    try {
      expect(select.arms).toBe('per-arm');
      expect(select.model.outcomes.length).toBe(2);
      expect(pooledFit.model.outcomes.length).toBe(1);
      const sel = select.selection!;
      expect(sel.candidates.map((c) => c.arms)).toEqual(['pooled', 'per-arm']);
      // J of each candidate on the held-out users over the union grid, by the plain loop
      const held = validationUsers(train.users, 0.25, 1 + 101);
      const val = selectUsers(train, Array.from({ length: train.users }, (_, i) => i).filter((i) => held[i]));
      const plain = [mean(await plainObjective(outcomeScorer(pooledFit.model), val, sel.lambdas)), mean(await plainObjective(outcomeScorer(select.model), val, sel.lambdas))];
      sel.candidates.forEach((c, i) => expect(c.heldOut).toBeCloseTo(plain[i], 9));
      expect(plain[1]).toBeGreaterThan(plain[0]);
      // who each start treats at λ = 0: per arm where x > 0; pooled everyone alike
      const right = async (model: typeof select.model) => {
        const m = buildFeatures(train, pooledFit.scorer.layout);
        const sc = await outcomeScorer(model).score(m.x);
        let n = 0;
        for (let r = 0; r < m.rows; r++) if ((sc.reward[r * 2 + 1] > sc.reward[r * 2]) === (train.states[m.cells[r]] > 0)) n++;
        return n / m.rows;
      };
      const [perArmRight, pooledRight] = [await right(select.model), await right(pooledFit.model)];
      console.log(`DFCL start, depth-1 trees on the cheap-coupon log: held-out J pooled ${plain[0].toFixed(4)}, per arm ${plain[1].toFixed(4)}; treats the right users ${(100 * pooledRight).toFixed(1)}% / ${(100 * perArmRight).toFixed(1)}%`);
      expect(perArmRight).toBeGreaterThan(0.9);
      expect(pooledRight).toBeLessThan(0.6);
    } finally {
      select.release();
      pooledFit.release();
    }
    // a choice that is not one is refused, naming the choices
    await expect(fitDfcl(train, { ...opts, arms: 'each' as 'pooled' })).rejects.toThrow(/arms.*'select', 'auto', 'per-arm', 'pooled'/);
  });

  it('with no epochs is the two-stage model, and refuses bad options', async () => {
    const train = buildTrajectories(syLogToInteractionLog(await generateSy(resolveSyConfig({ seed: 3, sequential: false, users: 300, rounds: 3 }))));
    const fit = await fitDfcl(train, { seed: 1, rounds: 20, epochs: 0 });
    try {
      expect(fit.correction).toBeNull();
      expect(fit.objective.kept).toBe('two-stage');
      expect(fit.objective.after).toBe(fit.objective.before);
    } finally {
      fit.release();
    }
    await expect(fitDfcl(train, { epochs: -1 })).rejects.toThrow(/epochs/);
    await expect(fitDfcl(train, { basis: 'cubic' as 'linear' })).rejects.toThrow(/basis/);
    await expect(fitDfcl(train, { temperature: 0 })).rejects.toThrow(/temperature/);
    await expect(fitDfcl(train, { keepMargin: -1 })).rejects.toThrow(/keepMargin/);
  });
});
