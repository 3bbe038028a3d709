/**
 * decideBatch(): every user's coupon for the next round from their logged history, the batch
 * job a platform runs before each round. The users are the batch of native CODT forward
 * calls: each user's tokens are written exactly as decide() writes them (writeDecisionTokens:
 * the logged states, the model's targets at λ minus the reward and cost realised before each
 * round, the logged actions), the user's history placed at the start of the sequence and the
 * current state right after it; causal attention means the positions after it change nothing.
 * The action of each dimension is greedy (src/model/greedy.ts), as in decide().
 *
 * The current state of the next round is not in a log: give it (`states`), or each user's
 * last logged state is carried forward (what a calendar log's filled rounds do too).
 *
 * readHistoryForModel() reads a log for a model: the model's state columns and action values
 * (so an action value the model never saw is an error naming its row), categories recoded to
 * the model's levels; writeDecisions() writes the result as CSV or Parquet, atomically.
 */
import { DOUBLE, INTEGER } from '@duckdb/node-api';
import { ArgumentError, DataError, SacoError } from '../errors.js';
import { quoteLiteral } from '../data/duck.js';
import { readTrajectories, type IngestReport } from '../data/ingest.js';
import { controlIndex } from '../data/log.js';
import { DEFAULT_SCHEMA, type ActionColumn, type DataSchema } from '../data/schema.js';
import { withNewUsers, type Trajectories } from '../data/trajectories.js';
import { labelColumn, userIdColumn, writeColumns, type OutColumn } from '../data/write.js';
import type { CodtModel, ModelMeta } from '../model/artifact.js';
import { checkDataMatchesModel } from '../model/artifact.js';
import { actionWidth, emptyForwardInputs } from '../model/config.js';
import { greedyRow, softmaxPerDimension } from '../model/greedy.js';
import { nativeForward, type NativeModel } from '../native/index.js';
import { checkDecisionLambda, decisionModel, writeDecisionTokens } from './index.js';

export interface DecideBatchOptions {
  /** As in decide(): loaded natively, in memory, or the path of the .onnx file (loaded once and kept). */
  model: CodtModel | NativeModel | string;
  lambda: number;
  /**
   * Every user's logged history: rounds 0..lengths[i]−1 of `trajectories` (readTrajectories,
   * or readHistoryForModel for a log read against the model), with the model's state names and
   * action encodings.
   */
  history: Trajectories;
  /** [users × stateDim] raw current states of the next round; default: each user's last logged state. */
  states?: ArrayLike<number>;
  /** Users per native call (default 8192); results do not depend on it. */
  chunk?: number;
}

export interface BatchDecisions {
  users: number;
  userIds: string[];
  /** [users] the round decided: the number of rounds logged for the user. */
  round: Int32Array;
  /** The action dimensions' columns and their values (the model's encodings). */
  actionColumns: string[];
  actionValues: Array<Array<number | string>>;
  /** [users × dims] index per action dimension. */
  actions: Int32Array;
  /** [users × dims] the labels of those indices (e.g. face values). */
  labels: Array<number | string>;
  /** [users × dims] the policy's probability of the chosen value of each dimension (softmax). */
  probabilities: Float64Array;
  /** [users] probability of the chosen action: the product over dimensions. */
  probability: Float64Array;
  lambda: number;
}

const DEFAULT_CHUNK = 8192;

/**
 * Every user's next-round decision at λ from their logged history, in batched native calls.
 * Equal to calling decide() for each user with the same history and current state.
 *
 * @throws {ArgumentError} for a λ outside the model's range, `states` of the wrong size, a user
 *   whose history does not leave room for one more round in the model's context (named), or a
 *   state out of the training range (`INPUT_OUT_OF_RANGE`, naming the user and round).
 * @throws {DataError} code `MODEL_DATA_MISMATCH` when the history's states or action encodings are not the model's.
 * @throws {SacoError} code `DECISION_NOT_FINITE` naming the user whose scores are not finite.
 * @example
 * const { trajectories } = await readHistoryForModel('logs.parquet', model.meta);
 * const next = await decideBatch({ model, lambda: plan.lambda, history: trajectories });
 * await writeDecisions(next, 'next.csv');
 */
export async function decideBatch(options: DecideBatchOptions): Promise<BatchDecisions> {
  const handle = decisionModel(options.model);
  const meta = handle.meta;
  const c = meta.config;
  const d = c.stateDim;
  const K = actionWidth(c);
  const A = c.actionSizes.length;
  checkDecisionLambda(meta, options.lambda);
  const lambda = options.lambda;
  const h = options.history;
  if (typeof h !== 'object' || h === null || !(h.states instanceof Float32Array) || !(h.lengths instanceof Int32Array)) {
    throw new ArgumentError('history', 'must be trajectories (readTrajectories or readHistoryForModel)');
  }
  checkDataMatchesModel(meta, h);
  const N = h.users;
  const T = h.rounds;
  if (options.states !== undefined && options.states.length !== N * d) throw new ArgumentError('states', `holds ${options.states.length} values: ${N} users × ${d} state values need ${N * d}`);
  const chunk = options.chunk ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1) throw new ArgumentError('chunk', `must be an integer >= 1, got ${String(chunk)}`);
  for (let i = 0; i < N; i++) {
    const past = h.lengths[i];
    if (past + 1 > c.context) {
      throw new ArgumentError('history', `user ${h.userIds[i]} has ${past} logged rounds: the model decides rounds 0..${c.context - 1} (its context is ${c.context}), so round ${past} is beyond it (a campaign as long as the one it was trained on is over; give the rounds of the campaign being decided, from its round 0)`, 'HISTORY_BEYOND_CONTEXT');
    }
    if (past === 0 && options.states === undefined) throw new ArgumentError('states', `user ${h.userIds[i]} has no logged round: give the current states`);
  }

  const out: BatchDecisions = {
    users: N,
    userIds: h.userIds.slice(),
    round: Int32Array.from(h.lengths),
    actionColumns: meta.actionEncodings.map((e) => e.column),
    actionValues: meta.actionEncodings.map((e) => [...e.values]),
    actions: new Int32Array(N * A),
    labels: new Array<number | string>(N * A),
    probabilities: new Float64Array(N * A),
    probability: new Float64Array(N),
    lambda,
  };
  const given = options.states === undefined ? undefined : options.states instanceof Float32Array ? options.states : Float32Array.from(options.states); // once, not an array per user
  const current = (i: number): ArrayLike<number> => (given ? given.subarray(i * d, i * d + d) : lastLoggedState(h, i));
  const chosen = new Int32Array(A);
  for (let u0 = 0; u0 < N; u0 += chunk) {
    const B = Math.min(chunk, N - u0);
    let rounds = 1;
    for (let b = 0; b < B; b++) rounds = Math.max(rounds, h.lengths[u0 + b] + 1);
    const inputs = emptyForwardInputs(meta.config, B, rounds, lambda);
    for (let b = 0; b < B; b++) {
      const i = u0 + b;
      const past = h.lengths[i];
      const cell = (t: number) => i * T + t;
      writeDecisionTokens(
        handle,
        lambda,
        {
          past,
          label: `user ${h.userIds[i]}: `,
          state: (t) => (t < past ? h.states.subarray(cell(t) * d, cell(t) * d + d) : current(i)),
          action: (t, j) => h.actions[cell(t) * A + j],
          reward: (t) => h.rewards[cell(t)],
          cost: (t) => h.costs[cell(t)],
        },
        inputs,
        b,
      );
    }
    const logits = await nativeForward(handle, inputs, 'incremental');
    for (let b = 0; b < B; b++) {
      const i = u0 + b;
      const at = (b * rounds + h.lengths[i]) * K;
      const row = logits.subarray(at, at + K);
      if (!row.every(Number.isFinite)) throw new SacoError('DECISION_NOT_FINITE', `the model's scores for user ${h.userIds[i]} are not finite: the state or history lies far outside the training data`);
      greedyRow(row, 0, c.actionSizes, chosen);
      const probs = softmaxPerDimension(row, 0, c.actionSizes);
      let joint = 1;
      for (let j = 0; j < A; j++) {
        const a = chosen[j];
        out.actions[i * A + j] = a;
        out.labels[i * A + j] = meta.actionEncodings[j]?.values[a] ?? a;
        out.probabilities[i * A + j] = probs[j][a];
        joint *= probs[j][a];
      }
      out.probability[i] = joint;
    }
  }
  return out;
}

/** The file columns a model decides from: one-hot categories collapse to their column, in order of first use. */
export function modelStateColumns(meta: Pick<ModelMeta, 'stateNames' | 'categorical'>): string[] {
  const out: string[] = [];
  const onehot = new Map<string, string>();
  for (const cat of meta.categorical) if (cat.kind === 'onehot') for (const level of cat.levels) onehot.set(`${cat.column}=${level}`, cat.column);
  for (const name of meta.stateNames) {
    const column = onehot.get(name) ?? name;
    if (!out.includes(column)) out.push(column);
  }
  return out;
}

/**
 * Reads a log against a model: the model's state columns (a file without some of them is a
 * DataError listing them), the model's action values and control (an action value the model was
 * not trained on is a DataError naming the file, row, column and value), categories recoded to
 * the model's levels (a one-hot level it never saw sets none of its columns, with a warning in
 * the report; an unseen level of an 'index' category is a DataError). The schema maps the file's
 * columns (user, time, actions, cost, reward, calendar rounds) as for training; its states
 * default to the model's.
 *
 * @throws {DataError} `MODEL_DATA_MISMATCH` (missing state columns, unseen levels of an index
 *   category, states that are not the model's), `DATA_UNKNOWN_ACTION` (unseen action values), or
 *   any error of readTrajectories.
 */
export async function readHistoryForModel(
  input: string | readonly string[],
  meta: ModelMeta,
  options: { schema?: DataSchema; modelName?: string; skipBadRows?: boolean; glob?: boolean; threads?: number; onProgress?: (stage: string) => void } = {},
): Promise<{ trajectories: Trajectories; report: IngestReport }> {
  const base = options.schema ?? DEFAULT_SCHEMA;
  const modelName = options.modelName ?? 'the model';
  const columns = modelStateColumns(meta);
  const given = base.actions;
  if (given && given.length !== meta.actionEncodings.length) {
    throw new ArgumentError('schema actions', `names ${given.length} action column(s); ${modelName} has ${meta.actionEncodings.length} action dimension(s) (${meta.actionEncodings.map((e) => e.column).join(', ')})`);
  }
  const actions: ActionColumn[] = meta.actionEncodings.map((enc, j) => ({ column: given?.[j].column ?? enc.column, values: [...enc.values], control: enc.values[controlIndex(enc)] }));
  const categorical = { ...(base.categorical ?? {}), ...Object.fromEntries(meta.categorical.map((cat) => [cat.column, cat.kind])) };
  const schema: DataSchema = { ...base, states: base.states ?? columns, actions, categorical };
  let read: { trajectories: Trajectories; report: IngestReport };
  try {
    read = await readTrajectories(input, {
      schema,
      skipBadRows: options.skipBadRows,
      glob: options.glob,
      threads: options.threads,
      onProgress: options.onProgress,
      warnUnloggedActions: false, // a part of a log may lack a rare action the model knows
      needColumns: { columns, reason: `${modelName} decides from the state column(s) ${columns.join(', ')}` },
    });
  } catch (e) {
    if (e instanceof DataError && e.code === 'DATA_UNKNOWN_ACTION') {
      const detail = e.message.slice(e.message.indexOf(': ') + 2).replace(/ \(value: .*\)$/, '');
      throw new DataError('DATA_UNKNOWN_ACTION', `${detail}: ${modelName} was trained on these values only, so it cannot read a history with another one`, { file: e.file, row: e.row, column: e.column, value: e.value });
    }
    throw e;
  }
  const t = read.trajectories;
  const aligned = alignStates(t, meta, modelName, read.report.warnings);
  aligned.actionEncodings = meta.actionEncodings.map((enc, j) => ({ ...enc, control: t.actionEncodings[j].control }));
  checkDataMatchesModel(meta, aligned);
  return { trajectories: aligned, report: read.report };
}

/** User i's last logged state [stateDim] (a view): what is carried into the round to decide when no current state is given. */
function lastLoggedState(h: Trajectories, i: number): Float32Array {
  const d = h.stateDim;
  const at = (i * h.rounds + h.lengths[i] - 1) * d;
  return h.states.subarray(at, at + d);
}

/** The users to decide and their current states (readCurrentStates). */
export interface CurrentStates {
  /** The history, with the file's users who have none appended at length 0 (decided at their round 0). */
  history: Trajectories;
  /** [users of `history` × stateDim] raw current states, in the model's layout: decideBatch's `states`. */
  states: Float32Array;
  /** History users with a row in the file. */
  matched: number;
  /** History users without one: their last logged state is carried forward. */
  carried: number;
  /** Users of the file without a logged round: appended to the history, decided at round 0. */
  newUsers: number;
  report: IngestReport;
}

/**
 * Every user's state for the round to decide, from a file of current states: the schema's
 * user column and the model's state columns (the schema's joins and computed columns apply;
 * no action, reward, cost or time column is needed), one row per user — where a user has
 * several, the last in file order counts. The file is read through the same reading as the
 * log (readHistoryForModel: categories recoded to the model's levels, bad values refused with
 * their row), as a log of control actions with no outcome. History users without a row keep
 * their last logged state; users of the file without a history are appended to it and decided
 * at their round 0. Pass `history` and `states` to decideBatch.
 *
 * @throws {ArgumentError} when the schema has no user column (rows could not be matched to users).
 * @throws {DataError} as readHistoryForModel.
 */
export async function readCurrentStates(
  input: string | readonly string[],
  meta: ModelMeta,
  history: Trajectories,
  options: { schema?: DataSchema; modelName?: string; skipBadRows?: boolean; glob?: boolean; threads?: number; onProgress?: (stage: string) => void } = {},
): Promise<CurrentStates> {
  const base = options.schema ?? DEFAULT_SCHEMA;
  if (base.user === null) throw new ArgumentError('schema user', 'current states are matched to users by the user column; this schema has none (every row its own user)');
  const literal = (v: number | string) => (typeof v === 'number' ? String(v) : quoteLiteral(v));
  const columns = { ...(base.columns ?? {}) };
  meta.actionEncodings.forEach((enc, j) => (columns[`__saco_control_${j}`] = { sql: literal(enc.values[controlIndex(enc)]) }));
  const schema: DataSchema = {
    ...base,
    columns,
    // their values and control are the model's (readHistoryForModel takes only the columns)
    actions: meta.actionEncodings.map((_, j) => ({ column: `__saco_control_${j}` })),
    reward: { sql: '0' },
    cost: { sql: '0' },
    propensity: undefined, // a file of current states has no logged decision
    time: null,
    round: undefined,
    combine: undefined,
  };
  const { trajectories: t, report } = await readHistoryForModel(input, meta, { ...options, schema });
  const d = meta.stateNames.length;
  const row = new Map<string, number>(); // a user's row of t: its last (the file's last) holds the state
  for (let i = 0; i < t.users; i++) row.set(t.userIds[i], i);
  const known = new Set(history.userIds);
  const newIds = [...row.keys()].filter((id) => !known.has(id));
  const all = newIds.length > 0 ? withNewUsers(history, newIds) : history;
  const states = new Float32Array(all.users * d);
  let matched = 0;
  for (let i = 0; i < all.users; i++) {
    const at = row.get(all.userIds[i]);
    if (at !== undefined) {
      states.set(lastLoggedState(t, at), i * d);
      if (i < history.users) matched++;
      continue;
    }
    states.set(lastLoggedState(history, i), i * d);
  }
  return { history: all, states, matched, carried: history.users - matched, newUsers: newIds.length, report };
}

/**
 * The trajectories with the model's state layout: categories recoded to the model's levels
 * (absent levels are 0 columns). A one-hot level the model never saw (a city opened after
 * training) sets none of its columns, with a warning pushed to `warnings` naming the users it
 * touches: one new level does not stop a batch of decisions. An unseen level of an 'index'
 * category has no such reading and is refused.
 */
function alignStates(t: Trajectories, meta: ModelMeta, modelName: string, warnings: string[]): Trajectories {
  if (meta.categorical.length === 0 && t.categorical.length === 0) return { ...t };
  const file = t.source;
  const index = new Map(t.stateNames.map((n, j) => [n, j]));
  const dataCats = new Map(t.categorical.map((cat) => [cat.column, cat]));
  const modelCats = new Map(meta.categorical.map((cat) => [cat.column, cat]));
  for (const cat of t.categorical) {
    const known = modelCats.get(cat.column);
    if (!known) throw new DataError('MODEL_DATA_MISMATCH', `column "${cat.column}" holds categories, ${modelName} reads it as numbers`, { file, column: cat.column });
    const unseen = cat.levels.filter((l) => !known.levels.includes(l));
    if (unseen.length && known.kind !== 'onehot') {
      throw new DataError('MODEL_DATA_MISMATCH', `value(s) ${unseen.map((l) => JSON.stringify(l)).join(', ')} of category column "${cat.column}" were not in the data ${modelName} was trained on (its levels: ${known.levels.join(', ')})`, { file, column: cat.column });
    }
    if (unseen.length) {
      const users = usersWithLevels(t, cat.column, unseen);
      warnings.push(
        `${users} user(s) have value(s) ${unseen.map((l) => JSON.stringify(l)).join(', ')} of category column "${cat.column}", which ${modelName} was not trained on (its levels: ${known.levels.join(', ')}): in those rounds none of its "${cat.column}" columns is set (retrain on data with the new level to learn it)`,
      );
    }
  }
  const d = meta.stateNames.length;
  // per model state: where its value comes from
  const plan = meta.stateNames.map((name) => {
    for (const cat of meta.categorical) {
      const data = dataCats.get(cat.column);
      if (cat.kind === 'onehot' && name.startsWith(`${cat.column}=`) && cat.levels.includes(name.slice(cat.column.length + 1))) {
        return { from: index.get(name) ?? -1, map: undefined as number[] | undefined };
      }
      if (cat.kind === 'index' && name === cat.column && data) {
        return { from: index.get(name) ?? -1, map: data.levels.map((l) => cat.levels.indexOf(l)) };
      }
    }
    const from = index.get(name);
    if (from === undefined) throw new DataError('MODEL_DATA_MISMATCH', `has no state "${name}" (${modelName} decides from ${meta.stateNames.join(', ')})`, { file });
    return { from, map: undefined };
  });
  const cells = t.users * t.rounds;
  const states = new Float32Array(cells * d);
  const w = t.stateDim;
  for (let c = 0; c < cells; c++) {
    for (let j = 0; j < d; j++) {
      const p = plan[j];
      if (p.from < 0) continue;
      const v = t.states[c * w + p.from];
      states[c * d + j] = p.map ? p.map[v] : v;
    }
  }
  return { ...t, stateDim: d, stateNames: meta.stateNames, categorical: meta.categorical, states };
}

/** How many users have, in some round, one of `levels` of the one-hot category `column`. */
function usersWithLevels(t: Trajectories, column: string, levels: string[]): number {
  const w = t.stateDim;
  const columns = levels.map((l) => t.stateNames.indexOf(`${column}=${l}`)).filter((j) => j >= 0);
  let users = 0;
  for (let i = 0; i < t.users; i++) {
    let has = false;
    for (let r = 0; r < t.rounds && !has; r++) has = columns.some((j) => t.states[(i * t.rounds + r) * w + j] === 1);
    if (has) users++;
  }
  return users;
}

/**
 * Writes decisions to `file` (CSV, CSV.gz or Parquet by extension) through a temporary file:
 * columns user_id, round, one column per action dimension (its label, under the dimension's
 * column name), probability (of the chosen action, joint over dimensions) and, with several
 * dimensions, probability_<column> per dimension. A failed write leaves no file.
 */
export async function writeDecisions(decisions: BatchDecisions, file: string): Promise<void> {
  const A = decisions.actionColumns.length;
  const cols: OutColumn[] = [userIdColumn(decisions.userIds, (r) => decisions.userIds[r]), { name: 'round', type: INTEGER, sqlType: 'INTEGER', value: (r) => decisions.round[r] }];
  decisions.actionColumns.forEach((column, j) => {
    const labelOf = (r: number) => decisions.labels[r * A + j];
    cols.push(labelColumn(column, decisions.actionValues[j], labelOf));
  });
  cols.push({ name: 'probability', type: DOUBLE, sqlType: 'DOUBLE', value: (r) => decisions.probability[r] });
  if (A > 1) decisions.actionColumns.forEach((column, j) => cols.push({ name: `probability_${column}`, type: DOUBLE, sqlType: 'DOUBLE', value: (r) => decisions.probabilities[r * A + j] }));
  const names = new Set<string>();
  for (const c of cols) {
    if (names.has(c.name)) throw new ArgumentError('decisions', `two output columns would be named "${c.name}": rename the action column`);
    names.add(c.name);
  }
  await writeColumns(cols, decisions.users, file);
}
