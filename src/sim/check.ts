/**
 * The learned simulator validated on SY, where the truth is known (issue 13 item 3; DESIGN.md
 * sections 6 and 10). Fit a simulator on an SY log (uniform logging, or biased), then run the
 * same policies on the same fresh users in the simulator and in SY's ground truth:
 *
 *   No coupon       the Random policy under a vanishing budget: the budget rule withholds every
 *                   coupon, so every user gets the control action in both worlds
 *   Random          the uniform logging policy (the same draws in both: keyed by seed, user, round)
 *   Oracle λ        myopic argmax of E[r] − λ·E[c] with SY's TRUE expectations of the observed
 *                   state, in both worlds (in the simulator through `expectedFrom`), so it is one
 *                   function of the state evaluated twice, not the simulator's own greedy policy
 *   SACO @ Nx       the trained CODT at the λ* that SY's truth gives for a budget of N x the
 *                   logging spend, run unbudgeted at that λ in both worlds (so a cost error shows
 *                   instead of being capped by the budget)
 *
 * and report revenue and cost per policy (sim vs truth, % error), per-round revenue errors,
 * Kendall τ between the two revenue rankings, and a plan made through the simulator (solve()
 * at 0.5x of the simulator's logging spend) replayed in the truth at the simulator's λ* with
 * the same budget and budget rule: the true BARate and true revenue vs the simulator's.
 * Gates (issue 13): revenue within 5% for every policy, cost within 5% for every policy that
 * spends, τ ≥ 0.8, the replayed plan's true BARate in [0.9, 1.0] and revenue within 5%.
 *
 * The λ searches call the native search solve() uses (native/dual.cc: the reference rollout of
 * the logging policy, bisection to B − ε ≤ C ≤ B, the budget rule of native/rollout.cc), so this
 * stage imports nothing above it; the caller brings the trained SACO model (the CLI trains one).
 */
import { ArgumentError } from '../errors.js';
import { syLogToInteractionLog } from '../data/log.js';
import { resolveSyConfig, syInitialUser, syObserve, syWeights, type SyOptions } from '../data/synth.js';
import { buildTrajectories, type Trajectories } from '../data/trajectories.js';
import type { CodtModel } from '../model/artifact.js';
import { generateSy, loadNativeModel, nativeRollout, nativeSearchLambda, type NativeModel, type NativeRolloutResult, type NativeRolloutSpec } from '../native/index.js';
import { fitSimulator, type Simulator, type SimulatorFitOptions } from './simulator.js';

export interface SimCheckOptions {
  /** The SY world (seed, dynamics, logging). Default: SY's defaults, seed 1, uniform logging. */
  sy?: SyOptions;
  /** Users in the log the simulator (and SACO) are fitted on. Default 30,000 (at 8,000 the per-arm models are off by up to ~5% in rounds the log rarely reaches). */
  trainUsers?: number;
  /** Fresh users both worlds simulate (ids after the training users). Default 5,000. */
  testUsers?: number;
  /** A simulator fitted on this SY world's log of `trainUsers` users; default: fitted here. */
  simulator?: Simulator;
  /** Booster settings of the fit. */
  fit?: SimulatorFitOptions;
  /** The SACO policy: a CODT trained on this SY world's log (e.g. trainCodt of src/policy/train.ts on `syCheckLog`). */
  model: CodtModel | NativeModel;
  /** λ of the three Oracle rows. Default 0.5, 2, 4 (the first simulator's measurement, DESIGN.md section 6). */
  oracleLambdas?: number[];
  /** Budgets of the three SACO rows, multiples of the truth's logging spend. Default 0.25, 0.5, 0.75. */
  sacoBudgets?: number[];
  /** Budget of the plan made through the simulator, a multiple of the simulator's logging spend. Default 0.5. */
  planBudget?: number;
  threads?: number;
  onProgress?: (stage: string) => void;
}

export interface SimCheckRow {
  policy: string;
  lambda: number | null;
  /** Whether the policy spends (cost > 0 in the truth): its cost is gated. */
  spends: boolean;
  sim: { revenue: number; cost: number; revenueByRound: number[]; costByRound: number[] };
  truth: { revenue: number; cost: number; revenueByRound: number[]; costByRound: number[] };
  /** sim / truth − 1; null where the truth is 0. */
  revenueError: number | null;
  costError: number | null;
}

export interface SimCheckGate {
  name: string;
  value: string;
  pass: boolean;
}

export interface SimCheckReport {
  sy: ReturnType<typeof resolveSyConfig>;
  logging: string;
  trainUsers: number;
  testUsers: number;
  rounds: number;
  simulator: { arms: string; models: number; fitSeconds: number; historyImportance: ReturnType<Simulator['historyImportance']> };
  rows: SimCheckRow[];
  /** Kendall τ-b between the policies' revenue rankings in the simulator and the truth. */
  tau: number;
  /** A plan made through the simulator, replayed in the truth. */
  plan: {
    budget: number;
    lambda: number;
    rollouts: number;
    sim: { revenue: number; cost: number; baRate: number };
    truth: { revenue: number; cost: number; baRate: number };
    revenueError: number;
    /** The λ* SY's truth itself finds for the same budget. */
    truthLambda: number;
  };
  gates: SimCheckGate[];
  seconds: number;
}

/** The SY log a check fits on: `users` users of the world `sy` (seed 1 unless given), as trajectories. */
export async function syCheckLog(sy: SyOptions, users: number, threads = 0): Promise<Trajectories> {
  const config = resolveSyConfig({ seed: 1, ...sy, users, threads });
  const train = buildTrajectories(syLogToInteractionLog(await generateSy(config)));
  train.source = `SY seed ${config.seed} (${config.logging.kind} logging)`;
  return train;
}

/** Kendall's τ-b of two paired lists. */
export function kendallTau(a: number[], b: number[]): number {
  let concordant = 0;
  let discordant = 0;
  let tiesA = 0;
  let tiesB = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const x = Math.sign(a[i] - a[j]);
      const y = Math.sign(b[i] - b[j]);
      if (x === 0 && y === 0) continue;
      if (x === 0) tiesA++;
      else if (y === 0) tiesB++;
      else if (x === y) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiesA) * (concordant + discordant + tiesB));
  return denom > 0 ? (concordant - discordant) / denom : 1;
}

const relError = (sim: number, truth: number): number | null => (truth !== 0 ? sim / truth - 1 : null);

function checkCount(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new ArgumentError(name, `must be an integer in [${min}, ${max}], got ${String(v)}`);
}

/**
 * Fits (or takes) a simulator of an SY world and validates it against the truth on fresh users.
 * @throws {ArgumentError} for bad counts, λs or budgets, or a model/simulator of another shape.
 */
export async function checkSimulatorOnSy(options: SimCheckOptions): Promise<SimCheckReport> {
  const t0 = performance.now();
  if (!options?.model) throw new ArgumentError('model', 'the check needs the SACO model: a CODT trained on the same SY log (trainCodt on syCheckLog(...))');
  const trainUsers = options.trainUsers ?? 30000;
  const testUsers = options.testUsers ?? 5000;
  checkCount('trainUsers', trainUsers, 100, 10_000_000);
  checkCount('testUsers', testUsers, 10, 10_000_000);
  const oracleLambdas = options.oracleLambdas ?? [0.5, 2, 4];
  const sacoBudgets = options.sacoBudgets ?? [0.25, 0.5, 0.75];
  const planBudget = options.planBudget ?? 0.5;
  for (const l of oracleLambdas) if (!(Number.isFinite(l) && l >= 0)) throw new ArgumentError('oracleLambdas', `must be finite and >= 0, got ${l}`);
  for (const b of [...sacoBudgets, planBudget]) if (!(Number.isFinite(b) && b > 0)) throw new ArgumentError('budgets', `must be > 0, got ${b}`);
  const threads = options.threads ?? 0;
  const progress = options.onProgress ?? (() => undefined);
  const sy = resolveSyConfig({ seed: 1, ...options.sy, users: trainUsers, threads });
  const rounds = sy.rounds;

  progress(`generating the SY log (${trainUsers.toLocaleString('en-US')} users x ${rounds} rounds, ${sy.logging.kind} logging)`);
  const train = await syCheckLog(options.sy ?? {}, trainUsers, threads);

  let sim = options.simulator;
  const ownSim = !sim;
  let handle: NativeModel | undefined;
  let ownHandle = false;
  try {
    if (!sim) {
      progress('fitting the simulator');
      sim = await fitSimulator(train, { seed: 1, threads, ...options.fit });
    }
    sim.checkData(train);
    if ('unload' in options.model) handle = options.model;
    else {
      handle = loadNativeModel(options.model);
      ownHandle = true;
    }
    const lambdaMax = handle.meta.normalization.lambdaMax;

    // fresh users of the same world: their round-0 observation (x, 0, 0, 0) starts the simulator
    const ids = Uint32Array.from({ length: testUsers }, (_, i) => trainUsers + i);
    const F = sy.features;
    const d = F + 3;
    if (sim.stateDim !== d) throw new ArgumentError('simulator', `has ${sim.stateDim} state features, this SY world observes ${d}`);
    const weights = syWeights(sy);
    const states = new Float64Array(testUsers * d);
    const x = new Float64Array(testUsers * F);
    for (let i = 0; i < testUsers; i++) {
      const u = syInitialUser(sy, weights, ids[i]);
      syObserve(sy, u, 0, states, i * d);
      x.set(u.x, i * F);
    }
    const truthEnv = resolveSyConfig({ ...sy, users: 1 });
    const simEnv = sim.nativeEnv({ seed: sy.seed, expectedFrom: truthEnv });
    const truthUsers = { userIds: ids, features: x };
    const simUsersOf = { userIds: ids, features: states };
    // solve()'s search: the budget as a multiple of the logging policy's spend on these users
    const search = async (env: NativeRolloutSpec['env'], users: { userIds: Uint32Array; features: Float64Array }, budget: number | `${number}x`) => {
      const base = { env, rounds, budget: Infinity, policy: 'random', lambda: 0, ...users, threads };
      const reference = await nativeRollout(base);
      const b = typeof budget === 'number' ? budget : Number(budget.slice(0, -1)) * reference.cost;
      const s = await nativeSearchLambda({ ...base, policy: 'codt', model: handle!.id }, { method: 'bisection', budget: b, epsilon: 0.02 * b, lambdaMax, maxRollouts: 40 });
      return { budget: b, lambda: s.lambda, rollouts: s.rollouts + 1, revenue: s.plan.revenue, cost: s.plan.cost, baRate: s.plan.cost / b };
    };
    const run = async (policy: string, lambda: number, budget: number, model?: number): Promise<[NativeRolloutResult, NativeRolloutResult]> => {
      const spec = { rounds, budget, policy, lambda, model, threads } as Omit<NativeRolloutSpec, 'env' | 'userIds'>;
      const s = await nativeRollout({ ...spec, env: simEnv, ...simUsersOf });
      const t = await nativeRollout({ ...spec, env: truthEnv, ...truthUsers });
      return [s, t];
    };

    // SACO's λ at each budget, from the truth (the policy is then fixed and run in both worlds)
    const sacoLambdas: number[] = [];
    for (const b of sacoBudgets) {
      progress(`SACO: the truth's λ* at ${b}x`);
      sacoLambdas.push((await search(truthEnv, truthUsers, `${b}x`)).lambda);
    }

    const policies: Array<{ name: string; policy: string; lambda: number; budget: number; model?: number }> = [
      { name: 'No coupon', policy: 'random', lambda: 0, budget: 1e-9 },
      { name: 'Random', policy: 'random', lambda: 0, budget: Infinity },
      ...oracleLambdas.map((l) => ({ name: `Oracle λ=${l}`, policy: 'oracle', lambda: l, budget: Infinity })),
      ...sacoBudgets.map((b, k) => ({ name: `SACO λ*(${b}x)`, policy: 'codt', lambda: sacoLambdas[k], budget: Infinity, model: handle!.id })),
    ];
    const rows: SimCheckRow[] = [];
    for (const p of policies) {
      progress(`rolling out ${p.name} in the simulator and in the truth`);
      const [s, t] = await run(p.policy, p.lambda, p.budget, p.model);
      rows.push({
        policy: p.name,
        lambda: p.policy === 'random' ? null : p.lambda,
        spends: t.cost > 0,
        sim: { revenue: s.revenue, cost: s.cost, revenueByRound: Array.from(s.revenueByRound), costByRound: Array.from(s.costByRound) },
        truth: { revenue: t.revenue, cost: t.cost, revenueByRound: Array.from(t.revenueByRound), costByRound: Array.from(t.costByRound) },
        revenueError: relError(s.revenue, t.revenue),
        costError: t.cost > 0 ? relError(s.cost, t.cost) : null,
      });
    }
    const tau = kendallTau(rows.map((r) => r.sim.revenue), rows.map((r) => r.truth.revenue));

    // a plan made through the simulator, replayed in the truth with the same budget rule
    progress(`planning through the simulator at ${planBudget}x its logging spend`);
    const planned = await search(simEnv, simUsersOf, `${planBudget}x`);
    const replay = await nativeRollout({ env: truthEnv, rounds, budget: planned.budget, policy: 'codt', lambda: planned.lambda, model: handle.id, ...truthUsers, threads });
    const truthPlan = await search(truthEnv, truthUsers, planned.budget);
    const plan = {
      budget: planned.budget,
      lambda: planned.lambda,
      rollouts: planned.rollouts,
      sim: { revenue: planned.revenue, cost: planned.cost, baRate: planned.baRate },
      truth: { revenue: replay.revenue, cost: replay.cost, baRate: replay.cost / planned.budget },
      revenueError: replay.revenue / planned.revenue - 1,
      truthLambda: truthPlan.lambda,
    };

    const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);
    const worst = (f: (r: SimCheckRow) => number | null, which: SimCheckRow[]) => which.reduce<{ v: number; name: string }>((w, r) => (Math.abs(f(r) ?? 0) > Math.abs(w.v) ? { v: f(r) ?? 0, name: r.policy } : w), { v: 0, name: '' });
    const wr = worst((r) => r.revenueError, rows);
    const wc = worst((r) => r.costError, rows.filter((r) => r.spends));
    const gates: SimCheckGate[] = [
      { name: 'revenue within 5% for every policy', value: `worst ${pct(wr.v)} (${wr.name || '–'})`, pass: Math.abs(wr.v) <= 0.05 },
      { name: 'cost within 5% for every policy that spends', value: `worst ${pct(wc.v)} (${wc.name || '–'})`, pass: Math.abs(wc.v) <= 0.05 },
      { name: 'Kendall τ of the revenue rankings ≥ 0.8', value: tau.toFixed(3), pass: tau >= 0.8 },
      { name: "simulator-made plan: true BARate in [0.9, 1.0]", value: plan.truth.baRate.toFixed(3), pass: plan.truth.baRate >= 0.9 && plan.truth.baRate <= 1.0 },
      { name: "simulator-made plan: true revenue within 5% of the simulator's", value: pct(plan.revenueError), pass: Math.abs(plan.revenueError) <= 0.05 },
    ];
    return {
      sy: truthEnv,
      logging: sy.logging.kind === 'biased' ? `biased (strength ${sy.logging.strength})` : 'uniform',
      trainUsers,
      testUsers,
      rounds,
      simulator: { arms: sim.header.fit.arms, models: sim.outcomes.length, fitSeconds: sim.header.fit.seconds, historyImportance: sim.historyImportance() },
      rows,
      tau,
      plan,
      gates,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    if (ownHandle) handle?.unload();
    if (ownSim) sim?.dispose();
  }
}
