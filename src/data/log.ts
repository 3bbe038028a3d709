/**
 * An interaction log in memory: one row per (user, round), columnar, with the encodings
 * that turned the user's columns into numbers. Both the DuckDB reader and the synthetic
 * generator produce this; trajectories are built from it in one place.
 */
import type { SyLog } from './synth.js';
import { syActionColumn, syLoggingPropensities } from './synth.js';

/** The labels of one action dimension; index k in the arrays means `values[k]`. */
export interface ActionEncoding {
  column: string;
  values: Array<number | string>;
  /** Index of the no-treatment value (no coupon); see `controlIndex` for models without it. */
  control?: number;
  /** Whether the schema named `control`; false: reading took it from the log (the value that never costs, a bundle's cheapest). */
  controlStated?: boolean;
}

/**
 * The no-treatment index of an action dimension: as recorded at ingestion, else (a model
 * written before it was recorded) the value 0 where there is one, else index 0.
 */
export function controlIndex(encoding: ActionEncoding): number {
  if (encoding.control !== undefined) return encoding.control;
  const zero = encoding.values.findIndex((v) => Number(v) === 0);
  return zero >= 0 ? zero : 0;
}

/** How a categorical state column became numbers. */
export interface CategoricalEncoding {
  column: string;
  kind: 'onehot' | 'index';
  levels: string[];
}

export interface InteractionLog {
  /** Where it came from (a file path, or `synthetic`). */
  source: string;
  rows: number;
  /** Dense user index of each row (0..userIds.length-1). */
  userIndex: Int32Array;
  /** Position of the row within its user's trajectory (0-based, unique per user). */
  roundIndex: Int32Array;
  userIds: string[];
  stateNames: string[];
  /** [rows, stateNames.length] */
  states: Float64Array;
  actionEncodings: ActionEncoding[];
  /** [rows, actionEncodings.length] */
  actions: Int32Array;
  cost: Float64Array;
  reward: Float64Array;
  categorical: CategoricalEncoding[];
  /** [rows] 1 where the row is an empty calendar round filled as the control action (schema `round`); absent: none. */
  filled?: Uint8Array;
  /** [rows] the logging policy's probability of the row's action, in (0, 1] (schema `propensity`); absent: not logged. */
  propensity?: Float64Array;
}

/**
 * Views an SY log as an interaction log (its arrays, not copies), with the logger's
 * propensities SY knows (computed: one array of rows; `propensities: false` leaves them out
 * where nothing reads them, e.g. a log written to a file, which does not hold them).
 */
export function syLogToInteractionLog(log: SyLog, options: { propensities?: boolean } = {}): InteractionLog {
  const { users, rounds } = log.config;
  const rows = users * rounds;
  const userIndex = new Int32Array(rows);
  const roundIndex = new Int32Array(rows);
  for (let i = 0; i < users; i++) {
    for (let t = 0; t < rounds; t++) {
      userIndex[i * rounds + t] = i;
      roundIndex[i * rounds + t] = t;
    }
  }
  return {
    source: 'synthetic',
    rows,
    userIndex,
    roundIndex,
    userIds: Array.from({ length: users }, (_, i) => String(i)),
    stateNames: log.stateNames,
    states: log.states,
    // SY's no-coupon value is its cheapest (0 in every preset)
    actionEncodings: log.config.actionDims.map((d, j) => ({ column: syActionColumn(log.config, j), values: [...d.values], control: d.values.indexOf(Math.min(...d.values)) })),
    actions: log.actions,
    cost: log.cost,
    reward: log.reward,
    categorical: [],
    ...(options.propensities === false ? {} : { propensity: syLoggingPropensities(log) }),
  };
}
