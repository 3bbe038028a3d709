/**
 * The `expected` recipe: nothing fed at round t depends on the action taken at t (the to-go
 * tokens carry the realised past only), its weights come from expected outcomes, and with a
 * perfect outcome model (SY's truth) the spend falls with λ over the whole budget range.
 */
import { describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, splitByUser } from '../../src/data/trajectories.js';
import { ArgumentError } from '../../src/errors.js';
import { withPastTokens } from '../../src/model/stats.js';
import { generateSy, loadNativeModel, nativeRollout } from '../../src/native/index.js';
import { trainCodt } from '../../src/native/train-engine.js';
import { oracleAdvantages } from '../helpers/oracle-advantages.js';

const config = resolveSyConfig({ users: 3000, rounds: 5, seed: 4 });

describe("the 'expected' recipe", () => {
  it('feeds at round t only what happened before t: changing r_t and c_t changes no token at or before t', async () => {
    const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ ...config, users: 50 })));
    const a = withPastTokens(traj);
    const changed = { ...traj, rewards: traj.rewards.slice(), costs: traj.costs.slice() };
    for (let i = 0; i < traj.users; i++) {
      changed.rewards[i * 5 + 2] += 100;
      changed.costs[i * 5 + 2] += 7;
    }
    const b = withPastTokens(changed);
    for (let i = 0; i < traj.users; i++) {
      for (let t = 0; t < 5; t++) {
        const k = i * 5 + t;
        if (t <= 2) expect([b.rtg[k], b.ctg[k]]).toEqual([a.rtg[k], a.ctg[k]]);
        else {
          expect(b.rtg[k]).toBeCloseTo(a.rtg[k] - 100, 3);
          expect(b.ctg[k]).toBeCloseTo(a.ctg[k] - 7, 3);
        }
      }
      // the closed form: minus the sums of the rounds before
      expect(a.rtg[i * 5 + 3]).toBeCloseTo(-(traj.rewards[i * 5] + traj.rewards[i * 5 + 1] + traj.rewards[i * 5 + 2]), 3);
    }
  });

  it('needs the expected outcomes', async () => {
    const traj = buildTrajectories(syLogToInteractionLog(await generateSy({ ...config, users: 50 })));
    await expect(trainCodt(traj, { variant: 'expected', epochs: 1 })).rejects.toThrow(ArgumentError);
  });

  // A small model (3,000 users, 8 epochs) for the suite's sake: the README's gate rows use the
  // default model on 10,000 users (npm run bench -- --only=quality).
  it('with a perfect outcome model, the planned spend falls with λ from most of the λ = 0 spend to ~none', async () => {
    const traj = buildTrajectories(syLogToInteractionLog(await generateSy(config)));
    const { train, test } = splitByUser(traj, { testFraction: 0.2, seed: 1 });
    const relabel = oracleAdvantages(config, train);
    const { model } = await trainCodt(train, { variant: 'expected', relabel, epochs: 8, dModel: 32, layers: 2, heads: 2, dropout: 0, lr: 2e-3, seed: 3 });
    expect(model.meta.targets.rtg.every((v) => v === 0)).toBe(true);
    expect(model.meta.normalization.lambdaMax).toBeCloseTo(relabel.lambdaMax, 6);
    const h = loadNativeModel(model);
    try {
      const ids = Uint32Array.from(test.userIds, Number);
      const spend: number[] = [];
      for (let g = 0; g <= 10; g++) {
        const r = await nativeRollout({ env: { ...config, users: 1 }, rounds: 5, budget: Infinity, policy: 'codt', lambda: (g / 10) * relabel.lambdaMax, model: h.id, userIds: ids });
        spend.push(r.cost);
      }
      const oracleAtZero = await nativeRollout({ env: { ...config, users: 1 }, rounds: 5, budget: Infinity, policy: 'oracle', lambda: 0, userIds: ids });
      console.log(`C(λ) over 11 λ in [0, ${relabel.lambdaMax.toFixed(2)}]: ${spend.map((c) => (c / oracleAtZero.cost).toFixed(3)).join(', ')} of the Oracle's λ = 0 spend`);
      expect(spend[0] / oracleAtZero.cost).toBeGreaterThan(0.7);
      expect(spend[10] / oracleAtZero.cost).toBeLessThan(0.1);
      for (let g = 1; g <= 10; g++) expect((spend[g] - spend[g - 1]) / oracleAtZero.cost).toBeLessThan(0.05);
    } finally {
      h.unload();
    }
  });
});
