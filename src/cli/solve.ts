/**
 * `saco solve`: plan a campaign (the λ search under a budget) in SY's ground truth or in a
 * log's learned simulator (--sim), print revenue, cost, ROI, BARate, and write the plan
 * (--out: one row per user and round). Output paths are checked before any work.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readHistoryForModel } from '../solve/decide-batch.js';
import { formatOf } from '../data/duck.js';
import { ArgumentError } from '../errors.js';
import { checkDataMatchesModel } from '../model/artifact.js';
import { readOnnx } from '../model/onnx.js';
import { loadNativeModel, type NativePrecision } from '../native/index.js';
import { POLICIES, POLICY_NAMES, policyByName, type PolicyDefinition, type PolicyName } from '../policy/registry.js';
import { solve, syEnvForModel, writePlan, type EnvChoice, type PlanLabels, type SolveProgress, type SolveResult, type SolveUsers } from '../solve/index.js';
import { readSimulator, type Simulator } from '../sim/simulator.js';
import { budgetArg, checkDistinct, checkWritable, examples, fmt, intArg, noticeReadReport, numArg, parseDecimal, precisionOption, resolveInput, roiText, roiValue, table, withInputOptions, withOutputFlags, type InputOpts } from './common.js';
import { Ui } from './ui.js';
import { isShardSet, readShardManifest } from '../cluster/shard-files.js';
import { ClusterError, solveSharded, type ShardedSolveResult } from '../cluster/index.js';
import { Interrupted } from './interrupt.js';
import { takeOverTermination } from './worker.js';


interface SolveOpts extends InputOpts {
  model: string;
  precision: NativePrecision;
  users?: number | string;
  budget: number | `${number}x`;
  method: 'bisection' | 'slsqp';
  policy: PolicyName;
  engine: 'native' | 'ort';
  compare?: boolean;
  rounds?: number;
  sySeed: number;
  sim?: string;
  simSeed?: number;
  startRound?: number;
  out?: string;
  epsilon?: number;
  threads: number;
  redis?: string;
  shards?: number;
  json?: boolean;
  quiet?: boolean;
}

/** `--users`: a count of fresh SY users, or (older form) a log file, like --data. */
function usersArg(value: string): number | string {
  if (/^\d+$/.test(value.trim())) {
    const n = Number(value);
    if (n < 1 || n > 1e8) throw new InvalidArgumentError('expected a number of users in [1, 1e8], or a log file (use --data FILE)');
    return n;
  }
  if (parseDecimal(value) !== undefined || /^0[xob]/i.test(value.trim())) throw new InvalidArgumentError('expected a whole decimal number of users, e.g. 10000');
  return value;
}

const PHASES: Record<SolveProgress['phase'], string> = { reference: 'reference rollout (uniform logging)', search: 'λ search', plan: 'plan at λ*', done: 'done' };

function progressText(p: SolveProgress): string {
  const parts = [PHASES[p.phase] ?? p.phase, `${p.rollouts} rollout${p.rollouts === 1 ? '' : 's'}`];
  if (p.lambda !== undefined) parts.push(`λ ${fmt(p.lambda)}`);
  if (p.cost !== undefined) parts.push(`spend ${fmt(p.cost, 6)}${p.budget !== undefined ? ` / budget ${fmt(p.budget, 6)}` : ''}`);
  return parts.join(', ');
}

/** The result as JSON: without the plan (large), ROI null when nothing was spent. */
function jsonResult(r: SolveResult): Record<string, unknown> {
  const { plan: _plan, planDetails: _details, ...rest } = r;
  return { ...rest, roi: roiValue(r.revenue, r.cost) };
}

async function runSolve(o: SolveOpts, cmd: Command): Promise<void> {
  const fileUsers = typeof o.users === 'string' ? o.users : undefined;
  if (o.data === undefined && o.users === undefined) cmd.error("error: one of '--data <file>' or '--users <n>' is required", { code: 'commander.missingMandatoryOptionValue', exitCode: 2 });
  if (o.data !== undefined && typeof o.users === 'number') cmd.error("error: give '--data <file>' or '--users <n>', not both", { code: 'commander.conflictingOption', exitCode: 2 });
  const shardSet = o.data !== undefined && isShardSet(o.data) ? readShardManifest(o.data) : undefined;
  const sharded = o.redis !== undefined || o.shards !== undefined || shardSet !== undefined;
  if (o.precision === 'bf16' && (sharded || o.engine === 'ort')) cmd.error(`error: '--precision bf16' is the native engine's on one machine, not ${sharded ? 'the sharded solve' : "'--engine ort'"}`, { code: 'commander.conflictingOption', exitCode: 2 });
  if (sharded && o.engine === 'ort') cmd.error("error: '--engine ort' runs on one machine; the sharded solve (--redis, --shards, a shard folder) runs natively", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.sim !== undefined && typeof o.users === 'number') cmd.error("error: '--sim' plans the users of a log: give '--data <file>' (their logged states), not a number of users", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.sim !== undefined && sharded) cmd.error("error: '--sim' runs on one machine; the sharded solve (--redis, --shards, a shard folder) runs in SY", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.startRound !== undefined && o.sim === undefined) cmd.error("error: '--start-round' needs '--sim' (SY plans start at round 0)", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.simSeed !== undefined && o.sim === undefined) cmd.error("error: '--sim-seed' needs '--sim' (SY's draws follow --sy-seed)", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.out !== undefined && sharded) cmd.error("error: '--out' writes one plan file; a sharded solve writes the plan next to each shard", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.out !== undefined && o.engine === 'ort') cmd.error("error: '--out' needs the native engine (it records the plan's probabilities and expected outcomes)", { code: 'commander.conflictingOption', exitCode: 2 });
  if (o.out !== undefined) {
    try {
      formatOf(o.out);
    } catch {
      throw new ArgumentError('--out', `${o.out}: a plan is written as .csv, .csv.gz or .parquet`, 'ARGUMENT_OUTPUT');
    }
    checkDistinct([
      ['--model', o.model],
      ['--data', o.data ?? fileUsers],
      ['--schema', o.schema],
      ['--sim', o.sim],
      ['--out', o.out],
    ]);
    checkWritable('--out', o.out);
  }
  const ui = new Ui(o);
  // SIGTERM / Ctrl-C during a sharded solve: its pending jobs are removed from the queue, then exit
  const abort = new AbortController();
  let signalled: 'SIGTERM' | 'SIGINT' | undefined;
  const restoreSignals = sharded ? takeOverTermination((signal) => {
    signalled = signal;
    abort.abort();
  }) : () => undefined;
  try {
    ui.phase(`reading ${o.model}`);
    const model = readOnnx(o.model);
    let simulator: Simulator | undefined;
    if (o.sim !== undefined) {
      ui.phase(`reading ${o.sim}`);
      simulator = readSimulator(o.sim);
      // the simulator's schema against the model's: which state features or action values differ
      checkDataMatchesModel(model.meta, { ...simulator.header.schema, source: o.sim });
    }
    let users: SolveUsers | NonNullable<typeof shardSet>['asUsers'];
    // who the plan file names: the log's user ids, or fresh SY users 0..n-1
    let labels: PlanLabels = { userIds: [], actionEncodings: model.meta.actionEncodings };
    if (typeof o.users === 'number') {
      users = o.users;
      labels = { ...labels, userIds: Array.from({ length: o.users }, (_, i) => i) };
    } else if (shardSet) users = shardSet.asUsers;
    else {
      const { file, schema } = resolveInput(cmd, o, fileUsers);
      ui.phase(`reading ${file}`);
      // read against the model: a category level the model knows but these users lack (a rare
      // level missing from a held-out part) is a column of zeros, not a different layout
      const { trajectories, report } = await readHistoryForModel(file, model.meta, { schema, modelName: `the model ${o.model}`, glob: o.glob, onProgress: (stage) => ui.phase(stage) });
      noticeReadReport(ui, report);
      simulator?.checkData({ ...trajectories, source: file });
      users = trajectories;
      labels = { ...labels, userIds: trajectories.userIds };
    }
    ui.phase(`loading the model${o.precision === 'bf16' ? ' (bf16)' : ''}`);
    const handle = loadNativeModel(model, { precision: o.precision });
    try {
      const env: EnvChoice = simulator ? { kind: 'sim', simulator, startRound: o.startRound, seed: o.simSeed } : syEnvForModel(model.meta, o.sySeed);
      const run = (policy: PolicyName): Promise<SolveResult> => {
        const def = policyByName(policy);
        const ort = def.needsModel && o.engine === 'ort';
        ui.phase(`solving: ${policy}${ort ? ' (ort)' : ''}${def.searched ? `, ${o.method}` : ' (no λ search)'}${sharded ? `, sharded${o.redis ? ' on Redis' : ' in process'}` : ''}`);
        if (sharded) {
          return solveSharded({
            // workers load the model by path; in process the loaded one is used
            model: o.redis ? o.model : handle, users, shards: o.shards, cluster: o.redis ? { redis: o.redis } : undefined,
            collectPlan: !shardSet, signal: abort.signal, budget: o.budget, method: o.method, policy, rounds: o.rounds, env, epsilon: o.epsilon,
            threads: o.threads, lambdaMax: model.meta.normalization.lambdaMax * 2, onProgress: (p) => ui.update(progressText(p)),
          }).catch((e: unknown) => {
            if (e instanceof ClusterError && e.code === 'CLUSTER_ABORTED' && signalled) throw new Interrupted(signalled === 'SIGINT' ? 130 : 143);
            throw e;
          });
        }
        if (typeof users === 'object' && 'shardFiles' in users) throw new Error('internal: shard files outside a sharded solve');
        return solve({
          model: ort ? model : handle,
          engine: ort ? 'ort' : 'native',
          users,
          budget: o.budget,
          method: o.method,
          policy,
          rounds: o.rounds,
          env,
          epsilon: o.epsilon,
          threads: o.threads,
          lambdaMax: model.meta.normalization.lambdaMax * 2,
          planDetails: o.out !== undefined && policy === o.policy,
          onProgress: (p) => ui.update(progressText(p)),
        });
      };
      const results: SolveResult[] = [await run(o.policy)];
      // policies that need something fitted first (a forest, a prior) are compared in saco eval
      if (o.compare) for (const p of POLICIES as readonly PolicyDefinition[]) if (p.name !== o.policy && !p.fittedOn) results.push(await run(p.name as PolicyName));
      if (o.out !== undefined) {
        ui.phase(`writing ${o.out}`);
        await writePlan(results[0], labels, o.out);
      }
      ui.done();
      const docs = results.map(jsonResult);
      if (o.out !== undefined) docs[0].out = o.out;
      ui.result(docs, () => {
        const r0 = results[0];
        const rows = results.map((r) => [
          r.engine === 'ort' ? `${r.policy} (ort)` : r.policy,
          r.method,
          fmt(r.lambda, 4),
          fmt(r.revenue, 7),
          fmt(r.cost, 7),
          roiText(r.revenue, r.cost),
          fmt(r.baRate, 4),
          String(r.rollouts),
          `${fmt(r.wallMs, 4)} ms`,
          r.needsMoreThanLambdaMax ? 'budget needs λ > λmax' : r.budgetNotBinding ? 'budget not binding' : '',
        ]);
        const lines = [
          `${r0.users} users x ${r0.rounds} rounds${simulator ? ` in the simulator ${o.sim}${o.startRound ? ` from round ${o.startRound}` : ''}` : ''}, budget ${fmt(r0.budget, 6)} (uniform logging spends ${fmt(r0.referenceSpend, 6)})`,
          ...table(['policy', 'search', 'λ*', 'revenue', 'cost', 'ROI', 'BARate', 'rollouts', 'wall', ''], rows),
        ];
        if ('shards' in r0) {
          const s = r0 as ShardedSolveResult;
          lines.push(`sharded: ${s.shards.length} shards, ${s.runner === 'local' ? 'in process' : `on workers behind ${s.runner}`}; each shard's budget pro-rata to its natural spend at λ*`);
          const files = s.shards.filter((x) => x.planFile).map((x) => x.planFile as string);
          if (files.length) lines.push(`plan written next to each shard: ${files.length} files, e.g. ${files[0]}`);
        }
        if (o.out !== undefined) lines.push(`wrote ${o.out}: the ${r0.policy} plan, ${r0.users * r0.rounds} rows (user, round, action, probability, expected revenue and cost, withheld, λ*)`);
        return lines;
      });
    } finally {
      handle.unload();
    }
  } finally {
    restoreSignals();
    ui.done();
  }
}

export function registerSolve(program: Command): void {
  const cmd = program
    .command('solve')
    .description('plan a campaign: find the λ whose simulated spend meets the budget, print revenue, cost, ROI, BARate')
    .requiredOption('--model <file>', 'trained model (.onnx)');
  withInputOptions(cmd, 'required unless --users', 'users to plan for: a log written by saco synth (e.g. the test split), or with --sim a log of the simulator\'s schema (the usual schema options)')
    .option('--users <n>', 'or a number of fresh SY users (a file here is read like --data)', usersArg)
    .requiredOption('--budget <b>', 'budget: a decimal amount, or a multiple of what uniform logging spends on these users, e.g. 0.5x', budgetArg)
    .addOption(new Option('--method <m>', 'λ search').choices(['bisection', 'slsqp']).default('bisection'))
    .addOption(new Option('--policy <p>', `who decides: ${POLICIES.map((p) => `${p.name}, ${p.description}`).join('; ')}`).choices([...POLICY_NAMES]).default('codt'))
    .addOption(new Option('--engine <e>', 'what computes the CODT decisions (ort: onnxruntime in a Piscina pool)').choices(['native', 'ort']).default('native'))
    .addOption(precisionOption())
    .option('--compare', 'also solve Random and the Oracle at the same budget (the fitted baselines: saco eval)')
    .option('--rounds <n>', "rounds to plan (default: the model's context)", intArg(1, 100000))
    .option('--sy-seed <n>', 'seed of the SY ground truth (must be the one the users came from)', intArg(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--sim <file>', 'plan in this learned simulator (saco fit-sim) instead of SY: the users of --data start from their logged states')
    .option('--sim-seed <n>', "with --sim: seed of the simulator's draws, keyed with each user and round (default 1); another seed is another sample of the same campaign", intArg(0, Number.MAX_SAFE_INTEGER))
    .option('--start-round <n>', 'with --sim: plan from round n, each user starting from their logged state and history then (default 0: the whole campaign)', intArg(0, 100000))
    .option('--out <file>', 'write the plan: .csv, .csv.gz or .parquet, one row per user and round (user_id, round, one column per action dimension, probability, expected_revenue, expected_cost, withheld, lambda)')
    .option('--epsilon <x>', 'tolerance below the budget (default 2%)', numArg(0, Number.MAX_VALUE))
    .option('--threads <n>', 'native threads (0: all cores)', intArg(0, 1024), 0)
    .option('--redis <url>', 'run the shards on `saco worker` processes behind this Redis (redis://host:port); the model and shard files must be at the same paths on every worker')
    .option('--shards <n>', 'split the users into n shards (in process without --redis: the exact twin of the Redis run); a shard folder from saco shard as --data gives one shard per file', intArg(1, 1_000_000));
  withOutputFlags(cmd, 'print the results as one JSON array (without the plan; roi null when nothing was spent)');
  cmd.action(runSolve);
  examples(cmd, [
    'saco solve --model model.onnx --data test.parquet --budget 0.5x',
    'saco solve --model model.onnx --users 10000 --budget 25000 --method slsqp',
    'saco solve --model model.onnx --data test.parquet --budget 0.5x --compare --json',
    'saco solve --model m.onnx --sim sim.bin --data logs.parquet --budget 0.5x --out plan.parquet',
    'saco solve --model m.onnx --sim sim.bin --data logs.csv --schema s.json --start-round 3 --budget 20000 --out plan.csv',
    'saco solve --model model.onnx --users 10000 --budget 0.5x --out plan.csv.gz',
    'saco solve --model model.onnx --users 1000000 --budget 0.5x --shards 64 --redis redis://127.0.0.1:6379',
  ]);
}
