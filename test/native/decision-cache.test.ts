/**
 * The decision cache (native/decision_cache.h): a decision keeps each user's keys and values,
 * and the user's next round continues them in place and computes only its new tokens. Held against the same
 * model with the cache off: every logit of every round is the same bits (the row kernel is
 * row-independent on AVX-512; elsewhere the cache stays off), a history that differs in any
 * value finds nothing, concurrent calls agree, and the cache holds to its capacity.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CodtConfig } from '../../src/model/config.js';
import { loadNativeModel, nativeDecisionCache, nativeForward, nativeForwardSync, type NativeForwardInputs, type NativeModel } from '../../src/native/index.js';
import { decideSync } from '../../src/solve/index.js';
import { forwardInputs, randomModel, usersRounds } from '../helpers/model.js';

const rowsIndependent = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const config: CodtConfig = { stateDim: 5, actionSizes: [3, 2], context: 6, dModel: 64, layers: 2, heads: 2, dropout: 0, variant: 'expected' };
const model = randomModel(config, 11);

// every user's whole campaign (6 rounds); a round-T decision reads its first T rounds
const campaign: NativeForwardInputs = forwardInputs(config, 37, 6, 5);

const firstRounds = (x: NativeForwardInputs, users: number[], T: number): NativeForwardInputs => usersRounds(config, x, users, T);

function withCache(capacity: number, run: (h: NativeModel, reference: NativeModel) => Promise<void> | void) {
  return async () => {
    const h = loadNativeModel(model);
    const reference = loadNativeModel(model);
    try {
      nativeDecisionCache(h, capacity);
      nativeDecisionCache(reference, 0);
      await run(h, reference);
    } finally {
      h.unload();
      reference.unload();
    }
  };
}

const users = Array.from({ length: 37 }, (_, u) => u); // two blocks of 16 and a partial one

describe.runIf(rowsIndependent)('the decision cache (AVX-512: same bits with it or without it)', () => {
  it('serves round after round from the previous round, with the same logits as recomputing', withCache(32 << 20, async (h, reference) => {
    for (let T = 1; T <= 6; T++) {
      const x = firstRounds(campaign, users, T);
      const cached = await nativeForward(h, x, 'incremental');
      expect(Array.from(cached)).toEqual(Array.from(await nativeForward(reference, x, 'incremental')));
      const s = nativeDecisionCache(h);
      expect(s.hits).toBe(37 * Math.max(0, T - 2)); // from round 2 on every user found its previous round (round 0's is not kept)
    }
    // one entry per user: each round continued the previous round's (round 6 fills the context and is kept for a repeated request)
    expect(nativeDecisionCache(h).entries).toBe(37);
    expect(nativeDecisionCache(reference).entries).toBe(0);
  }));

  it('finds the previous round again for a repeated request (in the entry the first request continued), without growing', withCache(32 << 20, async (h, reference) => {
    await nativeForward(h, firstRounds(campaign, users, 3), 'incremental');
    const x = firstRounds(campaign, users, 4);
    const want = Array.from(await nativeForward(reference, x, 'incremental'));
    const sizes: number[] = [];
    for (let repeat = 0; repeat < 3; repeat++) {
      const hits = nativeDecisionCache(h).hits;
      expect(Array.from(await nativeForward(h, x, 'incremental'))).toEqual(want);
      expect(nativeDecisionCache(h).hits - hits).toBe(37);
      sizes.push(nativeDecisionCache(h).bytes);
    }
    expect(new Set(sizes).size).toBe(1);
    expect(nativeDecisionCache(h).entries).toBe(37);
    // and the round after still continues from it
    const y = firstRounds(campaign, users, 5);
    expect(Array.from(await nativeForward(h, y, 'incremental'))).toEqual(Array.from(await nativeForward(reference, y, 'incremental')));
  }));

  it('serves one user per call the same way (nativeForwardSync and decideSync)', withCache(32 << 20, (h, reference) => {
    for (const u of [0, 20]) {
      for (let T = 1; T <= 6; T++) {
        const x = firstRounds(campaign, [u], T);
        expect(Array.from(nativeForwardSync(h, x))).toEqual(Array.from(nativeForwardSync(reference, x)));
      }
    }
    expect(nativeDecisionCache(h).hits).toBe(2 * 4);
    // decideSync: the round-5 decision of a user whose round 4 was decided reads the cache
    const state = [0.1, -0.2, 0.3, 0, 0.5];
    const history = { states: [[0, 0, 0, 0, 0], [0.1, 0.1, 0, 0, 0], [0.2, 0, 0, 0, 0.1], [0, 0, 1, 0, 0]], actions: [[0, 1], [2, 0], [1, 1], [0, 0]], rewards: [3, 0, 1, 0], costs: [1, 0, 0.5, 0] };
    const lambda = 0.5;
    const round4 = { states: history.states.slice(0, 3), actions: history.actions.slice(0, 3), rewards: history.rewards.slice(0, 3), costs: history.costs.slice(0, 3) };
    decideSync({ model: h, lambda, state: history.states[3], history: round4 });
    const before = nativeDecisionCache(h).hits;
    const got = decideSync({ model: h, lambda, state, history });
    expect(nativeDecisionCache(h).hits).toBe(before + 1);
    expect(got).toEqual(decideSync({ model: reference, lambda, state, history }));
  }));

  it('finds nothing for a history that differs in one value, and recomputes it', withCache(32 << 20, async (h, reference) => {
    await nativeForward(h, firstRounds(campaign, users, 3), 'incremental');
    const x = firstRounds(campaign, users, 4);
    x.rtg[4 * 20 + 1] += 1e-3; // user 20's realised reward of round 0, as its to-go token of round 1 carries it
    const hits = nativeDecisionCache(h).hits;
    const got = await nativeForward(h, x, 'incremental');
    expect(Array.from(got)).toEqual(Array.from(await nativeForward(reference, x, 'incremental')));
    // every user but 20 continues from round 2; user 20 is computed from the start
    expect(nativeDecisionCache(h).hits - hits).toBe(36);
  }));

  // a serving call that mixes users seen last round with new ones: the kept users of a block
  // continue from their previous decision, the others are computed from the start in the same
  // products (with round 0's targets from the prefix cache where the block shares them)
  for (const shared of [false, true]) {
    it(`continues the kept users of a block that also holds new users (${shared ? 'one λ and round-0 targets: the prefix cache' : 'a λ per user'})`, withCache(32 << 20, async (h, reference) => {
      const world = shared ? { ...campaign, lambda: new Float32Array(37).fill(1.25), rtg: campaign.rtg.map((v, i) => (i % 6 === 0 ? 0 : v)), ctg: campaign.ctg.map((v, i) => (i % 6 === 0 ? 0 : v)) } : campaign;
      const seen = users.filter((u) => u % 3 !== 0); // 24 users decided at round 3; 13 are new at round 4
      await nativeForward(h, firstRounds(world, seen, 3), 'incremental');
      const x = firstRounds(world, users, 4);
      const hits = nativeDecisionCache(h).hits;
      expect(Array.from(await nativeForward(h, x, 'incremental'))).toEqual(Array.from(await nativeForward(reference, x, 'incremental')));
      expect(nativeDecisionCache(h).hits - hits).toBe(24);
      // every user's round 4 is kept now, new or not: round 5 continues all 37
      const y = firstRounds(world, users, 5);
      expect(Array.from(await nativeForward(h, y, 'incremental'))).toEqual(Array.from(await nativeForward(reference, y, 'incremental')));
      expect(nativeDecisionCache(h).hits - hits).toBe(24 + 37);
      expect(nativeDecisionCache(h).entries).toBe(37);
    }));
  }

  it('gives every concurrent call on the same users the same bits, and keeps one entry per user', withCache(32 << 20, async (h, reference) => {
    // an entry is taken out while a call computes into it: a call racing for the same user
    // finds nothing and computes that user from the start
    await nativeForward(h, firstRounds(campaign, users, 3), 'incremental');
    const x = firstRounds(campaign, users, 4);
    const want = Array.from(await nativeForward(reference, x, 'incremental'));
    const got = await Promise.all(Array.from({ length: 4 }, () => nativeForward(h, x, 'incremental')));
    for (const g of got) expect(Array.from(g)).toEqual(want);
    expect(nativeDecisionCache(h).entries).toBe(37);
    const hits = nativeDecisionCache(h).hits;
    const y = firstRounds(campaign, users, 5);
    expect(Array.from(await nativeForward(h, y, 'incremental'))).toEqual(Array.from(await nativeForward(reference, y, 'incremental')));
    expect(nativeDecisionCache(h).hits - hits).toBe(37);
  }));

  it('holds to its capacity, drops the least recently used, and is off at 0', withCache(40_000, async (h) => {
    for (let T = 1; T <= 5; T++) await nativeForward(h, firstRounds(campaign, users, T), 'incremental');
    const s = nativeDecisionCache(h);
    expect(s.bytes).toBeLessThanOrEqual(40_000);
    expect(s.entries).toBeGreaterThan(0);
    expect(s.entries).toBeLessThan(37); // one round's entries of 37 users do not fit
    nativeDecisionCache(h, 0);
    expect(nativeDecisionCache(h)).toMatchObject({ capacity: 0, bytes: 0, entries: 0 });
    await nativeForward(h, firstRounds(campaign, users, 2), 'incremental');
    expect(nativeDecisionCache(h).entries).toBe(0);
  }));
});
