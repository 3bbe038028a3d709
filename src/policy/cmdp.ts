/**
 * The CMDP25/50/75 baselines: an offline constrained-MDP policy at a fixed price λ of spend,
 * by fitted-Q iteration on r − λ·c over the logged trajectories with XGBoost regressors (the
 * outcome model's reward heads, src/sim/outcome.ts, fitted on a copy of the log whose reward is
 * the Bellman target and whose cost is 0):
 *
 *   Q_0 = 0;  Q_k(s_t, h_t, a_t) ≈ r_t − λ·c_t + [t < T−1] · max_a' Q_{k−1}(s_{t+1}, h_{t+1}, a')
 *
 * one regressor over all rounds (round_frac and the history columns are features), iterated
 * k = 1 … T (a finite horizon of T rounds is exact after T backups) or until the largest change of
 * the fitted values falls below `tol`. Each iteration reports the Bellman residual
 * mean (target_k − Q_{k−1})² on the logged cells and the change mean (Q_k − Q_{k−1})². The policy
 * is greedy in Q (src/policy/scored.ts); no λ search. λ = fraction × `lambdaScale`, the scale
 * being 1 by default: spend priced in the same currency as revenue (CMDP50 counts a coupon
 * dollar as half a revenue dollar).
 */
import { ArgumentError } from '../errors.js';
import type { Trajectories } from '../data/trajectories.js';
import { buildFeatures, featureLayout } from '../sim/features.js';
import { fitOutcomeModel, type OutcomeModel, type OutcomeParams } from '../sim/outcome.js';
import { outcomeScorer, type ActionScorer } from './scored.js';
import type { PolicyDefinition } from './types.js';

/** The three CMDP baselines differ only in λ; one definition each, for reports and --help. */
export const cmdpPolicies = [0.25, 0.5, 0.75].map(
  (f) =>
    ({
      name: `cmdp${Math.round(f * 100)}`,
      description: `fitted-Q iteration (XGBoost) on r − λ·c at fixed λ = ${f} × the λ scale; greedy in Q, no λ search (the native scored-fixed policy, src/policy/scored.ts)`,
      needsModel: false,
      searched: false,
      fittedOn: 'a Q function fitted on a log by fitted-Q iteration (fitCmdp)',
    }) as const satisfies PolicyDefinition,
);

export interface CmdpOptions extends OutcomeParams {
  lambda: number;
  /** Backups at most. Default: the log's rounds. */
  iterations?: number;
  /** Stop when mean (Q_k − Q_{k−1})² on the logged cells falls below this. Default 0 (run all). */
  tol?: number;
  onIteration?(it: CmdpIteration): void;
}

export interface CmdpIteration {
  iteration: number;
  /** mean (target_k − Q_{k−1}(s, a))² over the logged cells: the Bellman residual of the previous Q. */
  bellmanResidual: number;
  /** mean (Q_k − Q_{k−1})² over the logged cells. */
  change: number;
  seconds: number;
}

export interface CmdpFit {
  lambda: number;
  q: OutcomeModel;
  scorer: ActionScorer;
  iterations: CmdpIteration[];
  release(): void;
}

/** max_a Q(cell, a) and Q(cell, logged a) for every real cell of traj ([N*T], 0 at padding). */
async function qValues(q: OutcomeModel | null, traj: Trajectories, threads?: number): Promise<{ max: Float64Array; logged: Float64Array }> {
  const cells = traj.users * traj.rounds;
  const max = new Float64Array(cells);
  const logged = new Float64Array(cells);
  if (!q) return { max, logged };
  const m = buildFeatures(traj, q.layout);
  const sc = outcomeScorer(q, { cost: false });
  const s = await sc.score(m.x, threads);
  const A = traj.actionDims;
  for (let r = 0; r < m.rows; r++) {
    const c = m.cells[r];
    let best = -Infinity;
    for (let a = 0; a < sc.K; a++) best = Math.max(best, s.reward[r * sc.K + a]);
    max[c] = best;
    let k = 0;
    for (; k < sc.K; k++) {
      let same = true;
      for (let j = 0; j < A; j++) if (sc.actions[k * A + j] !== traj.actions[c * A + j]) same = false;
      if (same) break;
    }
    logged[c] = s.reward[r * sc.K + k];
  }
  return { max, logged };
}

/** Fitted-Q iteration on r − λ·c. */
export async function fitCmdp(train: Trajectories, options: CmdpOptions): Promise<CmdpFit> {
  const { lambda, iterations, tol = 0, onIteration, ...params } = options;
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new ArgumentError('lambda', `must be finite and ≥ 0, got ${lambda}`);
  const K = iterations ?? train.rounds;
  if (!Number.isInteger(K) || K < 1) throw new ArgumentError('iterations', `must be an integer ≥ 1, got ${K}`);
  const layout = featureLayout(train);
  const T = train.rounds;
  const N = train.users;
  let q: OutcomeModel | null = null;
  let prev: Float64Array = new Float64Array(N * T);
  const log: CmdpIteration[] = [];
  for (let k = 1; k <= K; k++) {
    const t0 = performance.now();
    const { max } = await qValues(q, train, params.threads);
    const target = new Float32Array(N * T);
    for (let i = 0; i < N; i++) {
      for (let t = 0; t < T; t++) {
        const c = i * T + t;
        if (!train.mask[c]) continue;
        const next = t + 1 < T && train.mask[c + 1] ? max[c + 1] : 0;
        target[c] = train.rewards[c] - lambda * train.costs[c] + next;
      }
    }
    const y: Trajectories = { ...train, rewards: target, costs: new Float32Array(N * T) };
    const fitted = await fitOutcomeModel(y, { ...params, layout, heads: { reward: true, cost: false, next: false } });
    const { logged } = await qValues(fitted, train, params.threads);
    let residual = 0;
    let change = 0;
    let n = 0;
    for (let c = 0; c < N * T; c++) {
      if (!train.mask[c]) continue;
      residual += (target[c] - prev[c]) ** 2;
      change += (logged[c] - prev[c]) ** 2;
      n++;
    }
    q?.dispose();
    q = fitted;
    prev = logged;
    const it = { iteration: k, bellmanResidual: residual / n, change: change / n, seconds: (performance.now() - t0) / 1000 };
    log.push(it);
    onIteration?.(it);
    if (change / n < tol) break;
  }
  const model = q!;
  return { lambda, q: model, scorer: outcomeScorer(model, { cost: false }), iterations: log, release: () => model.dispose() };
}
