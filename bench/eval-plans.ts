/**
 * For benches that value `saco eval`'s plans with a known response (bench/eval-mtlift.ts,
 * bench/eval-sy-log.ts): run evaluate() on a log with its plans written, and read a plan file
 * back (src/solve/plan-file.ts: one row per (user, round), users in order, rounds ascending).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { DataSchema } from '../src/data/schema.js';
import { evaluate, type EvaluateResult } from '../src/eval/run.js';

/** evaluate() on the log `file` with every plan written (no charts), a progress line every 10 s. */
export async function evaluateWithPlans(file: string, schema: DataSchema, o: { out: string; seeds: number; budgets: string[]; methods?: string[] }): Promise<EvaluateResult> {
  let last = 0;
  return evaluate({
    data: file,
    schema,
    ...o,
    plans: true,
    charts: false,
    onNotice: (line) => console.log(line),
    onProgress: (p) => {
      if (performance.now() - last < 10_000 && p.phase !== 'done') return;
      last = performance.now();
      console.log(`${p.done}/${p.total} ${p.phase} ${p.method ?? ''} ${p.budget ?? ''} seed ${p.seed ?? ''} ${p.detail ?? ''}`);
    },
  });
}

/**
 * The plan file `file` as users × rounds of labels per action column. A plain split on commas:
 * user ids and labels must hold none (the benches' logs have numbers only).
 */
export interface PlanRows {
  /** The users, in the file's order. */
  userIds: string[];
  rounds: number;
  /** Per action column: the label of every row [users * rounds], row = user * rounds + round. */
  labels: string[][];
}
export function readPlanFile(file: string, actionColumns: readonly string[]): PlanRows {
  const [head, ...rows] = gunzipSync(readFileSync(file)).toString('utf8').trim().split('\n').map((l) => l.split(','));
  const col = (name: string) => {
    const k = head.indexOf(name);
    if (k < 0) throw new Error(`${file}: no column ${name} in ${head.join(',')}`);
    return k;
  };
  const [user, round] = [col('user_id'), col('round')];
  const actions = actionColumns.map(col);
  const rounds = new Set(rows.map((r) => r[round])).size;
  if (rounds === 0) throw new Error(`${file}: no rows`);
  const userIds = rows.filter((_, i) => i % rounds === 0).map((r) => r[user]);
  if (userIds.length * rounds !== rows.length || rows.some((r, i) => r[user] !== userIds[Math.floor(i / rounds)])) throw new Error(`${file}: rows are not users × ${rounds} rounds in order`);
  return { userIds, rounds, labels: actions.map((k) => rows.map((r) => r[k])) };
}
