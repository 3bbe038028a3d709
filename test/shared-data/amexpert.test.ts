/**
 * A multi-round real log end to end: the AMExpert 2019 coupon campaigns in ../shared/data
 * (not committed with the project; see SOURCES.md there), read with schemas/amexpert.json
 * (campaigns joined for their start dates, rounds = campaigns ranked by start date, action =
 * coupon given or not, reward = redemptions, cost $0.05 per coupon given + $1 per redemption),
 * then train, fit-sim and a solve at 0.5x in the learned simulator. Skipped, with the reason
 * printed, where the folder is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import { loadSchemaFile } from '../../src/data/schema.js';
import type { Trajectories } from '../../src/data/trajectories.js';
import { trainCodt } from '../../src/policy/train.js';
import { fitSimulator, type Simulator } from '../../src/sim/simulator.js';
import { solve } from '../../src/solve/index.js';
import { SHARED_DATA } from '../helpers/fixtures.js';

const FILE = path.join(SHARED_DATA, 'amexpert2019_coupon_redemption_train.csv');
const CAMPAIGNS = path.join(SHARED_DATA, 'amexpert2019_campaigns.csv');
const SCHEMA = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'schemas', 'amexpert.json');
const present = existsSync(FILE) && existsSync(CAMPAIGNS);
if (!present) console.warn(`skipping AMExpert tests: ${FILE} not found (the shared datasets are not part of the repository)`);

const csv = (file: string) => readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));

/** Each campaign's round, by a plain parse of its start date (d/m/yy or d/m/yyyy) and a dense rank over the campaigns in the log. */
function campaignRounds(logged: Set<string>): Map<string, number> {
  const start = new Map<string, number>();
  for (const [id, , date] of csv(CAMPAIGNS)) {
    const [d, m, y] = date.split('/').map(Number);
    start.set(id, Date.UTC(y < 100 ? 2000 + y : y, m - 1, d));
  }
  const days = [...new Set([...logged].map((id) => start.get(id) as number))].sort((a, b) => a - b);
  return new Map([...logged].map((id) => [id, days.indexOf(start.get(id) as number)]));
}

describe.skipIf(!present)('AMExpert 2019 campaigns (shared data): a multi-round real log end to end', () => {
  let t: Trajectories;
  let sim: Simulator;
  beforeAll(async () => {
    t = (await readTrajectories(FILE, { schema: loadSchemaFile(SCHEMA) })).trajectories;
  }, 60_000);
  afterAll(() => sim?.dispose());

  it('reads as customers x campaigns ranked by start date: every coupon, redemption and empty round where the raw rows say', () => {
    const rows = csv(FILE); // id,campaign_id,coupon_id,customer_id,redemption_status
    const rounds = campaignRounds(new Set(rows.map((r) => r[1])));
    const given = new Map<string, number>(); // "customer round" → coupons
    const redeemed = new Map<string, number>();
    for (const [, campaign, , customer, status] of rows) {
      const key = `${customer} ${rounds.get(campaign)}`;
      given.set(key, (given.get(key) ?? 0) + 1);
      redeemed.set(key, (redeemed.get(key) ?? 0) + Number(status));
    }
    const R = Math.max(...rounds.values()) + 1;
    expect(t.rounds).toBe(R);
    expect(t.users).toBe(new Set(rows.map((r) => r[3])).size);
    for (let i = 0; i < t.users; i++) {
      for (let r = 0; r < R; r++) {
        const key = `${t.userIds[i]} ${r}`;
        const k = i * R + r;
        expect(t.actions[k]).toBe(given.has(key) ? 1 : 0);
        expect(t.rewards[k]).toBe(redeemed.get(key) ?? 0);
        expect(t.costs[k]).toBeCloseTo(0.05 * (given.get(key) ?? 0) + (redeemed.get(key) ?? 0), 4);
      }
    }
  });

  it('trains, fits a simulator that uses the history, and plans at 0.5x in it: spend at the budget, more redemptions than Random', async () => {
    const { model } = await trainCodt(t, { seed: 1, epochs: 6 });
    sim = await fitSimulator(t, { seed: 1 });
    const importance = sim.historyImportance();
    // the history features carry a real share of what the outcome heads split on
    expect(Math.max(...importance.map((h) => h.share))).toBeGreaterThan(0.1);
    const env = { kind: 'sim' as const, simulator: sim };
    const saco = await solve({ model, users: t, budget: '0.5x', env });
    const random = await solve({ policy: 'random', users: t, budget: '0.5x', env });
    for (const r of [saco, random]) {
      expect(r.baRate).toBeGreaterThanOrEqual(0.98);
      expect(r.baRate).toBeLessThanOrEqual(1);
    }
    expect(saco.needsMoreThanLambdaMax).toBe(false);
    expect(saco.revenue).toBeGreaterThan(random.revenue);
  }, 120_000);
});
