/**
 * The spend curve measured after training: its warnings (closed forms on made-up curves),
 * and on SY the open-loop planned spend against the spend the same plan realises in the
 * ground truth (a rollout of the same users at the same λ).
 */
import { describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { resolveSyConfig } from '../../src/data/synth.js';
import { buildTrajectories, splitByUser } from '../../src/data/trajectories.js';
import { generateSy, loadNativeModel, nativeRollout } from '../../src/native/index.js';
import { trainCodt } from '../../src/native/train-engine.js';
import { spendCurve, spendCurveWarnings } from '../../src/policy/spend-curve.js';
import { oracleAdvantages } from '../helpers/oracle-advantages.js';

describe('spend curve warnings', () => {
  const lambdas = [0, 1, 2, 3, 4];
  it('none for a curve that falls from the reference to nothing', () => {
    expect(spendCurveWarnings({ lambdas, spend: [100, 60, 30, 10, 5], referenceSpend: 100 })).toEqual([]);
  });
  it('flat, not reaching zero, not using the budget, rising', () => {
    const flat = spendCurveWarnings({ lambdas, spend: [50, 49, 49, 48, 47], referenceSpend: 100 });
    expect(flat.join('\n')).toMatch(/flat over λ/);
    expect(flat.join('\n')).toMatch(/at λmax the plan still spends 47.0%/);
    expect(flat.join('\n')).toMatch(/at λ = 0 the plan spends only 50.0%/);
    const rising = spendCurveWarnings({ lambdas, spend: [100, 60, 70, 10, 5], referenceSpend: 100 });
    expect(rising).toEqual(['spend rises from λ = 1.000 to 2.000 by 10.0% of the reference']);
  });
});

describe('spend curve on SY', () => {
  it('open-loop planned spend tracks the spend the plan realises in the ground truth', async () => {
    const config = resolveSyConfig({ users: 3000, rounds: 5, seed: 4 });
    const { train, test } = splitByUser(buildTrajectories(syLogToInteractionLog(await generateSy(config))), { testFraction: 0.2, seed: 1 });
    const relabel = oracleAdvantages(config, train);
    const { model } = await trainCodt(train, { variant: 'expected', relabel, epochs: 8, dModel: 32, layers: 2, heads: 2, dropout: 0, lr: 2e-3, seed: 3 });
    const curve = await spendCurve(model, train, test, { seed: 1, points: 5 });
    console.log(`C(λ) open-loop: ${curve.spend.map((s) => s.toFixed(0)).join(', ')} (reference ${curve.referenceArm}: ${curve.referenceSpend.toFixed(0)})`);
    expect(curve.referenceArm).toBe('10');
    expect(curve.spend[0]).toBeGreaterThan(4 * curve.spend[4]);
    // capped to 300 of the 600 held-out users and an outcome model on 1,200 of the 2,400
    // training users (as a log of 250,000 users is): the same curve as a share of its reference,
    // to what a mean over 300 users and another outcome model move it (a few points)
    const capped = await spendCurve(model, train, test, { seed: 1, points: 5, limits: { curve: 300, outcomeModel: 1200 } });
    expect([capped.users, curve.users]).toEqual([300, 600]);
    for (let g = 0; g < 5; g++) expect(Math.abs(capped.spend[g] / capped.referenceSpend - curve.spend[g] / curve.referenceSpend), `λ ${curve.lambdas[g]}`).toBeLessThan(0.1);
    const h = loadNativeModel(model);
    try {
      for (const g of [0, 2, 4]) {
        const truth = await nativeRollout({ env: { ...config, users: 1 }, rounds: 5, budget: Infinity, policy: 'codt', lambda: curve.lambdas[g], model: h.id, userIds: Uint32Array.from(test.userIds, Number) });
        // open-loop over logged histories vs closed-loop in the truth: within 15% of the reference
        expect(Math.abs(curve.spend[g] - truth.cost)).toBeLessThan(0.15 * curve.referenceSpend);
      }
    } finally {
      h.unload();
    }
  });
});
