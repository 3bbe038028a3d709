/**
 * Reads back a plan file that `saco solve --out` or `saco eval --plans` wrote as CSV.gz
 * (src/solve/plan-file.ts: one row per (user, round), users in order, rounds ascending), for
 * benches that value plans with a known response. A plain split on commas: user ids and labels
 * must hold none (the benches' logs have numbers only).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

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
