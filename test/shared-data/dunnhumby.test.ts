/**
 * The second multi-round real log: dunnhumby "The Complete Journey" campaigns in ../shared/data
 * (not committed with the project; see SOURCES.md there), read with schemas/dunnhumby.json:
 * the log is the campaign table (one row per household mailed a campaign); the campaign
 * descriptions are joined for their start days (only START_DAY: both files have DESCRIPTION),
 * the redemption events aggregated per (household, campaign), the demographics joined left.
 * Rounds = campaigns ranked by start day, action = mailed or not, reward = redemptions, cost
 * $0.50 per campaign mailed + $1 per redemption. Then the CLI: train with --split-out, fit-sim,
 * and a solve on the held-out file, which lacks a category level the model knows. Skipped, with
 * the reason printed, where the folder is absent.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import { loadSchemaFile } from '../../src/data/schema.js';
import type { Trajectories } from '../../src/data/trajectories.js';
import { readOnnx } from '../../src/model/onnx.js';
import { SHARED_DATA, tempDir } from '../helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FILES = ['dunnhumby_campaign_table.csv', 'dunnhumby_campaign_desc.csv', 'dunnhumby_coupon_redempt.csv', 'dunnhumby_hh_demographic.csv'].map((f) => path.join(SHARED_DATA, f));
const [LOG, DESC, REDEEMED, DEMOGRAPHICS] = FILES;
const SCHEMA = path.join(root, 'schemas', 'dunnhumby.json');
const present = FILES.every((f) => existsSync(f));
if (!present) console.warn(`skipping dunnhumby tests: ${FILES.filter((f) => !existsSync(f)).join(', ')} not found (the shared datasets are not part of the repository)`);

const csv = (file: string) => readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));

describe.skipIf(!present)('dunnhumby campaigns (shared data): joined, aggregated, end to end', () => {
  const tmp = tempDir();
  let t: Trajectories;
  beforeAll(async () => {
    t = (await readTrajectories(LOG, { schema: loadSchemaFile(SCHEMA) })).trajectories;
  }, 60_000);
  afterAll(() => tmp.cleanup());

  it('reads as households x campaigns ranked by start day: every mailing, redemption and empty round where the raw rows say', () => {
    const startDay = new Map(csv(DESC).map(([, campaign, start]) => [campaign, Number(start)]));
    const rows = csv(LOG); // DESCRIPTION,household_key,CAMPAIGN
    const days = [...new Set(rows.map((r) => startDay.get(r[2]) as number))].sort((a, b) => a - b);
    const roundOf = (campaign: string) => days.indexOf(startDay.get(campaign) as number);
    const mailed = new Map<string, number>(); // "household round" → campaigns mailed
    const mailedPairs = new Set<string>();
    for (const [, household, campaign] of rows) {
      const key = `${household} ${roundOf(campaign)}`;
      mailed.set(key, (mailed.get(key) ?? 0) + 1);
      mailedPairs.add(`${household} ${campaign}`);
    }
    const redeemed = new Map<string, number>();
    for (const [household, , , campaign] of csv(REDEEMED)) {
      if (!mailedPairs.has(`${household} ${campaign}`)) continue; // joined onto the log's rows only
      const key = `${household} ${roundOf(campaign)}`;
      redeemed.set(key, (redeemed.get(key) ?? 0) + 1);
    }
    const R = days.length;
    expect(t.rounds).toBe(R);
    expect(t.users).toBe(new Set(rows.map((r) => r[1])).size);
    const known = new Set(csv(DEMOGRAPHICS).map((r) => r[7]));
    const flag = t.stateNames.indexOf('demographics_known');
    expect(flag).toBeGreaterThanOrEqual(0);
    let redemptions = 0;
    for (let i = 0; i < t.users; i++) {
      for (let r = 0; r < R; r++) {
        const key = `${t.userIds[i]} ${r}`;
        const k = i * R + r;
        expect(t.actions[k]).toBe(mailed.has(key) ? 1 : 0);
        expect(t.rewards[k]).toBe(redeemed.get(key) ?? 0);
        expect(t.costs[k]).toBeCloseTo(0.5 * (mailed.get(key) ?? 0) + (redeemed.get(key) ?? 0), 4);
        redemptions += t.rewards[k];
      }
      expect(t.states[i * R * t.stateDim + flag]).toBe(known.has(String(t.userIds[i])) ? 1 : 0);
    }
    expect(redemptions).toBe(csv(REDEEMED).length); // every redemption belongs to a mailed (household, campaign)
  });

  it('saco train --split-out, fit-sim, then solve on the held-out file, which lacks a category level the model has', () => {
    const saco = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, SACO_PROGRESS: 'off' } });
    // the joined files beside the held-out file, as README says
    for (const f of FILES.slice(1)) copyFileSync(f, path.join(tmp.dir, path.basename(f)));
    const trained = saco('train', '--data', LOG, '--schema', SCHEMA, '--out', tmp.file('dh.onnx'), '--split-out', tmp.file('held.csv'), '--epochs', '3', '--seed', '1');
    expect(trained.status, trained.stderr).toBe(0);
    const sim = saco('fit-sim', '--data', LOG, '--schema', SCHEMA, '--out', tmp.file('dh-sim.bin'));
    expect(sim.status, sim.stderr).toBe(0);
    // the precondition that makes this a test of reading against the model: a level of the
    // model's one-hot columns that no held-out household has
    const meta = readOnnx(tmp.file('dh.onnx')).meta;
    const held = csv(tmp.file('held.csv'));
    const heldIds = new Set(held.map((r) => r[1])); // held.csv has the log's columns: DESCRIPTION,household_key,CAMPAIGN
    const heldLevels = new Set(csv(DEMOGRAPHICS).filter((r) => heldIds.has(r[7])).map((r) => r[3])); // HOMEOWNER_DESC
    const modelLevels = meta.categorical.find((c) => c.column === 'homeowner')?.levels ?? [];
    expect(modelLevels.filter((l) => l !== 'unknown' && !heldLevels.has(l)).length).toBeGreaterThan(0);
    const solved = saco('solve', '--model', tmp.file('dh.onnx'), '--sim', tmp.file('dh-sim.bin'), '--data', tmp.file('held.csv'), '--schema', SCHEMA, '--budget', '0.5x', '--json');
    expect(solved.status, solved.stderr).toBe(0);
    const [plan] = JSON.parse(solved.stdout) as Array<{ users: number; baRate: number; needsMoreThanLambdaMax: boolean }>;
    expect(plan.users).toBe(heldIds.size);
    expect(plan.baRate).toBeGreaterThanOrEqual(0.98);
    expect(plan.baRate).toBeLessThanOrEqual(1);
    expect(plan.needsMoreThanLambdaMax).toBe(false);
  }, 240_000);
});
