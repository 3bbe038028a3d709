/**
 * Reads the public Hillstrom e-mail RCT from ../shared/data (not committed with the
 * project; see SOURCES.md there). Skipped, with the reason printed, where that folder is absent.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import { loadSchemaFile } from '../../src/data/schema.js';
import { SHARED_DATA } from '../helpers/fixtures.js';

const FILE = path.join(SHARED_DATA, 'hillstrom_email_rct_3arm.csv');
const SCHEMA = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'schemas', 'hillstrom.json');
const present = existsSync(FILE);
if (!present) console.warn(`skipping Hillstrom tests: ${FILE} not found (the shared datasets are not part of the repository)`);

describe.skipIf(!present)('Hillstrom e-mail RCT (shared data)', () => {
  it('ingests as T = 1 trajectories with a stated per-e-mail cost of $0.10', async () => {
    const { trajectories: t, report } = await readTrajectories(FILE, { schema: loadSchemaFile(SCHEMA) });
    expect(report.rowsRead).toBe(64000);
    expect(report.rowsUsed).toBe(64000);
    expect(t.users).toBe(64000);
    expect(t.rounds).toBe(1);
    // the control is found as the one value that costs nothing ($0 per non-e-mail)
    expect(t.actionEncodings).toEqual([{ column: 'segment', values: ['No E-Mail', 'Mens E-Mail', 'Womens E-Mail'], control: 0, controlStated: false }]);
    expect(t.stateNames).toEqual([
      'recency', 'history', 'mens', 'womens',
      'zip_code=Rural', 'zip_code=Surburban', 'zip_code=Urban',
      'newbie',
      'channel=Multichannel', 'channel=Phone', 'channel=Web',
    ]);
    const n = [0, 0, 0];
    const spend = [0, 0, 0];
    let cost = 0;
    for (let i = 0; i < t.users; i++) {
      const k = t.actions[i];
      n[k]++;
      spend[k] += t.rewards[i];
      cost += t.costs[i];
      expect(t.costs[i]).toBe(k === 0 ? 0 : Math.fround(0.1));
      expect(t.rtg[i]).toBe(t.rewards[i]);
      expect(t.ctg[i]).toBe(t.costs[i]);
    }
    // about 21.3k rows per arm; published spend per customer: $0.65 none, $1.42 mens, $1.08 womens
    for (const c of n) expect(Math.abs(c - 21333)).toBeLessThan(300);
    expect(spend[0] / n[0]).toBeCloseTo(0.65, 2);
    expect(spend[1] / n[1]).toBeCloseTo(1.42, 2);
    expect(spend[2] / n[2]).toBeCloseTo(1.08, 2);
    expect(cost).toBeCloseTo(0.1 * (n[1] + n[2]), 0);
  });
});
