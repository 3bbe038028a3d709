/**
 * writePlan(): a solved plan as a file a campaign can ship: one row per (user, round) with the
 * user's id, the round, the action label of each action dimension, the policy's probability
 * of the issued action, the environment's expected revenue and cost of it, whether the budget
 * withheld the policy's coupon, and λ*. CSV, CSV.gz or Parquet by extension, written through
 * src/data/write.ts (a temporary name, then a rename: a failure leaves no file).
 */
import { BOOLEAN, DOUBLE, INTEGER } from '@duckdb/node-api';
import { ArgumentError } from '../errors.js';
import { labelColumn, userIdColumn, writeColumns, type OutColumn } from '../data/write.js';
import type { SolveResult } from './index.js';

/**
 * Who the plan's users are and what its action indices mean. A log's trajectories (the users
 * solve() planned) have both fields; for fresh SY users give `{ userIds: [0, 1, …],
 * actionEncodings: model.meta.actionEncodings }`.
 */
export interface PlanLabels {
  /** One per user, in the order of the plan (the log's id strings). */
  userIds: ArrayLike<string | number>;
  /** Per action dimension: the column name and the label of each index (the model's / simulator's encodings). */
  actionEncodings: ReadonlyArray<{ column: string; values: ReadonlyArray<number | string> }>;
}

/** What a plan file is written from: a solve() result with plan details (`method` 'none': no λ to write). */
export type PlanSource = Pick<SolveResult, 'plan' | 'planDetails' | 'users' | 'rounds' | 'lambda'> & Partial<Pick<SolveResult, 'method'>>;

/** NaN is written as an empty cell (SQL NULL): "not defined", not a number. */
const orNull = (x: number): number => (Number.isNaN(x) ? (null as unknown as number) : x);

/**
 * Writes `result`'s plan to `file` (.csv, .csv.gz or .parquet): users × rounds rows, users in
 * the plan's order and rounds ascending, with columns `user_id` (an integer where every id is
 * one, else text), `round` (the campaign round: `planDetails.startRound` + r), one column per
 * action dimension holding the issued action's label, `probability`, `expected_revenue`,
 * `expected_cost` (empty where undefined, see {@link PlanDetails}), `withheld` (true: the
 * budget issued the control instead of the policy's coupon) and `lambda` (λ*, on every row;
 * empty for a policy without λ: `result.method` 'none').
 * Returns the number of rows written.
 *
 * @throws {ArgumentError} when `result` has no plan details (solve with `planDetails: true`),
 *   `labels` do not fit the plan (user count, action dimensions, an index without a label),
 *   two columns would share a name, or `file` has another extension.
 * @example
 * const result = await solve({ model, users: trajectories, budget: '0.5x', env: { kind: 'sim', simulator }, planDetails: true });
 * await writePlan(result, trajectories, 'plan.parquet');
 */
export async function writePlan(result: PlanSource, labels: PlanLabels, file: string): Promise<number> {
  const details = result.planDetails;
  if (!details) throw new ArgumentError('result', 'has no plan details: solve with planDetails: true');
  const { users: N, rounds: R, plan } = result;
  const encodings = labels.actionEncodings;
  const A = encodings.length;
  if (labels.userIds.length !== N) throw new ArgumentError('labels.userIds', `has ${labels.userIds.length} ids, the plan ${N} users`);
  if (A === 0 || plan.length !== N * R * A) throw new ArgumentError('labels.actionEncodings', `${A} action dimension(s) do not fit a plan of ${N} users x ${R} rounds with ${plan.length / (N * R)} per round`);
  plan.forEach((k, q) => {
    if (!(k >= 0 && k < encodings[q % A].values.length)) throw new ArgumentError('labels.actionEncodings', `action column ${encodings[q % A].column} has no label for index ${k}`);
  });
  const ids = Array.from(labels.userIds, String);
  const cols: OutColumn[] = [userIdColumn(ids, (row) => ids[Math.floor(row / R)]), { name: 'round', type: INTEGER, sqlType: 'INTEGER', value: (row) => details.startRound + (row % R) }];
  for (const [j, enc] of encodings.entries()) cols.push(labelColumn(enc.column, enc.values, (row) => enc.values[plan[row * A + j]]));
  const perRow: Array<[string, Float64Array]> = [
    ['probability', details.probability],
    ['expected_revenue', details.expectedRevenue],
    ['expected_cost', details.expectedCost],
  ];
  for (const [name, values] of perRow) cols.push({ name, type: DOUBLE, sqlType: 'DOUBLE', value: (row) => orNull(values[row]) });
  cols.push({ name: 'withheld', type: BOOLEAN, sqlType: 'BOOLEAN', value: (row) => (details.withheld[row] === 1) as unknown as number });
  const lambda = result.method === 'none' ? NaN : result.lambda;
  cols.push({ name: 'lambda', type: DOUBLE, sqlType: 'DOUBLE', value: () => orNull(lambda) });
  const names = new Set<string>();
  for (const c of cols) {
    if (names.has(c.name)) throw new ArgumentError('labels.actionEncodings', `two plan columns would be named "${c.name}": rename the action column`);
    names.add(c.name);
  }
  await writeColumns(cols, N * R, file);
  return N * R;
}
