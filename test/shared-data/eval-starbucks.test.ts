/**
 * `saco eval` on a real log: a seeded subsample of the public Starbucks promotion RCT (from
 * ../shared/data, not committed with the project; see SOURCES.md there), read with
 * schemas/starbucks.json, every method but the Oracle fitted on the training users and compared
 * on the test users in the simulator fitted on the training users. Skipped, with the reason
 * printed, where that folder is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/run.js';
import { SHARED_DATA, tempDir } from '../helpers/fixtures.js';

const FILE = path.join(SHARED_DATA, 'starbucks_promotion_rct_train.csv');
const SCHEMA = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'schemas', 'starbucks.json');
const present = existsSync(FILE);
if (!present) console.warn(`skipping the Starbucks eval: ${FILE} not found (the shared datasets are not part of the repository)`);

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe.skipIf(!present)('saco eval on the Starbucks RCT (shared data)', () => {
  it('a quick eval of a 4,000-user subsample in the simulator: every method within its budget, the Oracle not run, the world stated', async () => {
    const out = path.join(tmp.dir, 'starbucks');
    const methods = ['saco', 'forest', 'bandit', 'cmdp50', 'dfcl', 'random', 'best-arm', 'no-coupon'];
    const r = await evaluate({
      data: FILE,
      schema: SCHEMA,
      out,
      users: 4000,
      methods,
      budgets: ['0.25x', '0.75x'],
      seeds: [1],
      quick: true,
      charts: false,
      training: { epochs: 2, dModel: 16, layers: 1, heads: 1 },
    });
    const rep = r.report;
    expect(rep.data).toMatchObject({ kind: 'log', users: 4000, trainUsers: 3200, testUsers: 800, rounds: 1 });
    expect(rep.methods.map((m) => m.name).sort()).toEqual([...methods].sort());
    const reference = rep.datasets[0].referenceSpend;
    // half the test users get the promotion under uniform logging, at $0.15 each
    expect(reference).toBeCloseTo(0.15 * 800 * 0.5, -1);
    for (const row of rep.perBudget) {
      expect(row.cost.mean, `${row.method} at ${row.budget}`).toBeLessThanOrEqual(row.budgetAmount.mean + 1e-9);
    }
    console.log(
      `Starbucks, 4,000 users (3,200 train / 800 test), simulator world; uniform logging spends ${reference.toFixed(2)} on the test users; no coupon earns ${rep.datasets[0].noCouponRevenue.toFixed(1)}.\n` +
        rep.perBudget.map((x) => `  ${x.budget} ${x.method}: revenue ${x.revenue.mean.toFixed(1)}, cost ${x.cost.mean.toFixed(2)} of ${x.budgetAmount.mean.toFixed(2)}, incremental ${x.incrementalRevenue.mean.toFixed(1)}`).join('\n'),
    );
    expect(readFileSync(r.files.markdown, 'utf8')).toContain('the learned simulator (fitSimulator) fitted on each seed');
  }, 120_000);
});
