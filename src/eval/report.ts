/**
 * The report of `saco eval`: report.json (every number), report.md (Table 1, the per-budget
 * table with mean ± sd over seeds, incremental revenue over no coupon, SACO against every
 * baseline at every budget with its margin in standard deviations, wins and losses, the
 * ablations, the Oracle as an upper reference) and the charts (charts.ts) as SVG and PNG.
 *
 * Every number in report.md is formatted from the rows of report.json by the column specs
 * below (money to 0.1, ratios to 0.001, margins to 0.01), so a test can hold them equal.
 */
import path from 'node:path';
import type { EvalMethod, MethodRole } from './methods.js';
import type { EvalBudget } from './run.js';
import { renderCharts, type ChartFile } from './charts.js';
import { writeFileAtomic } from '../data/atomic.js';
import { writeJsonAtomic } from './files.js';
import type { RoundZeroCheck } from './round-zero.js';

/** One (method, budget, seed) result. */
export interface EvalRecord {
  method: string;
  seed: number;
  budget: string;
  /** The budget in currency for this seed's test users. */
  budgetAmount: number;
  /** What the uniform logging policy spends on these test users ("1x"). */
  referenceSpend: number;
  revenue: number;
  cost: number;
  /** revenue / cost; null when nothing was spent. */
  roi: number | null;
  /** cost / budget. */
  baRate: number;
  /** revenue − the no-coupon revenue of the same users. */
  incrementalRevenue: number;
  incrementalRoi: number | null;
  lambda: number | null;
  coupons: number;
  blocked: number;
  rollouts: number;
  budgetNotBinding: boolean;
  needsMoreThanLambdaMax: boolean;
  trace: Array<{ lambda: number; revenue: number; cost: number }>;
  extra: Record<string, number | string | boolean | null> | null;
  /** A log: the plan's round 0 scored on the test users' logged round 0 by inverse propensity; null on SY (or a result of an older run). */
  offPolicy: RoundZeroCheck | null;
  /** Wall seconds of the run when it was computed. */
  seconds: number;
  /** CPU seconds (every thread of the process) of the run; null when not measured. */
  cpuSeconds: number | null;
  /** With `plans`: the run's plan file, relative to the run's folder; else null. */
  planFile: string | null;
}

/**
 * The off-policy check of one method at one budget, over seeds: means of the per-seed
 * estimates (per test user of round 0) and of their standard errors. A seed's SE, not one
 * narrowed by √seeds: on a log every seed re-splits the same users, so the seeds' test users
 * overlap and their estimates are not independent. NaN (null in JSON) where no seed has one
 * (SNIPS when no planned action matches a logged one).
 */
export interface OffPolicyRow {
  method: string;
  label: string;
  budget: string;
  seeds: number;
  /** Test users with a logged round-0 decision, mean over seeds. */
  users: number;
  source: RoundZeroCheck['source'];
  agreement: number;
  revenue: { ips: number; se: number; snips: number; snipsSe: number };
  cost: { ips: number; se: number; snips: number; snipsSe: number };
  /** A log of one round: the simulator's revenue per test user for the same plan (the quantity IPS estimates); null otherwise. */
  simulatorRevenuePerUser: number | null;
}

/** The methods of a report that have off-policy rows, in the report's order (report.md and the CLI list these). */
export function offPolicyMethods(rep: Pick<EvalReport, 'methods' | 'offPolicy'>): EvalReport['methods'] {
  return rep.methods.filter((m) => rep.offPolicy.some((r) => r.method === m.name));
}

/** The off-policy row of (method, budget) of a report, if any (report.md and the CLI read it so). */
export function offPolicyRow(rep: Pick<EvalReport, 'offPolicy'>, method: string, budget: string): OffPolicyRow | undefined {
  return rep.offPolicy.find((x) => x.method === method && x.budget === budget);
}

/** Mean and sample standard deviation over seeds (sd null with one seed). */
export interface Stat {
  mean: number;
  sd: number | null;
  n: number;
}

export interface PerBudgetRow {
  method: string;
  label: string;
  role: MethodRole;
  budget: string;
  level: string | null;
  budgetAmount: Stat;
  revenue: Stat;
  cost: Stat;
  roi: Stat | null;
  baRate: Stat;
  incrementalRevenue: Stat;
  incrementalRoi: Stat | null;
  lambda: Stat | null;
  /** This method's incremental revenue over the Oracle's, per seed then averaged (null without the Oracle). */
  oracleShare: Stat | null;
  /** Seeds where the budget did not bind (even λ = 0, or every coupon kept, spends less). */
  notBinding: number;
  /** Seeds where the budget needed a λ beyond the method's λ range (the environment's budget rule then cut the spend). */
  beyondLambdaMax: number;
}

export interface Table1Row {
  method: string;
  label: string;
  role: MethodRole;
  /** Means over every budget and seed. */
  roi: number | null;
  incrementalRoi: number | null;
  baRate: number;
  revenue: number;
  incrementalRevenue: number;
}

export interface ComparisonRow {
  budget: string;
  /** The method SACO is compared with. */
  other: string;
  otherLabel: string;
  role: MethodRole;
  sacoRevenue: number;
  otherRevenue: number;
  /** SACO − other per seed (paired: the same world and test users), mean and sd over seeds. */
  diff: Stat;
  /** diff.mean / diff.sd: the margin in standard deviations of the paired difference (null with one seed or sd 0). */
  sdUnits: number | null;
  verdict: 'win' | 'loss' | 'tie';
}

export interface WinsRow {
  other: string;
  otherLabel: string;
  role: MethodRole;
  wins: number;
  losses: number;
  ties: number;
  /** Budgets lost, with the margin. */
  lost: Array<{ budget: string; diff: number; sdUnits: number | null }>;
}

export interface ReportInput {
  data: {
    preset: string;
    description: string;
    /** An SY preset, or a log run in the learned simulator (absent: SY). */
    kind?: 'sy' | 'log';
    /** The environment every method runs in, in words (absent: SY's ground truth). */
    world?: string;
    env: Record<string, unknown>;
    users: number;
    trainUsers: number;
    testUsers: number;
    rounds: number;
    /** Methods asked for that cannot run on this data, and why (the Oracle on a log). */
    unavailable?: Array<{ method: string; label: string; why: string }>;
  };
  budgets: EvalBudget[];
  seeds: number[];
  methods: EvalMethod[];
  records: EvalRecord[];
  datasets: Array<{ seed: number; referenceSpend: number; noCouponRevenue: number; trainUsers: number; testUsers: number }>;
  fits: Array<{ method: string; seed: number; fitted: boolean; seconds: number; cpuSeconds: number | null; info: Record<string, unknown> | null }>;
  settings: Record<string, unknown>;
  seconds: number;
}

export interface EvalReport {
  title: string;
  createdAt: string;
  data: ReportInput['data'];
  /** What "Nx" means here. */
  budgetReference: string;
  budgets: EvalBudget[];
  seeds: number[];
  methods: Array<{ name: string; label: string; role: MethodRole; description: string; lambdaSearched: boolean }>;
  datasets: ReportInput['datasets'];
  table1: Table1Row[];
  perBudget: PerBudgetRow[];
  /** SACO against every baseline (and ablation) at every budget; empty without SACO. */
  comparisons: ComparisonRow[];
  winsLosses: WinsRow[];
  /** The gates of DESIGN.md section 10 that this run measures (SACO only). */
  gates: {
    baRateInRange: Array<{ budget: string; baRate: number; ok: boolean }>;
    oracleShareAtLeast95: Array<{ budget: string; share: number | null; ok: boolean | null }>;
  };
  /** The method Fig. 4 subtracts, and why. */
  fig4: { reference: string | null; note: string };
  /** A log: every plan's round 0 scored on the test users' logged round 0 (empty on SY). */
  offPolicy: OffPolicyRow[];
  fits: ReportInput['fits'];
  settings: Record<string, unknown>;
  /** seconds: wall time of this call; computeSeconds: the sum of every fit and run as it was computed (the cost from an empty cache, without data and report). */
  timing: {
    seconds: number;
    computeSeconds: number;
    /** CPU seconds of every fit and run (every thread); null where some were not measured. */
    computeCpuSeconds: number | null;
    perMethod: Array<{ method: string; fitSeconds: number; runSeconds: number; fitCpuSeconds: number | null; runCpuSeconds: number | null; runs: number; fits: number }>;
  };
  charts: ChartFile[];
  records: EvalRecord[];
}

export interface ReportFiles {
  json: string;
  markdown: string;
  charts: ChartFile[];
}

export const BUDGET_REFERENCE = "N times the uniform logging policy's spend on the same users";

// ---------------------------------------------------------------------------------------
// Statistics.

export function stat(values: readonly number[]): Stat {
  const n = values.length;
  const mean = n ? values.reduce((s, v) => s + v, 0) / n : NaN;
  const sd = n >= 2 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : null;
  return { mean, sd, n };
}

const statOrNull = (values: Array<number | null>): Stat | null => {
  const kept = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return kept.length ? stat(kept) : null;
};

/** Builds every table of the report from the records. */
export function buildReport(input: ReportInput): EvalReport {
  const methods = input.methods.map((m) => ({ name: m.name, label: m.label, role: m.role, description: m.description, lambdaSearched: m.lambdaSearched }));
  const byKey = new Map<string, EvalRecord>();
  for (const r of input.records) byKey.set(`${r.method}|${r.budget}|${r.seed}`, r);
  const get = (method: string, budget: string, seed: number) => byKey.get(`${method}|${budget}|${seed}`);
  const hasOracle = methods.some((m) => m.name === 'oracle');
  const level = new Map(input.budgets.map((b) => [b.label, b.level ?? null]));

  const perBudget: PerBudgetRow[] = [];
  for (const m of methods) {
    for (const b of input.budgets) {
      const rs = input.seeds.map((s) => get(m.name, b.label, s)).filter((r): r is EvalRecord => r !== undefined);
      if (!rs.length) continue;
      const shares = rs.map((r) => {
        const o = get('oracle', b.label, r.seed);
        return o && o.incrementalRevenue > 0 ? r.incrementalRevenue / o.incrementalRevenue : null;
      });
      perBudget.push({
        method: m.name,
        label: m.label,
        role: m.role,
        budget: b.label,
        level: level.get(b.label) ?? null,
        budgetAmount: stat(rs.map((r) => r.budgetAmount)),
        revenue: stat(rs.map((r) => r.revenue)),
        cost: stat(rs.map((r) => r.cost)),
        roi: statOrNull(rs.map((r) => r.roi)),
        baRate: stat(rs.map((r) => r.baRate)),
        incrementalRevenue: stat(rs.map((r) => r.incrementalRevenue)),
        incrementalRoi: statOrNull(rs.map((r) => r.incrementalRoi)),
        lambda: statOrNull(rs.map((r) => r.lambda)),
        oracleShare: hasOracle ? statOrNull(shares) : null,
        notBinding: rs.filter((r) => r.budgetNotBinding).length,
        beyondLambdaMax: rs.filter((r) => r.needsMoreThanLambdaMax).length,
      });
    }
  }

  const table1: Table1Row[] = methods
    .map((m) => {
      const rs = input.records.filter((r) => r.method === m.name);
      if (!rs.length) return undefined;
      const mean = (xs: Array<number | null>) => statOrNull(xs)?.mean ?? null;
      return {
        method: m.name,
        label: m.label,
        role: m.role,
        roi: mean(rs.map((r) => r.roi)),
        incrementalRoi: mean(rs.map((r) => r.incrementalRoi)),
        baRate: stat(rs.map((r) => r.baRate)).mean,
        revenue: stat(rs.map((r) => r.revenue)).mean,
        incrementalRevenue: stat(rs.map((r) => r.incrementalRevenue)).mean,
      };
    })
    .filter((r): r is Table1Row => r !== undefined);

  const comparisons: ComparisonRow[] = [];
  const saco = methods.find((m) => m.role === 'saco');
  if (saco) {
    for (const other of methods.filter((m) => m.role === 'baseline' || m.role === 'ablation')) {
      for (const b of input.budgets) {
        const pairs = input.seeds.map((s) => [get(saco.name, b.label, s), get(other.name, b.label, s)] as const).filter((p): p is readonly [EvalRecord, EvalRecord] => !!p[0] && !!p[1]);
        if (!pairs.length) continue;
        const diff = stat(pairs.map(([a, o]) => a.revenue - o.revenue));
        comparisons.push({
          budget: b.label,
          other: other.name,
          otherLabel: other.label,
          role: other.role,
          sacoRevenue: stat(pairs.map(([a]) => a.revenue)).mean,
          otherRevenue: stat(pairs.map(([, o]) => o.revenue)).mean,
          diff,
          sdUnits: diff.sd !== null && diff.sd > 0 ? diff.mean / diff.sd : null,
          verdict: diff.mean > 0 ? 'win' : diff.mean < 0 ? 'loss' : 'tie',
        });
      }
    }
  }
  const winsLosses: WinsRow[] = [];
  for (const other of methods.filter((m) => m.role === 'baseline' || m.role === 'ablation')) {
    const rows = comparisons.filter((c) => c.other === other.name);
    if (!rows.length) continue;
    winsLosses.push({
      other: other.name,
      otherLabel: other.label,
      role: other.role,
      wins: rows.filter((c) => c.verdict === 'win').length,
      losses: rows.filter((c) => c.verdict === 'loss').length,
      ties: rows.filter((c) => c.verdict === 'tie').length,
      lost: rows.filter((c) => c.verdict === 'loss').map((c) => ({ budget: c.budget, diff: c.diff.mean, sdUnits: c.sdUnits })),
    });
  }

  const sacoRows = saco ? perBudget.filter((r) => r.method === saco.name) : [];
  const gates = {
    baRateInRange: sacoRows.map((r) => ({ budget: r.budget, baRate: r.baRate.mean, ok: r.baRate.mean >= 0.98 && r.baRate.mean <= 1.0 })),
    oracleShareAtLeast95: sacoRows.map((r) => ({ budget: r.budget, share: r.oracleShare?.mean ?? null, ok: r.oracleShare ? r.oracleShare.mean >= 0.95 : null })),
  };

  const hasForest = methods.some((m) => m.name === 'forest');
  const hasRandom = methods.some((m) => m.name === 'random');
  const fig4 = hasForest
    ? { reference: 'forest', note: 'revenue of each method minus the causal forest\'s (Forest), as in the paper\'s Fig. 4' }
    : hasRandom
      ? { reference: 'random', note: 'Forest is not among the methods of this run (not built yet, or not asked for): the differences are against Random (the uniform logging policy) instead of the paper\'s Forest' }
      : { reference: null, note: 'neither Forest nor Random is among the methods of this run: no Fig. 4' };

  const testUsersOf = new Map(input.datasets.map((x) => [x.seed, x.testUsers]));
  const offPolicy: OffPolicyRow[] = [];
  for (const m of methods) {
    for (const b of input.budgets) {
      const rs = input.seeds.map((s) => get(m.name, b.label, s)).filter((r): r is EvalRecord & { offPolicy: RoundZeroCheck } => r !== undefined && r.offPolicy !== null && r.offPolicy !== undefined);
      if (!rs.length) continue;
      // over the seeds that have the number (a NaN is stored as null and read back as such)
      const mean = (f: (c: RoundZeroCheck) => number | null) => statOrNull(rs.map((r) => f(r.offPolicy)))?.mean ?? NaN;
      const outcome = (k: 'revenue' | 'cost') => ({ ips: mean((c) => c[k].ips), se: mean((c) => c[k].ipsSe), snips: mean((c) => c[k].snips), snipsSe: mean((c) => c[k].snipsSe) });
      offPolicy.push({
        method: m.name,
        label: m.label,
        budget: b.label,
        seeds: rs.length,
        users: mean((c) => c.users),
        source: rs[0].offPolicy.source,
        agreement: mean((c) => c.agreement),
        revenue: outcome('revenue'),
        cost: outcome('cost'),
        simulatorRevenuePerUser: input.data.rounds === 1 ? stat(rs.map((r) => r.revenue / (testUsersOf.get(r.seed) ?? NaN))).mean : null,
      });
    }
  }

  const perMethod = methods.map((m) => {
    const rs = input.records.filter((r) => r.method === m.name);
    const runs = new Map<string, EvalRecord>();
    for (const r of rs) runs.set(`${r.seed}|${m.name === 'no-coupon' ? '' : r.budget}`, r);
    const fs = input.fits.filter((f) => f.method === m.name);
    const sum = (xs: Array<number | null>) => (xs.every((x) => x !== null) ? (xs as number[]).reduce((s, v) => s + v, 0) : null);
    return {
      method: m.name,
      fitSeconds: fs.reduce((s, f) => s + f.seconds, 0),
      runSeconds: [...runs.values()].reduce((s, r) => s + r.seconds, 0),
      fitCpuSeconds: sum(fs.map((f) => f.cpuSeconds)),
      runCpuSeconds: sum([...runs.values()].map((r) => r.cpuSeconds)),
      runs: runs.size,
      fits: fs.filter((f) => f.fitted).length,
    };
  });

  return {
    title: `saco eval: ${input.data.preset}`,
    createdAt: new Date().toISOString(),
    data: input.data,
    budgetReference: BUDGET_REFERENCE,
    budgets: input.budgets,
    seeds: input.seeds,
    methods,
    datasets: input.datasets,
    table1,
    perBudget,
    comparisons,
    winsLosses,
    gates,
    fig4,
    offPolicy,
    fits: input.fits,
    settings: input.settings,
    timing: {
      seconds: input.seconds,
      computeSeconds: perMethod.reduce((t, m) => t + m.fitSeconds + m.runSeconds, 0),
      computeCpuSeconds: perMethod.every((m) => m.fitCpuSeconds !== null && m.runCpuSeconds !== null) ? perMethod.reduce((t, m) => t + (m.fitCpuSeconds as number) + (m.runCpuSeconds as number), 0) : null,
      perMethod,
    },
    charts: [],
    records: input.records,
  };
}

// ---------------------------------------------------------------------------------------
// Markdown. Columns declare how they format, so the markdown holds exactly the JSON's numbers.

/** Decimal places of each kind of number in report.md. */
export const DECIMALS = { money: 1, ratio: 3, share: 3, sd: 2, lambda: 4, perUser: 4 } as const;

const num = (x: number | null | undefined, decimals: number): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(decimals));
const signed = (x: number | null | undefined, decimals: number): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x > 0 ? '+' : ''}${x.toFixed(decimals)}`);
const pm = (s: Stat | null, decimals: number, sign = false): string => {
  if (!s) return '–';
  const m = sign ? signed(s.mean, decimals) : num(s.mean, decimals);
  return s.sd === null ? m : `${m} ± ${num(s.sd, decimals)}`;
};

function mdTable(head: string[], rows: string[][], align?: Array<'l' | 'r'>): string[] {
  const a = align ?? head.map((_, k) => (k === 0 ? 'l' : 'r'));
  return [`| ${head.join(' | ')} |`, `| ${a.map((x) => (x === 'l' ? ':--' : '--:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** "not binding 1/3; λ > λmax 2/3", or '' when the search met every budget. */
function searchNote(r: PerBudgetRow): string {
  const n = r.revenue.n;
  const notes = [r.notBinding ? `not binding ${r.notBinding}/${n}` : '', r.beyondLambdaMax ? `λ > λmax ${r.beyondLambdaMax}/${n}` : ''].filter(Boolean);
  return notes.join('; ');
}

const roleText: Record<MethodRole, string> = { saco: 'SACO', ablation: 'ablation', baseline: 'baseline', reference: 'upper reference (not a baseline)' };

/** report.md. */
export function renderMarkdown(rep: EvalReport): string {
  const L: string[] = [];
  const labelOf = new Map(rep.methods.map((m) => [m.name, m.label]));
  const saco = rep.methods.find((m) => m.role === 'saco');
  const d = rep.data;
  L.push(`# ${rep.title}`, '');
  if (d.kind === 'log') {
    L.push(`Data: **${d.preset}**: ${d.description}. ${d.users} users of the log, split per seed into ${d.trainUsers} training users and ${d.testUsers} test users (never seen in training), ${d.rounds} rounds; seeds ${rep.seeds.join(', ')} (a seed splits the log's users, fits the simulator on its training users and keys the simulator's draws).`);
  } else {
    L.push(`Data: **${d.preset}**: ${d.description}. ${d.trainUsers} training users (logged by the uniform policy) and ${d.testUsers} fresh test users per seed, ${d.rounds} rounds; seeds ${rep.seeds.join(', ')} (a seed is an SY world, its training log and its test users).`);
  }
  L.push('');
  L.push(`Budgets: ${rep.budgets.map((b) => b.label).join(', ')}, where "Nx" is ${BUDGET_REFERENCE}${d.kind === 'log' ? ' in the simulator' : ''} (the uniform logging policy spends ${rep.datasets.map((x) => `${num(x.referenceSpend, DECIMALS.money)} (seed ${x.seed})`).join(', ')} on the test users).${rep.budgets.some((b) => b.level) ? ' Levels: Low ≤ 0.3x, Medium ≤ 0.6x, High above.' : ''}`);
  L.push('');
  L.push(`Every method runs on the same test users in the same environment (${d.world ?? "SY's ground truth"}) under the same budget rule (a coupon is withheld when, if redeemed, it would take realised spend over the budget); methods with a λ get the same λ search. Revenue, cost and ROI are totals over the test users and rounds; mean ± sd are over seeds.`);
  L.push('');
  if (d.kind === 'log') {
    L.push(
      "**The judge is a model.** The simulator was fitted on the same training users as the methods, and its verdict is its own opinion of what the plans earn: on a log with a known response (saco's repository: its README and \`bench/eval-mtlift.ts\`) its ranking of these methods agreed with the truth's only partly. " +
        `Where the top methods are close, check them against the logged outcomes (the off-policy check below) or an A/B test of their plans${typeof rep.settings.plans === 'string' ? '' : ' (`--plans` writes them)'}.`,
      '',
    );
  }
  if (typeof rep.settings.plans === 'string') L.push(`Every run's plan is a file in the run's folder, ${rep.settings.plans} (the name of its result file; report.json's records name it as planFile): one row per test user and round, with \`saco solve\`'s plan-file columns, to value it outside ${d.kind === 'log' ? 'the simulator' : 'SY'}.`, '');
  if (d.unavailable?.length) L.push(`Not run on this data: ${d.unavailable.map((u) => `${u.label} (${u.why})`).join('; ')}.`, '');
  L.push('## Methods', '');
  L.push(...mdTable(['Method', 'Role', 'What it is'], rep.methods.map((m) => [m.label, roleText[m.role], m.description]), ['l', 'l', 'l']));
  L.push('');
  if (rep.methods.some((m) => m.role === 'reference')) L.push('The Oracle knows the true expected responses: it is an **upper reference, not a baseline** to beat.', '');

  L.push('## Table 1: means over all budgets and seeds', '');
  L.push(...mdTable(['Method', 'Role', 'mean ROI', 'mean incremental ROI', 'mean BARate', 'mean revenue', 'mean incremental revenue'], rep.table1.map((r) => [r.label, roleText[r.role], num(r.roi, DECIMALS.ratio), num(r.incrementalRoi, DECIMALS.ratio), num(r.baRate, DECIMALS.ratio), num(r.revenue, DECIMALS.money), signed(r.incrementalRevenue, DECIMALS.money)]), ['l', 'l', 'r', 'r', 'r', 'r', 'r']));
  L.push('', 'ROI = revenue / cost; incremental ROI = (revenue − no-coupon revenue) / cost; BARate = cost / budget. "–": nothing was spent.', '');

  L.push('## Revenue per budget (mean ± sd over seeds)', '');
  const methodsWithRows = rep.methods.filter((m) => rep.perBudget.some((r) => r.method === m.name));
  L.push(
    ...mdTable(
      ['Method', ...rep.budgets.map((b) => b.label)],
      methodsWithRows.map((m) => [m.label, ...rep.budgets.map((b) => pm(rep.perBudget.find((r) => r.method === m.name && r.budget === b.label)?.revenue ?? null, DECIMALS.money))]),
    ),
  );
  L.push('');
  L.push('## Per budget: every metric (mean ± sd over seeds)', '');
  L.push(
    ...mdTable(
      ['Budget', 'Method', 'Revenue', 'Cost', 'ROI', 'BARate', 'Incremental revenue', 'λ*', 'Search'],
      rep.budgets.flatMap((b) =>
        rep.perBudget
          .filter((r) => r.budget === b.label)
          .map((r) => [b.label, r.label, pm(r.revenue, DECIMALS.money), pm(r.cost, DECIMALS.money), pm(r.roi, DECIMALS.ratio), pm(r.baRate, DECIMALS.ratio), pm(r.incrementalRevenue, DECIMALS.money, true), pm(r.lambda, DECIMALS.lambda), searchNote(r)]),
      ),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  L.push('', 'Search: seeds where the budget did not bind (the method spends less even unconstrained), or needed a λ beyond the method\'s λ range (its spend does not fall far enough with λ; the budget rule then cuts it).', '');

  L.push('## Incremental revenue over no coupon (mean over seeds)', '');
  const incMethods = methodsWithRows.filter((m) => m.name !== 'no-coupon');
  L.push(...mdTable(['Method', ...rep.budgets.map((b) => b.label)], incMethods.map((m) => [m.label, ...rep.budgets.map((b) => signed(rep.perBudget.find((r) => r.method === m.name && r.budget === b.label)?.incrementalRevenue.mean, DECIMALS.money))])));
  L.push('');
  if (rep.methods.some((m) => m.name === 'oracle')) {
    L.push("Share of the Oracle's incremental revenue (per seed, then averaged):", '');
    L.push(...mdTable(['Method', ...rep.budgets.map((b) => b.label)], incMethods.filter((m) => m.name !== 'oracle').map((m) => [m.label, ...rep.budgets.map((b) => num(rep.perBudget.find((r) => r.method === m.name && r.budget === b.label)?.oracleShare?.mean, DECIMALS.share))])));
    L.push('');
  }

  if (saco && rep.comparisons.length) {
    const section = (role: MethodRole, title: string, intro: string) => {
      const rows = rep.comparisons.filter((c) => c.role === role);
      if (!rows.length) return;
      L.push(`## ${title}`, '', intro, '');
      L.push(
        ...mdTable(
          ['Budget', 'Versus', `${saco.label} revenue`, 'Their revenue', 'Δ mean', 'Δ sd', 'Δ / sd', 'Verdict'],
          rows
            .slice()
            .sort((a, b) => rep.budgets.findIndex((x) => x.label === a.budget) - rep.budgets.findIndex((x) => x.label === b.budget))
            .map((c) => [c.budget, c.otherLabel, num(c.sacoRevenue, DECIMALS.money), num(c.otherRevenue, DECIMALS.money), signed(c.diff.mean, DECIMALS.money), num(c.diff.sd, DECIMALS.money), signed(c.sdUnits, DECIMALS.sd), c.verdict === 'win' ? `${saco.label} wins` : c.verdict === 'loss' ? `${saco.label} loses` : 'tie']),
          ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
        ),
      );
      L.push('');
      const wl = rep.winsLosses.filter((w) => w.role === role);
      L.push(...mdTable(['Versus', 'Wins', 'Losses', 'Ties', 'Budgets lost (Δ, Δ / sd)'], wl.map((w) => [w.otherLabel, String(w.wins), String(w.losses), String(w.ties), w.lost.length ? w.lost.map((x) => `${x.budget} (${signed(x.diff, DECIMALS.money)}, ${signed(x.sdUnits, DECIMALS.sd)} sd)`).join('; ') : '–']), ['l', 'r', 'r', 'r', 'l']));
      L.push('');
    };
    section(
      'baseline',
      `${saco.label} against every baseline`,
      `Δ = ${saco.label}'s revenue − the baseline's, paired by seed (same world, same test users); Δ / sd is the mean difference in standard deviations of the per-seed difference (– with one seed). A win is a positive mean Δ, however small: read Δ / sd for how clear it is.`,
    );
    section('ablation', `${saco.label} against its ablations (paper Fig. 5)`, 'The same comparison against SACO with a part removed (not baselines).');
  } else if (!saco) L.push('SACO is not among the methods of this run: no comparison against the baselines.', '');

  if (rep.offPolicy.length) {
    const one = d.rounds === 1;
    const source = rep.offPolicy[0].source;
    L.push("## Off-policy check: each plan's round 0 on the test users' logged round 0", '');
    L.push(
      `The comparison above runs in the learned simulator. This checks each plan against the log alone: its round-0 actions are scored on the test users' logged round 0 by inverse propensity (IPS: [planned = logged] · outcome / propensity, mean over the test users with a logged round-0 decision, ${num(rep.offPolicy[0].users, 0)} per seed on average; estimate and SE averaged over seeds, the SE a seed's: the seeds re-split the same users, so their test users overlap). ` +
        (one ? 'The log has one round, so this covers the whole plan; "sim" is the simulator\'s revenue per test user for the same plan, the quantity IPS estimates. ' : 'Only round 0 can be checked: later rounds of a plan answer simulated histories, not the logged ones. ') +
        (source === 'logged'
          ? "Propensities: the log's own (schema `propensity`)."
          : "Propensities: the share of each action among the training users' logged round-0 decisions, right only if the log was randomised independently of the users; name the logged propensities in the schema (`propensity`) for a targeted log."),
      '',
    );
    const methodsChecked = offPolicyMethods(rep);
    const cell = (m: string, b: string, k: 'revenue' | 'cost') => {
      const r = offPolicyRow(rep, m, b);
      if (!r) return '–';
      const est = `${num(r[k].ips, DECIMALS.perUser)} ± ${num(r[k].se, DECIMALS.perUser)}`;
      return k === 'revenue' && r.simulatorRevenuePerUser !== null ? `${est} (sim ${num(r.simulatorRevenuePerUser, DECIMALS.perUser)})` : est;
    };
    L.push('Round-0 revenue per test user, IPS ± SE:', '');
    L.push(...mdTable(['Method', ...rep.budgets.map((b) => b.label)], methodsChecked.map((m) => [m.label, ...rep.budgets.map((b) => cell(m.name, b.label, 'revenue'))])));
    L.push('', 'Round-0 cost per test user, IPS ± SE:', '');
    L.push(...mdTable(['Method', ...rep.budgets.map((b) => b.label)], methodsChecked.map((m) => [m.label, ...rep.budgets.map((b) => cell(m.name, b.label, 'cost'))])));
    L.push('', 'Share of test users whose planned round-0 action is the logged one (how many outcomes each estimate rests on):', '');
    L.push(...mdTable(['Method', ...rep.budgets.map((b) => b.label)], methodsChecked.map((m) => [m.label, ...rep.budgets.map((b) => num(offPolicyRow(rep, m.name, b.label)?.agreement, DECIMALS.share))])));
    L.push('', 'report.json holds the self-normalised estimates (SNIPS) beside these.', '');
  }

  if (saco && rep.gates.baRateInRange.length) {
    L.push('## Gates (DESIGN.md section 10)', '');
    L.push(
      ...mdTable(
        ['Budget', `${saco.label} BARate`, 'in [0.98, 1.0]', "share of the Oracle's incremental revenue", '≥ 0.95'],
        rep.gates.baRateInRange.map((g, k) => {
          const o = rep.gates.oracleShareAtLeast95[k];
          return [g.budget, num(g.baRate, DECIMALS.ratio), g.ok ? 'yes' : 'no', num(o?.share, DECIMALS.share), o?.ok === null || o === undefined ? '–' : o.ok ? 'yes' : 'no'];
        }),
        ['l', 'r', 'l', 'r', 'l'],
      ),
    );
    L.push('');
  }

  if (rep.charts.length) {
    L.push('## Charts', '');
    if (rep.fig4.reference) L.push(`Fig. 4: ${rep.fig4.note}.`, '');
    for (const c of rep.charts) L.push(`### ${c.title}`, '', `![${c.title}](${path.basename(c.png)}) ([SVG](${path.basename(c.svg)}))`, '');
  }

  L.push('## Time', '');
  L.push(
    ...mdTable(
      ['Method', 'Trained in this run', 'Fit s', 'Fit CPU s', 'Runs', 'Run s', 'Run CPU s'],
      rep.timing.perMethod.map((t) => [labelOf.get(t.method) ?? t.method, String(t.fits), num(t.fitSeconds, 1), num(t.fitCpuSeconds, 1), String(t.runs), num(t.runSeconds, 1), num(t.runCpuSeconds, 1)]),
    ),
  );
  L.push('', `Fit s and Run s are the times each fit and run took when it was computed (perhaps by an earlier run into the same folder): their sum, ${num(rep.timing.computeSeconds, 1)} s, is the cost from an empty cache (without building the data and writing the report). CPU s counts every thread (user + system): on a machine shared with other work it is the steadier measure${rep.timing.computeCpuSeconds !== null ? ` (${num(rep.timing.computeCpuSeconds, 1)} CPU s in all)` : ''}. Wall time of this run: ${num(rep.timing.seconds, 1)} s.`, '');
  return `${L.join('\n')}\n`;
}

/** Writes report.json, report.md and the charts into `out`. */
export async function writeReport(rep: EvalReport, out: string, options: { charts?: boolean } = {}): Promise<ReportFiles> {
  if (options.charts ?? true) rep.charts = await renderCharts(rep, out);
  const json = path.join(out, 'report.json');
  const markdown = path.join(out, 'report.md');
  writeJsonAtomic(json, rep);
  writeFileAtomic(markdown, new TextEncoder().encode(renderMarkdown(rep)));
  return { json, markdown, charts: rep.charts };
}
