/**
 * The report writer: every file there, and every number of report.md's tables equal to the one
 * in report.json (the markdown is parsed back, not searched for strings).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CounterStream } from '../../src/data/rng.js';
import type { EvalMethod, MethodRole } from '../../src/eval/methods.js';
import { buildReport, DECIMALS, writeReport, type EvalRecord, type EvalReport, type Stat } from '../../src/eval/report.js';
import { parseBudgets } from '../../src/eval/run.js';
import { tempDir } from '../helpers/fixtures.js';
import { fig4Spec, fig5Spec, revenueVsBudgetSpec } from '../../src/eval/charts.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const method = (name: string, label: string, role: MethodRole, lambdaSearched = false): EvalMethod => ({ name, label, role, description: `${label} (test)`, lambdaSearched, run: async () => { throw new Error('not run'); } });

const METHODS = [
  method('saco', 'SACO', 'saco', true),
  method('random', 'Random', 'baseline'),
  method('best-arm', 'Best arm', 'baseline'),
  method('no-coupon', 'No coupon', 'baseline'),
  method('oracle', 'Oracle', 'reference', true),
  method('no-rtg', 'No-RTG', 'ablation', true),
];

/** Records with made-up but consistent numbers: 3 seeds, 3 budgets. */
function syntheticInput() {
  const budgets = parseBudgets(['0.2x', '0.5x', '0.8x']);
  const seeds = [1, 2, 3];
  const records: EvalRecord[] = [];
  const s = new CounterStream(9, 0, 0, 1);
  const datasets = seeds.map((seed) => ({ seed, referenceSpend: 3000 + 100 * seed, noCouponRevenue: 20000 + 500 * seed, trainUsers: 800, testUsers: 200 }));
  for (const m of METHODS) {
    for (const b of budgets) {
      for (const d of datasets) {
        const amount = (b.multiple as number) * d.referenceSpend;
        const free = m.name === 'no-coupon';
        const cost = free ? 0 : amount * (0.9 + 0.1 * s.uniform());
        const revenue = d.noCouponRevenue + (free ? 0 : cost * (1.5 + s.uniform()) + (m.name === 'oracle' ? 2000 : 0));
        records.push({
          method: m.name,
          seed: d.seed,
          budget: b.label,
          budgetAmount: amount,
          referenceSpend: d.referenceSpend,
          revenue,
          cost,
          roi: cost > 0 ? revenue / cost : null,
          baRate: cost / amount,
          incrementalRevenue: revenue - d.noCouponRevenue,
          incrementalRoi: cost > 0 ? (revenue - d.noCouponRevenue) / cost : null,
          lambda: m.lambdaSearched ? 0.1 + s.uniform() : null,
          coupons: 10,
          blocked: 0,
          rollouts: 5,
          budgetNotBinding: false,
          needsMoreThanLambdaMax: false,
          trace: m.lambdaSearched ? [0, 0.5, 1, 2].map((lambda) => ({ lambda, revenue: revenue * (1 - 0.1 * lambda), cost: d.referenceSpend * 1.5 * Math.exp(-lambda) })) : [],
          extra: null,
          offPolicy: null,
          seconds: 0.5,
          cpuSeconds: 0.9,
          planFile: null,
        });
      }
    }
  }
  return {
    data: { preset: 'sy', description: 'test data', env: {}, users: 1000, trainUsers: 800, testUsers: 200, rounds: 5 },
    budgets,
    seeds,
    methods: METHODS,
    records,
    datasets,
    fits: [{ method: 'saco', seed: 1, fitted: true, seconds: 12, cpuSeconds: 20, info: null }],
    settings: {},
    seconds: 42,
  };
}

/** The tables of report.md under each "## " heading: header cells and rows of cells. */
function markdownTables(md: string): Map<string, Array<{ head: string[]; rows: string[][] }>> {
  const out = new Map<string, Array<{ head: string[]; rows: string[][] }>>();
  let section = '';
  let current: { head: string[]; rows: string[][] } | undefined;
  const cells = (line: string) => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
  for (const line of md.split('\n')) {
    if (line.startsWith('## ')) section = line.slice(3).trim();
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    if (!current) {
      current = { head: cells(line), rows: [] };
      out.set(section, [...(out.get(section) ?? []), current]);
    } else if (!/^\|\s*:?-/.test(line)) current.rows.push(cells(line));
  }
  return out;
}

/** A number of report.md: '–' is null, '+1.5' is 1.5. */
function value(cell: string): number | null {
  if (cell === '–') return null;
  const n = Number(cell.replace(/^\+/, ''));
  if (!Number.isFinite(n)) throw new Error(`not a number: "${cell}"`);
  return n;
}

/** Equal to the JSON number as shown with `decimals` places (half a unit of the last place). */
function expectShown(cell: string, json: number | null | undefined, decimals: number, what: string): void {
  const shown = value(cell);
  if (json === null || json === undefined || !Number.isFinite(json)) {
    expect(shown, what).toBeNull();
    return;
  }
  expect(shown, what).not.toBeNull();
  expect(Math.abs((shown as number) - json), `${what}: "${cell}" vs ${json}`).toBeLessThanOrEqual(0.5 * 10 ** -decimals + 1e-9 * Math.abs(json));
}

function expectStat(cell: string, s: Stat | null, decimals: number, what: string): void {
  if (!s) {
    expect(cell, what).toBe('–');
    return;
  }
  const [m, sd] = cell.split(' ± ');
  expectShown(m, s.mean, decimals, `${what} mean`);
  if (s.sd === null) expect(sd, what).toBeUndefined();
  else expectShown(sd, s.sd, decimals, `${what} sd`);
}

describe('report writer', () => {
  let rep: EvalReport;
  let md: string;
  let json: EvalReport;

  it('writes report.json, report.md and every chart as SVG and PNG', async () => {
    rep = buildReport(syntheticInput());
    const files = await writeReport(rep, tmp.dir);
    expect(existsSync(files.json) && existsSync(files.markdown)).toBe(true);
    expect(files.charts.map((c) => c.name).sort()).toEqual(['c-lambda', 'fig4-revenue-difference', 'fig5-ablation', 'revenue-vs-budget']);
    for (const c of files.charts) {
      const svg = readFileSync(c.svg, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain(c.name === 'c-lambda' ? 'C(λ)' : c.name === 'fig5-ablation' ? 'Fig. 5' : c.name === 'fig4-revenue-difference' ? 'Fig. 4' : 'Revenue against budget');
      const png = readFileSync(c.png);
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(png.readUInt32BE(16)).toBeGreaterThan(600); // width: drawn at 2x
    }
    md = readFileSync(files.markdown, 'utf8');
    json = JSON.parse(readFileSync(files.json, 'utf8')) as EvalReport;
    // the markdown links every chart, by a name that exists next to it
    for (const c of files.charts) {
      expect(md).toContain(`(${path.basename(c.png)})`);
      expect(existsSync(path.join(tmp.dir, path.basename(c.png)))).toBe(true);
    }
  }, 30_000);

  it("labels the charts' revenue and cost axes in currency on SY and in the log's own units on a log (its reward may be a count)", () => {
    const titles = (r: EvalReport) => JSON.stringify([fig4Spec(r), fig5Spec(r), revenueVsBudgetSpec(r)]).match(/\((currency|the log's units)\)/g) ?? [];
    expect(titles(rep).length).toBeGreaterThanOrEqual(3);
    expect(new Set(titles(rep))).toEqual(new Set(['(currency)']));
    const onLog = { ...rep, data: { ...rep.data, kind: 'log' as const } };
    expect(new Set(titles(onLog))).toEqual(new Set(["(the log's units)"]));
  });

  it('states the budget reference and labels the Oracle an upper reference, not a baseline', () => {
    expect(md).toContain("N times the uniform logging policy's spend on the same users");
    expect(md).toMatch(/Oracle \| upper reference \(not a baseline\)/);
    expect(json.fig4.reference).toBe('random');
    expect(md).toMatch(/against Random.*instead/);
    // no comparison row treats the Oracle as a baseline
    expect(json.comparisons.some((c) => c.other === 'oracle')).toBe(false);
  });

  it('Table 1 holds the JSON numbers', () => {
    const [t] = markdownTables(md).get('Table 1: means over all budgets and seeds') ?? [];
    expect(t.rows.map((r) => r[0])).toEqual(json.table1.map((r) => r.label));
    for (const [k, row] of t.rows.entries()) {
      const j = json.table1[k];
      expectShown(row[2], j.roi, DECIMALS.ratio, `${j.label} ROI`);
      expectShown(row[3], j.incrementalRoi, DECIMALS.ratio, `${j.label} incremental ROI`);
      expectShown(row[4], j.baRate, DECIMALS.ratio, `${j.label} BARate`);
      expectShown(row[5], j.revenue, DECIMALS.money, `${j.label} revenue`);
      expectShown(row[6], j.incrementalRevenue, DECIMALS.money, `${j.label} incremental revenue`);
    }
    // and they are the means of the records
    const saco = json.records.filter((r) => r.method === 'saco');
    expect(json.table1[0].revenue).toBeCloseTo(saco.reduce((s, r) => s + r.revenue, 0) / saco.length, 9);
  });

  it('the per-budget tables hold the JSON means and sds', () => {
    const tables = markdownTables(md);
    const [wide] = tables.get('Revenue per budget (mean ± sd over seeds)') ?? [];
    expect(wide.head.slice(1)).toEqual(json.budgets.map((b) => b.label));
    for (const row of wide.rows) {
      for (const [k, b] of json.budgets.entries()) {
        const j = json.perBudget.find((r) => r.label === row[0] && r.budget === b.label);
        expectStat(row[k + 1], j?.revenue ?? null, DECIMALS.money, `${row[0]} ${b.label} revenue`);
      }
    }
    const [long] = tables.get('Per budget: every metric (mean ± sd over seeds)') ?? [];
    expect(long.rows).toHaveLength(json.perBudget.length);
    for (const row of long.rows) {
      const j = json.perBudget.find((r) => r.budget === row[0] && r.label === row[1]);
      expect(j, row.join('|')).toBeDefined();
      if (!j) continue;
      expectStat(row[2], j.revenue, DECIMALS.money, 'revenue');
      expectStat(row[3], j.cost, DECIMALS.money, 'cost');
      expectStat(row[4], j.roi, DECIMALS.ratio, 'roi');
      expectStat(row[5], j.baRate, DECIMALS.ratio, 'baRate');
      expectStat(row[6], j.incrementalRevenue, DECIMALS.money, 'incremental');
      expectStat(row[7], j.lambda, DECIMALS.lambda, 'lambda');
    }
    const [inc, share] = tables.get('Incremental revenue over no coupon (mean over seeds)') ?? [];
    for (const row of inc.rows) for (const [k, b] of json.budgets.entries()) expectShown(row[k + 1], json.perBudget.find((r) => r.label === row[0] && r.budget === b.label)?.incrementalRevenue.mean, DECIMALS.money, `${row[0]} incremental`);
    for (const row of share.rows) for (const [k, b] of json.budgets.entries()) expectShown(row[k + 1], json.perBudget.find((r) => r.label === row[0] && r.budget === b.label)?.oracleShare?.mean, DECIMALS.share, `${row[0]} share`);
  });

  it('the comparisons and wins/losses hold the JSON numbers, paired by seed', () => {
    const tables = markdownTables(md);
    const [cmp, wins] = tables.get('SACO against every baseline') ?? [];
    const baselines = json.comparisons.filter((c) => c.role === 'baseline');
    expect(cmp.rows).toHaveLength(baselines.length);
    expect(baselines).toHaveLength(3 * 3);
    for (const row of cmp.rows) {
      const c = baselines.find((x) => x.budget === row[0] && x.otherLabel === row[1]);
      expect(c, row.join('|')).toBeDefined();
      if (!c) continue;
      expectShown(row[2], c.sacoRevenue, DECIMALS.money, 'SACO revenue');
      expectShown(row[3], c.otherRevenue, DECIMALS.money, 'their revenue');
      expectShown(row[4], c.diff.mean, DECIMALS.money, 'Δ mean');
      expectShown(row[5], c.diff.sd, DECIMALS.money, 'Δ sd');
      expectShown(row[6], c.sdUnits, DECIMALS.sd, 'Δ / sd');
      expect(row[7]).toBe(c.verdict === 'win' ? 'SACO wins' : c.verdict === 'loss' ? 'SACO loses' : 'tie');
      // paired: the mean of the per-seed differences
      const d = json.seeds.map((s) => {
        const a = json.records.find((r) => r.method === 'saco' && r.budget === c.budget && r.seed === s) as EvalRecord;
        const o = json.records.find((r) => r.method === c.other && r.budget === c.budget && r.seed === s) as EvalRecord;
        return a.revenue - o.revenue;
      });
      expect(c.diff.mean).toBeCloseTo(d.reduce((x, y) => x + y, 0) / d.length, 9);
    }
    for (const row of wins.rows) {
      const w = json.winsLosses.find((x) => x.otherLabel === row[0]);
      expect(w).toBeDefined();
      expect([Number(row[1]), Number(row[2]), Number(row[3])]).toEqual([w?.wins, w?.losses, w?.ties]);
      expect((w?.wins ?? 0) + (w?.losses ?? 0) + (w?.ties ?? 0)).toBe(json.budgets.length);
    }
    const [abl] = tables.get('SACO against its ablations (paper Fig. 5)') ?? [];
    expect(abl.rows.map((r) => r[1])).toEqual(['No-RTG', 'No-RTG', 'No-RTG']);
    const [gates] = tables.get('Gates (DESIGN.md section 10)') ?? [];
    for (const [k, row] of gates.rows.entries()) {
      expectShown(row[1], json.gates.baRateInRange[k].baRate, DECIMALS.ratio, 'gate BARate');
      expectShown(row[3], json.gates.oracleShareAtLeast95[k].share, DECIMALS.share, 'gate share');
    }
  });

  it("on a log of one round, the off-policy section holds the JSON's pooled estimates beside the simulator's revenue per user; none on SY", async () => {
    expect(json.offPolicy).toEqual([]);
    expect(md).not.toContain('## Off-policy check');
    const input = syntheticInput();
    const s = new CounterStream(10, 0, 0, 1);
    for (const r of input.records) {
      const ips = 0.1 + 0.05 * s.uniform();
      r.offPolicy = {
        users: 180 + r.seed,
        source: 'action shares',
        agreement: 0.3 + 0.1 * s.uniform(),
        revenue: { ips, ipsSe: 0.01 + 0.01 * s.uniform(), snips: ips * 1.01, snipsSe: 0.02 },
        cost: { ips: 0.03 * s.uniform(), ipsSe: 0.002, snips: 0.03, snipsSe: 0.003 },
      };
    }
    const logRep = buildReport({ ...input, data: { ...input.data, kind: 'log', rounds: 1 } });
    const dir = path.join(tmp.dir, 'log');
    mkdirSync(dir, { recursive: true });
    const files = await writeReport(logRep, dir, { charts: false });
    const logMd = readFileSync(files.markdown, 'utf8');
    const logJson = JSON.parse(readFileSync(files.json, 'utf8')) as EvalReport;
    expect(logJson.offPolicy).toHaveLength(METHODS.length * 3);
    const [revenue, cost, agreement] = markdownTables(logMd).get("Off-policy check: each plan's round 0 on the test users' logged round 0") ?? [];
    expect(logMd).toContain('share of each action among the training users');
    for (const [table, k] of [[revenue, 'revenue'], [cost, 'cost']] as const) {
      expect(table.head.slice(1)).toEqual(logJson.budgets.map((b) => b.label));
      for (const row of table.rows) {
        for (const [j, b] of logJson.budgets.entries()) {
          const o = logJson.offPolicy.find((x) => x.label === row[0] && x.budget === b.label);
          expect(o, `${row[0]} ${b.label}`).toBeDefined();
          if (!o) continue;
          const [est, sim] = row[j + 1].split(' (sim ');
          const [m, se] = est.split(' ± ');
          expectShown(m, o[k].ips, DECIMALS.perUser, `${k} IPS`);
          expectShown(se, o[k].se, DECIMALS.perUser, `${k} SE`);
          // means over seeds of the estimate and of its SE (the seeds' test users overlap on a log)
          const rs = logJson.records.filter((r) => r.method === o.method && r.budget === b.label);
          expect(rs).toHaveLength(3);
          const [a0, a1, a2] = rs.map((r) => (r.offPolicy as NonNullable<EvalRecord['offPolicy']>)[k]);
          expect(o[k].ips).toBeCloseTo((a0.ips + a1.ips + a2.ips) / 3, 12);
          expect(o[k].se).toBeCloseTo((a0.ipsSe + a1.ipsSe + a2.ipsSe) / 3, 12);
          if (k === 'revenue') {
            const perUser = rs.map((r) => r.revenue / (logJson.datasets.find((x) => x.seed === r.seed)?.testUsers ?? NaN));
            expectShown(sim.replace(')', ''), perUser.reduce((a, x) => a + x, 0) / perUser.length, DECIMALS.perUser, 'sim revenue per user');
          } else expect(sim).toBeUndefined();
        }
      }
    }
    for (const row of agreement.rows) for (const [j, b] of logJson.budgets.entries()) expectShown(row[j + 1], logJson.offPolicy.find((x) => x.label === row[0] && x.budget === b.label)?.agreement, DECIMALS.share, 'agreement');

    // an undefined SNIPS (no planned action logged) is NaN in a run and null read back from JSON:
    // left out of the mean, not counted as 0
    const back = JSON.parse(JSON.stringify(input.records)) as EvalRecord[];
    const sacoLow = back.filter((r) => r.method === 'saco' && r.budget === '0.2x');
    (sacoLow[0].offPolicy as NonNullable<EvalRecord['offPolicy']>).revenue.snips = NaN;
    const reread = buildReport({ ...input, data: { ...input.data, kind: 'log', rounds: 1 }, records: JSON.parse(JSON.stringify(back)) as EvalRecord[] });
    const row = reread.offPolicy.find((x) => x.method === 'saco' && x.budget === '0.2x');
    const kept = sacoLow.slice(1).map((r) => (r.offPolicy as NonNullable<EvalRecord['offPolicy']>).revenue.snips);
    expect(row?.revenue.snips).toBeCloseTo((kept[0] + kept[1]) / 2, 12);
    const none = back.map((r) => ({ ...r, offPolicy: r.offPolicy && { ...r.offPolicy, revenue: { ...r.offPolicy.revenue, snips: NaN } } }));
    const all = buildReport({ ...input, data: { ...input.data, kind: 'log', rounds: 1 }, records: JSON.parse(JSON.stringify(none)) as EvalRecord[] });
    expect(all.offPolicy.every((x) => Number.isNaN(x.revenue.snips))).toBe(true);
  });
});
