/**
 * The `saco eval` entries of the scored baselines (src/policy/scored.ts): CMDP25/50/75
 * (fitted-Q iteration at λ = 0.25/0.5/0.75 × the λ scale, greedy in Q, one budgeted rollout, no
 * λ search) and DFCL (decision-focused re-weighted response model, λ searched). Each fits on the
 * training users, caches its booster in the method's cache folder (XGBoost UBJSON) with a JSON
 * of what the fit reported, and runs on the test users as a native scored policy through
 * solve() (CMDP 'scored-fixed', DFCL 'scored' with solve's λ search), in whatever environment
 * the data gives (SY, the learned simulator) under the same budget rule as every other method.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ArgumentError } from '../errors.js';
import { loadOutcomeModel, saveOutcomeModel, type OutcomeModel } from '../sim/outcome.js';
import { fitCmdp } from '../policy/cmdp.js';
import { fitDfcl } from '../policy/dfcl.js';
import { syActionMap, type ScoredArtifact } from '../policy/scored.js';
import { solve } from '../solve/index.js';
import { writeJsonAtomic } from './files.js';
import { outcomeOf, solveBase, type EvalDataset, type EvalMethod, type MethodOutcome, type PrepareContext, type Prepared } from './methods.js';

/** λ of CMDPxx = xx/100 × this scale: spend priced in the currency of revenue (1 coupon dollar = 1 revenue dollar at scale 1). */
export const CMDP_LAMBDA_SCALE = 1;

async function cached(ctx: PrepareContext, fit: () => Promise<{ model: OutcomeModel; info: Record<string, unknown> }>): Promise<Prepared<OutcomeModel>> {
  const file = ctx.cache.file('booster.ubj');
  const infoFile = ctx.cache.file('fit.json');
  if (existsSync(file) && existsSync(infoFile)) {
    const model = loadOutcomeModel(new Uint8Array(readFileSync(file)));
    return { artifact: model, fitted: false, info: JSON.parse(readFileSync(infoFile, 'utf8')) as Record<string, unknown>, release: () => model.dispose() };
  }
  const t0 = performance.now();
  const { model, info } = await fit();
  writeFileSync(file, saveOutcomeModel(model));
  const record = { ...info, seconds: (performance.now() - t0) / 1000 };
  writeJsonAtomic(infoFile, record);
  return { artifact: model, fitted: true, info: record, release: () => model.dispose() };
}

const treesFor = (quick: boolean) => (quick ? 60 : 200);

/** The model with the map of its (the training log's) action indices to the environment's: SY's own order; the simulator's are the log's. */
function artifactOf(data: EvalDataset, model: OutcomeModel): ScoredArtifact {
  return data.config ? { model, envAction: syActionMap(data.train.actionEncodings, data.config, 'train') } : { model };
}

export function cmdpMethod(fraction: number): EvalMethod<OutcomeModel> {
  const pct = Math.round(fraction * 100);
  const lambda = fraction * CMDP_LAMBDA_SCALE;
  return {
    name: `cmdp${pct}`,
    label: `CMDP${pct}`,
    role: 'baseline',
    description: `fitted-Q iteration (XGBoost) on r − λ·c at fixed λ = ${fraction} × ${CMDP_LAMBDA_SCALE} (spend priced in revenue currency), greedy in Q, no λ search`,
    lambdaSearched: false,
    config: (settings) => ({ lambda, trees: treesFor(settings.quick), iterations: 'T' }),
    prepare: (ctx) =>
      cached(ctx, async () => {
        const fit = await fitCmdp(ctx.data.train, {
          lambda,
          rounds: treesFor(ctx.settings.quick),
          seed: ctx.data.seed,
          threads: ctx.settings.threads,
          onIteration: (it) => ctx.progress(`fitted-Q iteration ${it.iteration}/${ctx.data.train.rounds}, Bellman residual ${it.bellmanResidual.toPrecision(4)}`),
        });
        return { model: fit.q, info: { lambda, bellmanResidual: fit.iterations.map((i) => i.bellmanResidual), change: fit.iterations.map((i) => i.change) } };
      }),
    async run(ctx, q): Promise<MethodOutcome> {
      if (!q) throw new ArgumentError(`cmdp${pct}`, 'not fitted');
      // greedy in Q (no cost heads: the λ of the rollout plays no part), one budgeted rollout
      const r = await solve({ ...solveBase(ctx), policy: 'scored-fixed', scored: artifactOf(ctx.data, q) });
      return { ...outcomeOf(r, { qLambda: lambda }), budgetNotBinding: r.blocked === 0 };
    },
  };
}

export const dfclMethod: EvalMethod<OutcomeModel> = {
  name: 'dfcl',
  label: 'DFCL',
  role: 'baseline',
  description: 'response model of r and c per arm (XGBoost), re-weighted by the decision-focused loss on IPW logged outcomes (kept only when it helps on held-out users), argmax r̂ − λ·ĉ, λ searched',
  lambdaSearched: true,
  config: (settings) => ({ trees: treesFor(settings.quick), alpha: 1, refits: 1 }),
  prepare: (ctx) =>
    cached(ctx, async () => {
      ctx.progress('fitting the response model and its decision-focused refit');
      const fit = await fitDfcl(ctx.data.train, { seed: ctx.data.seed, rounds: treesFor(ctx.settings.quick), threads: ctx.settings.threads });
      return { model: fit.model, info: { objectiveBefore: fit.objective.before, objectiveAfter: fit.objective.after, objectiveDifference: fit.objective.difference, kept: fit.objective.kept, lambdas: fit.lambdas } };
    }),
  async run(ctx, model): Promise<MethodOutcome> {
    if (!model) throw new ArgumentError('dfcl', 'not fitted');
    return outcomeOf(await solve({ ...solveBase(ctx), policy: 'scored', scored: artifactOf(ctx.data, model), lambdaMax: ctx.settings.oracleLambdaMax }));
  },
};

export const scoredMethods: readonly EvalMethod<OutcomeModel>[] = [cmdpMethod(0.25), cmdpMethod(0.5), cmdpMethod(0.75), dfclMethod];
