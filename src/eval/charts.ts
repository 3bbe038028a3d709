/**
 * The charts of the eval report, as vega-lite specs compiled with vega-lite, rendered to SVG by
 * vega headless (no browser, no canvas) and to PNG by resvg (its prebuilt binary comes with
 * the npm package). resvg needs a font: DejaVu Sans (Debian's fonts-dejavu-core) when it is
 * there, else whatever fonts the system has.
 *
 * - Fig. 4: revenue difference against Forest per budget level (against Random, said so, when
 *   Forest is not in the run).
 * - Fig. 5: the ablations: revenue to the right, cost to the left, the budget as a dashed line.
 * - C(λ): the unbudgeted spend of every λ-searched method at the λ its searches probed.
 * - Revenue against budget for every method.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EvalReport } from './report.js';

export interface ChartFile {
  name: string;
  title: string;
  svg: string;
  png: string;
}

/** A vega-lite spec (kept loose: the package's types are large and the specs are data). */
type Spec = Record<string, unknown>;

const FONT_FILES = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'];
const FONT = 'DejaVu Sans';

/** Shared look: white background, readable sizes. */
const CONFIG = {
  background: 'white',
  font: FONT,
  padding: 12,
  title: { fontSize: 17, subtitleFontSize: 13, anchor: 'start', offset: 12, subtitleColor: '#444' },
  axis: { labelFontSize: 12, titleFontSize: 13, titlePadding: 8, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 13, labelLimit: 260 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  view: { stroke: '#bbb' },
};

/** Lines of at most `width` characters (vega sizes the chart to its estimate of the text's width, which runs long). */
export function wrap(text: string | string[], width = 72): string[] {
  const lines: string[] = [];
  for (const paragraph of Array.isArray(text) ? text : [text]) {
    let line = '';
    for (const word of paragraph.split(/\s+/)) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line) lines.push(line);
  }
  return lines;
}

const SACO_COLOR = '#d62728';
const REFERENCE_COLOR = '#222222';
const BASELINE_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#aec7e8', '#98df8a', '#ffbb78'];
const ABLATION_COLORS = ['#9467bd', '#c5b0d5', '#f7b6d2', '#c49c94'];

/** One colour per method, the same in every chart: SACO red, the Oracle near-black, baselines and ablations from their own palettes. */
export function methodColors(rep: Pick<EvalReport, 'methods'>, labels?: readonly string[]): { domain: string[]; range: string[] } {
  let b = 0;
  let a = 0;
  const all = rep.methods.map((m) => ({
    label: m.label,
    color: m.role === 'saco' ? SACO_COLOR : m.role === 'reference' ? REFERENCE_COLOR : m.role === 'ablation' ? ABLATION_COLORS[a++ % ABLATION_COLORS.length] : BASELINE_COLORS[b++ % BASELINE_COLORS.length],
  }));
  const kept = labels ? all.filter((x) => labels.includes(x.label)) : all;
  return { domain: kept.map((x) => x.label), range: kept.map((x) => x.color) };
}

/** The unit of revenue and cost on the charts: SY's currency, or a log's own reward and cost units (a count of redemptions, say). */
function unit(rep: Pick<EvalReport, 'data'>): string {
  return rep.data.kind === 'log' ? "the log's units" : 'currency';
}

function base(title: string, subtitle: string | string[]): Spec {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: { text: title, subtitle: wrap(subtitle) }, config: CONFIG };
}

/** Fig. 4: mean revenue difference against the reference method per budget level. */
export function fig4Spec(rep: EvalReport): Spec | undefined {
  const ref = rep.fig4.reference;
  if (!ref) return undefined;
  const refLabel = rep.methods.find((m) => m.name === ref)?.label ?? ref;
  const groupOf = (budget: string) => rep.budgets.find((b) => b.label === budget)?.level ?? budget;
  const groups = [...new Set(rep.budgets.map((b) => groupOf(b.label)))];
  const values: Array<Record<string, unknown>> = [];
  for (const m of rep.methods) {
    if (m.name === ref || m.name === 'no-coupon' || m.role === 'ablation') continue;
    for (const g of groups) {
      // per seed: the mean over the group's budgets of (method − reference); then mean and sd over seeds
      const perSeed = rep.seeds
        .map((s) => {
          const diffs = rep.budgets
            .filter((b) => groupOf(b.label) === g)
            .map((b) => {
              const a = rep.records.find((r) => r.method === m.name && r.budget === b.label && r.seed === s);
              const o = rep.records.find((r) => r.method === ref && r.budget === b.label && r.seed === s);
              return a && o ? a.revenue - o.revenue : undefined;
            })
            .filter((x): x is number => x !== undefined);
          return diffs.length ? diffs.reduce((x, y) => x + y, 0) / diffs.length : undefined;
        })
        .filter((x): x is number => x !== undefined);
      if (!perSeed.length) continue;
      const mean = perSeed.reduce((x, y) => x + y, 0) / perSeed.length;
      const sd = perSeed.length > 1 ? Math.sqrt(perSeed.reduce((x, y) => x + (y - mean) ** 2, 0) / (perSeed.length - 1)) : 0;
      values.push({ method: m.label, group: g, diff: mean, lo: mean - sd, hi: mean + sd });
    }
  }
  if (!values.length) return undefined;
  const levels = groups.every((g) => ['Low', 'Medium', 'High'].includes(g));
  const order = rep.methods.map((m) => m.label).filter((l) => values.some((v) => v.method === l));
  return {
    ...base(`Fig. 4: revenue difference against ${refLabel} per budget ${levels ? 'level' : ''}`.trim(), [
      ref === 'forest' ? `each method's revenue minus ${refLabel}'s on the same test users (mean over the level's budgets; bars: mean over seeds, whiskers: ± 1 sd)` : `Forest is not in this run: the differences are against Random (the uniform logging policy) instead`,
      levels ? 'levels: Low 0.1x-0.3x, Medium 0.4x-0.6x, High 0.7x-0.9x of the uniform logging policy\'s spend on the same users' : 'budgets as given',
    ]),
    data: { values },
    width: { step: Math.max(12, Math.min(28, Math.floor(420 / order.length))) },
    height: 320,
    encoding: {
      x: { field: 'group', type: 'nominal', sort: groups, title: levels ? 'budget level' : 'budget', axis: { labelAngle: 0 } },
      xOffset: { field: 'method', sort: order },
    },
    layer: [
      { mark: { type: 'bar' }, encoding: { y: { field: 'diff', type: 'quantitative', title: `revenue − ${refLabel}'s (${unit(rep)})` }, color: { field: 'method', type: 'nominal', sort: order, title: 'method', scale: methodColors(rep, order) } } },
      { mark: { type: 'rule', color: '#333' }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
      { data: { values: [{ zero: 0 }] }, mark: { type: 'rule', color: '#000' }, encoding: { y: { field: 'zero', type: 'quantitative' }, x: null, xOffset: null } },
    ],
  };
}

/** Fig. 5: SACO and its ablations: revenue right, cost left, the budget a dashed line on the cost side. */
export function fig5Spec(rep: EvalReport): Spec | undefined {
  const ablations = rep.methods.filter((m) => m.role === 'saco' || m.role === 'ablation');
  if (!ablations.some((m) => m.role === 'ablation')) return undefined;
  const order = ablations.map((m) => m.label);
  const values: Array<Record<string, unknown>> = [];
  for (const b of rep.budgets) {
    for (const m of ablations) {
      const row = rep.perBudget.find((r) => r.method === m.name && r.budget === b.label);
      if (!row) continue;
      values.push({ budget: b.label, method: m.label, measure: 'revenue', value: row.revenue.mean, kind: 'bar' });
      values.push({ budget: b.label, method: m.label, measure: 'cost', value: -row.cost.mean, kind: 'bar' });
    }
    const amount = rep.perBudget.find((r) => r.budget === b.label && ablations.some((m) => m.name === r.method))?.budgetAmount.mean;
    if (amount !== undefined) values.push({ budget: b.label, value: -amount, kind: 'budget' });
  }
  return {
    ...base('Fig. 5: ablations: revenue (right) and cost (left) per budget', [
      `bars: mean over seeds, in ${unit(rep)} over all test users; cost drawn negative; dashed line: the budget (on the cost side)`,
      "budgets as N times the uniform logging policy's spend on the same users",
    ]),
    data: { values },
    facet: { field: 'budget', type: 'ordinal', sort: rep.budgets.map((b) => b.label), title: 'budget', header: { labelFontSize: 13 } },
    columns: 3,
    spec: {
      width: 260,
      height: { step: 22 },
      layer: [
        {
          transform: [{ filter: "datum.kind === 'bar'" }],
          mark: { type: 'bar' },
          encoding: {
            y: { field: 'method', type: 'nominal', sort: order, title: null },
            x: { field: 'value', type: 'quantitative', title: `← cost | revenue → (${unit(rep)})` },
            color: { field: 'measure', type: 'nominal', title: 'measure', scale: { domain: ['revenue', 'cost'], range: ['#4c78a8', '#e45756'] } },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'budget'" }],
          mark: { type: 'rule', strokeDash: [6, 4], color: '#000', strokeWidth: 1.5 },
          encoding: { x: { field: 'value', type: 'quantitative' } },
        },
      ],
    },
    resolve: { scale: { x: 'shared' } },
  };
}

/** C(λ): natural (unbudgeted) spend of each λ-searched method, as a multiple of the logging spend, at every λ probed. */
export function cLambdaSpec(rep: EvalReport): Spec | undefined {
  const values: Array<Record<string, unknown>> = [];
  const searched = rep.methods.filter((m) => m.lambdaSearched);
  for (const m of searched) {
    for (const s of rep.seeds) {
      const seen = new Set<number>();
      for (const r of rep.records.filter((x) => x.method === m.name && x.seed === s)) {
        for (const p of r.trace) {
          if (seen.has(p.lambda)) continue;
          seen.add(p.lambda);
          values.push({ method: m.label, seed: `seed ${s}`, lambda: p.lambda, spend: p.cost / r.referenceSpend });
        }
      }
    }
  }
  if (!values.length) return undefined;
  const methods = searched.map((m) => m.label).filter((l) => values.some((v) => v.method === l));
  const budgets = rep.budgets.filter((b) => b.multiple !== undefined).map((b) => ({ method: undefined, multiple: b.multiple }));
  const facetValues = [...values.map((v) => ({ ...v, kind: 'probe' })), ...methods.flatMap((m) => budgets.map((b) => ({ method: m, spend: b.multiple, kind: 'budget' })))];
  return {
    ...base('C(λ): spend of each λ-searched method as λ rises', [
      "natural (unbudgeted) spend at every λ the searches probed, ÷ the uniform logging policy's spend on the same users; one line per seed",
      'grey dashed: the budgets of this run. λ prices one unit of cost in revenue; each method has its own λ scale',
    ]),
    data: { values: facetValues },
    facet: { field: 'method', type: 'nominal', sort: methods, title: null, header: { labelFontSize: 14, labelFontWeight: 'bold' } },
    columns: Math.min(3, methods.length),
    spec: {
      width: 260,
      height: 200,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'budget'" }],
          mark: { type: 'rule', strokeDash: [4, 4], color: '#aaa' },
          encoding: { y: { field: 'spend', type: 'quantitative' } },
        },
        {
          transform: [{ filter: "datum.kind === 'probe'" }],
          mark: { type: 'line', point: { size: 30 } },
          encoding: {
            x: { field: 'lambda', type: 'quantitative', title: 'λ (revenue per unit of cost; symlog scale)', scale: { type: 'symlog' }, axis: { format: '~r' } },
            y: { field: 'spend', type: 'quantitative', title: 'C(λ) (x logging spend)' },
            color: { field: 'seed', type: 'nominal', title: 'seed' },
            order: { field: 'lambda' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent' } },
  };
}

/** Revenue against budget, every method (mean over seeds). */
export function revenueVsBudgetSpec(rep: EvalReport): Spec | undefined {
  const multiples = rep.budgets.every((b) => b.multiple !== undefined);
  const values = rep.perBudget.map((r) => {
    const b = rep.budgets.find((x) => x.label === r.budget);
    const x = multiples ? (b?.multiple as number) : r.budgetAmount.mean;
    return { method: r.label, x, revenue: r.revenue.mean, role: r.role };
  });
  if (!values.length) return undefined;
  const order = rep.methods.map((m) => m.label).filter((l) => values.some((v) => v.method === l));
  const xTitle = multiples ? 'budget (x logging spend)' : `budget (${unit(rep)})`;
  return {
    ...base('Revenue against budget, every method', [
      `revenue on all test users (${unit(rep)}), mean over seeds (report.md has the sd; seeds are different worlds, so compare methods there, paired by seed)`,
      "budget: N times the uniform logging policy's spend on the same users",
      'dashed: the Oracle, an upper reference, not a baseline',
    ]),
    data: { values },
    width: 560,
    height: 360,
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xTitle, ...(multiples ? { axis: { values: rep.budgets.map((b) => b.multiple), labelExpr: "format(datum.value, '~g') + 'x'" } } : {}) },
      color: { field: 'method', type: 'nominal', sort: order, title: 'method', scale: methodColors(rep, order) },
    },
    layer: [
      { mark: { type: 'line', point: true }, encoding: { y: { field: 'revenue', type: 'quantitative', title: `revenue (${unit(rep)})`, scale: { zero: false } }, strokeDash: { condition: { test: "datum.role === 'reference'", value: [6, 4] }, value: [1, 0] }, strokeWidth: { condition: { test: "datum.role === 'saco'", value: 3.5 }, value: 2 } } },
    ],
  };
}

/** Compiles a vega-lite spec and renders it to SVG (headless). */
export async function specToSvg(spec: Spec): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders SVG to PNG at 2x with resvg (DejaVu Sans where installed, else the system's fonts). */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  const files = FONT_FILES.filter((f) => existsSync(f));
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: files.length ? { fontFiles: files, loadSystemFonts: false, defaultFontFamily: FONT } : { loadSystemFonts: true, defaultFontFamily: FONT },
  });
  return resvg.render().asPng();
}

/** Writes every chart of the report as <name>.svg and <name>.png into `out`. */
export async function renderCharts(rep: EvalReport, out: string): Promise<ChartFile[]> {
  const charts: Array<[string, string, Spec | undefined]> = [
    ['fig4-revenue-difference', rep.fig4.reference === 'forest' ? 'Fig. 4: revenue difference against Forest per budget level' : 'Fig. 4: revenue difference against Random per budget level (Forest not in this run)', fig4Spec(rep)],
    ['fig5-ablation', 'Fig. 5: ablations (revenue right, cost left, budget dashed)', fig5Spec(rep)],
    ['c-lambda', 'C(λ) of every λ-searched method', cLambdaSpec(rep)],
    ['revenue-vs-budget', 'Revenue against budget, every method', revenueVsBudgetSpec(rep)],
  ];
  const files: ChartFile[] = [];
  for (const [name, title, spec] of charts) {
    if (!spec) continue;
    const svg = await specToSvg(spec);
    const svgFile = path.join(out, `${name}.svg`);
    const pngFile = path.join(out, `${name}.png`);
    writeFileSync(svgFile, svg);
    writeFileSync(pngFile, await svgToPng(svg));
    files.push({ name, title, svg: svgFile, png: pngFile });
  }
  return files;
}
