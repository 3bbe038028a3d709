/**
 * evaluate() end to end on a tiny SY run (every file written), its resume (a second run
 * computes nothing: solve() is counted), and its refusals of bad input before any work.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { resolveSyConfig, syInitialUser, syStep, syWeights } from '../../src/data/synth.js';
import { ArgumentError } from '../../src/errors.js';
import { tempDir } from '../helpers/fixtures.js';

// count solve() calls: every λ-searched or policy method goes through it. The fixed-arm policy
// (the data's reference spend and no-coupon revenue, Best arm's keep probability, No coupon) is
// counted apart: the reference runs on every call, results cached or not.
const solveCalls = vi.hoisted(() => ({ count: 0, fixedArm: 0 }));
vi.mock('../../src/solve/index.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/solve/index.js')>();
  return {
    ...original,
    solve: (...args: Parameters<typeof original.solve>) => {
      if (args[0].policy === 'fixed-arm') solveCalls.fixedArm++;
      else solveCalls.count++;
      return original.solve(...args);
    },
  };
});

const { evaluate } = await import('../../src/eval/run.js');
const { METHOD_NAMES } = await import('../../src/eval/methods.js');

const tmp = tempDir();
afterAll(() => tmp.cleanup());
beforeEach(() => {
  solveCalls.count = 0;
  solveCalls.fixedArm = 0;
});

const TINY = {
  data: 'sy',
  users: 300,
  rounds: 3,
  seeds: [1],
  budgets: ['0.3x', '0.7x'],
  methods: ['saco', 'random', 'best-arm', 'no-coupon', 'oracle', 'no-rtg'],
  quick: true,
  training: { epochs: 1, dModel: 16, layers: 1, heads: 1, batchSize: 32 },
} as const;

describe('evaluate() on SY', () => {
  const out = path.join(tmp.dir, 'run');

  it('trains, runs every (method, budget, seed) and writes the report with its charts', async () => {
    const progress: number[] = [];
    const r = await evaluate({ ...TINY, methods: [...TINY.methods], budgets: [...TINY.budgets], seeds: [...TINY.seeds], out, onProgress: (p) => progress.push(p.done) });
    // saco, oracle, random, no-rtg go through solve() at each of 2 budgets; best-arm and no-coupon run the fixed-arm policy
    expect(solveCalls.count).toBe(8);
    expect(solveCalls.fixedArm).toBeGreaterThanOrEqual(1 + 1 + 2 * 2); // the reference, no coupon, best arm's keep search and plan at 2 budgets
    expect(r.work).toMatchObject({ fits: 3, fitsReused: 0, runs: 11, runsReused: 0 });
    expect(progress.at(-1)).toBe(11 + 3);
    for (const f of ['report.json', 'report.md', ...['fig4-revenue-difference', 'fig5-ablation', 'c-lambda', 'revenue-vs-budget'].flatMap((n) => [`${n}.svg`, `${n}.png`])]) {
      expect(existsSync(path.join(out, f)), f).toBe(true);
    }
    expect(readdirSync(path.join(out, 'results'))).toHaveLength(11);
    expect(readdirSync(path.join(out, 'cache')).map((d) => d.split('__')[0]).sort()).toEqual(['best-arm', 'no-rtg', 'saco']);
    const rep = r.report;
    expect(rep.perBudget).toHaveLength(6 * 2);
    for (const row of rep.perBudget) {
      // every method within its budget (the environment's rule), no coupon spending nothing
      expect(row.cost.mean).toBeLessThanOrEqual(row.budgetAmount.mean + 1e-9);
      if (row.method === 'no-coupon') expect(row.cost.mean).toBe(0);
    }
    // the Oracle earns more than no coupon; the best arm spends close to its budget in expectation
    const at = (m: string, b: string) => rep.perBudget.find((x) => x.method === m && x.budget === b);
    expect(at('oracle', '0.7x')?.incrementalRevenue.mean).toBeGreaterThan(0);
    const bestArm = rep.records.find((x) => x.method === 'best-arm' && x.budget === '0.7x');
    // (its expected spend sums the environment's expected cost of the coupons its coins kept: a step function of p, within a step of the budget)
    expect(Math.abs(Number(bestArm?.extra?.expectedSpend) / (bestArm?.budgetAmount ?? 1) - 1)).toBeLessThan(0.02);
    expect(rep.comparisons.filter((c) => c.role === 'baseline')).toHaveLength(3 * 2);
    expect(readFileSync(r.files.markdown, 'utf8')).toContain('## SACO against every baseline');
  }, 60_000);

  it('a second run with the same out computes nothing; after an interruption only what is missing', async () => {
    const first = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
    const notices: string[] = [];
    const again = await evaluate({ ...TINY, methods: [...TINY.methods], budgets: [...TINY.budgets], seeds: [...TINY.seeds], out, charts: false, onNotice: (l) => notices.push(l) });
    expect(solveCalls.count).toBe(0);
    expect(solveCalls.fixedArm).toBe(1); // the data's reference spend
    expect(again.work).toMatchObject({ fits: 0, fitsReused: 0, runs: 0, runsReused: 11 });
    expect(notices.join('\n')).toMatch(/nothing to compute/);
    expect(again.report.perBudget).toEqual(first.perBudget);

    // an interrupted run: one result missing; the model comes back from the cache, one solve runs
    const saco07 = readdirSync(path.join(out, 'results')).find((f) => f.startsWith('saco__0.7x__'));
    rmSync(path.join(out, 'results', saco07 as string));
    const resumed = await evaluate({ ...TINY, methods: [...TINY.methods], budgets: [...TINY.budgets], seeds: [...TINY.seeds], out, charts: false });
    expect(solveCalls.count).toBe(1);
    expect(resumed.work).toMatchObject({ fits: 0, fitsReused: 1, runs: 1, runsReused: 10 });
    expect(resumed.report.perBudget.find((x) => x.method === 'saco' && x.budget === '0.7x')).toEqual(first.perBudget.find((x: { method: string; budget: string }) => x.method === 'saco' && x.budget === '0.7x'));
  }, 60_000);
});

describe('evaluate() runs the Forest and the Bandit like every method', () => {
  it('fits each once on the training users, caches the forest, and both spend within the budget and earn more than no coupon', async () => {
    const out = path.join(tmp.dir, 'forest-bandit');
    const options = { ...TINY, data: 'sy-static', users: 600, methods: ['forest', 'bandit', 'no-coupon'], budgets: ['0.5x'], seeds: [1], out, charts: false };
    const r = await evaluate(options);
    expect(solveCalls.count).toBe(2);
    expect(readdirSync(path.join(out, 'cache')).map((d) => d.split('__')[0]).sort()).toEqual(['bandit', 'forest']);
    const at = (m: string) => r.report.perBudget.find((x) => x.method === m && x.budget === '0.5x');
    for (const m of ['forest', 'bandit']) {
      expect(at(m)?.cost.mean, m).toBeLessThanOrEqual((at(m)?.budgetAmount.mean ?? 0) + 1e-9);
      expect(at(m)?.incrementalRevenue.mean, m).toBeGreaterThan(0);
    }
    // the forest comes back from its file: no refit, the same plan
    solveCalls.count = 0;
    rmSync(path.join(out, 'results'), { recursive: true });
    const again = await evaluate(options);
    expect(again.work).toMatchObject({ fitsReused: 2 });
    expect(at('forest')).toEqual(again.report.perBudget.find((x) => x.method === 'forest'));
  }, 90_000);
});

describe('evaluate() writes every plan with plans: true', () => {
  it("each plan file, shipped action by action into SY's truth, earns what its run reported", async () => {
    const out = path.join(tmp.dir, 'plans');
    const r = await evaluate({ ...TINY, methods: ['oracle', 'random', 'no-coupon'], budgets: ['0.5x'], seeds: [1], out, charts: false, plans: true });
    const config = resolveSyConfig({ seed: 1, rounds: TINY.rounds });
    const w = syWeights(config);
    const testIds = Array.from({ length: r.report.data.testUsers }, (_, i) => r.report.data.trainUsers + i);
    for (const rec of r.report.records) {
      const file = path.join(out, rec.planFile as string);
      // named as its result file, under plans/
      expect(existsSync(path.join(out, 'results', path.basename(file).replace(/\.csv\.gz$/, '.json'))), rec.method).toBe(true);
      const [head, ...rows] = gunzipSync(readFileSync(file)).toString('utf8').trim().split('\n').map((l) => l.split(','));
      expect(head.slice(0, 3)).toEqual(['user_id', 'round', 'action']);
      expect(rows.map((x) => `${x[0]}/${x[1]}`)).toEqual(testIds.flatMap((u) => [0, 1, 2].map((t) => `${u}/${t}`)));
      expect(rows.every((x) => x[head.indexOf('lambda')] === (rec.lambda === null ? '' : String(rec.lambda))), rec.method).toBe(true);
      // the written actions replayed in the TypeScript reference of SY, with the world's own draws
      let revenue = 0;
      let coupons = 0;
      for (const [i, id] of testIds.entries()) {
        const user = syInitialUser(config, w, id);
        for (let t = 0; t < TINY.rounds; t++) {
          const k = config.actionDims[0].values.indexOf(Number(rows[i * TINY.rounds + t][2]));
          expect(k).toBeGreaterThanOrEqual(0);
          if (k > 0) coupons++;
          revenue += syStep(config, user, t, [k]).reward;
        }
      }
      expect(coupons, rec.method).toBe(rec.coupons);
      expect(revenue, rec.method).toBeCloseTo(rec.revenue, 6);
    }
    // the plan is never stored with the result
    for (const f of readdirSync(path.join(out, 'results'))) expect(readFileSync(path.join(out, 'results', f), 'utf8')).not.toContain('"solved"');
  }, 60_000);
});

describe('evaluate() refuses bad input before any work', () => {
  const out = path.join(tmp.dir, 'bad');

  it('an unknown method, listing the known ones', async () => {
    const e = await evaluate({ out, methods: ['saco', 'nope'] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ArgumentError);
    expect((e as Error).message).toMatch(/unknown method "nope"/);
    for (const name of METHOD_NAMES) expect((e as Error).message).toContain(name);
    // the same through saco's main entry, which loads the runner on first use
    const saco = await import('../../src/index.js');
    await expect(saco.evaluate({ out, methods: ['nope'] })).rejects.toThrow(/unknown method "nope"/);
  });

  it('a budget ≤ 0', async () => {
    for (const budgets of [['0.5x', '0x'], ['-0.2x'], [0], [-100], []]) {
      const e = await evaluate({ out, budgets: budgets as string[] }).catch((x: unknown) => x);
      expect(e, JSON.stringify(budgets)).toBeInstanceOf(ArgumentError);
      expect((e as Error).message).toMatch(budgets.length ? /> 0/ : /at least one/);
    }
  });

  it('an unwritable out, before any data or training', async () => {
    const file = path.join(tmp.dir, 'a-file');
    writeFileSync(file, 'not a folder');
    const t0 = performance.now();
    for (const o of [path.join(file, 'out'), file]) {
      const e = await evaluate({ out: o, methods: ['saco'] }).catch((x: unknown) => x);
      expect(e, o).toBeInstanceOf(ArgumentError);
      expect((e as ArgumentError).code).toBe('ARGUMENT_OUTPUT');
    }
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(solveCalls.count).toBe(0);
  });

  it('on the command line: exit 2 and one line', async () => {
    const { main } = await import('../../src/cli.js');
    // main() installs the CLI's SIGINT/SIGTERM handlers: take them off again (the test runner ends this process by signal)
    const signals = ['SIGINT', 'SIGTERM'] as const;
    const before = Object.fromEntries(signals.map((sig) => [sig, process.listeners(sig)]));
    const restoreSignals = () => {
      for (const sig of signals) for (const l of process.listeners(sig)) if (!before[sig].includes(l)) process.off(sig, l);
    };
    const run = async (...args: string[]) => {
      let stderr = '';
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        stderr += String(chunk);
        return true;
      });
      try {
        return { code: await main(['node', 'saco', 'eval', ...args]), stderr };
      } finally {
        spy.mockRestore();
        restoreSignals();
      }
    };
    const unknown = await run('--methods', 'saco,nope', '--out', out, '--quiet');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/^saco: methods: unknown method "nope".*known: saco/);
    const zero = await run('--budgets', '0.5x,0', '--out', out, '--quiet');
    expect(zero.code).toBe(2);
    expect(zero.stderr.trim().split('\n')).toHaveLength(1);
    expect(zero.stderr).toMatch(/> 0/);
    expect(solveCalls.count).toBe(0);
  });
});
