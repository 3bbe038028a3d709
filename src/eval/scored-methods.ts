/**
 * The `saco eval` entries of the scored baselines (src/policy/scored.ts): CMDP25/50/75
 * (fitted-Q iteration at λ = 0.25/0.5/0.75 × the λ scale, greedy in Q, one budgeted rollout, no
 * λ search) and DFCL (response model with its decision-focused correction, λ searched). Each
 * fits on the training users, caches its booster in the method's cache folder (XGBoost UBJSON)
 * with a JSON of what the fit reported (DFCL's also holds its correction, plain JSON), and runs
 * on the test users as a native scored policy through solve() (CMDP 'scored-fixed', DFCL
 * 'scored' with the correction and solve's λ search), in whatever environment the data gives
 * (SY, the learned simulator) under the same budget rule as every other method.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ArgumentError, DataError } from '../errors.js';
import { loadOutcomeModel, saveOutcomeModel, type OutcomeModel } from '../sim/outcome.js';
import { checkArms, disposeArms, pooled, type ArmOutcomes } from '../sim/arm-outcomes.js';
import { fitCmdp } from '../policy/cmdp.js';
import { fitDfcl, type DfclCorrection, type DfclOptions } from '../policy/dfcl.js';
import { syActionMap, type ScoredArtifact } from '../policy/scored.js';
import { solve } from '../solve/index.js';
import { writeJsonAtomic } from './files.js';
import { outcomeOf, solveBase, type EvalDataset, type EvalMethod, type MethodOutcome, type PrepareContext, type Prepared } from './methods.js';

/** λ of CMDPxx = xx/100 × this scale: spend priced in the currency of revenue (1 coupon dollar = 1 revenue dollar at scale 1). */
export const CMDP_LAMBDA_SCALE = 1;

/** A fitted scored baseline: the booster(s) by joint action, and DFCL's correction of its scores (null: none, CMDP's always). */
interface ScoredFit {
  model: ArmOutcomes;
  correction: DfclCorrection | null;
}

/**
 * fit.json: what the fit reported, the correction when the fit made one (DFCL), and with models
 * per arm their `armModel` map; the boosters are booster.ubj (one model) or booster-<i>.ubj.
 */
async function cached(ctx: PrepareContext, fit: () => Promise<{ model: ArmOutcomes; correction?: DfclCorrection | null; info: Record<string, unknown> }>): Promise<Prepared<ScoredFit>> {
  const boosterFile = (i: number, count: number) => ctx.cache.file(count === 1 ? 'booster.ubj' : `booster-${i}.ubj`);
  const infoFile = ctx.cache.file('fit.json');
  if (existsSync(infoFile)) {
    const { correction = null, armModel, ...info } = JSON.parse(readFileSync(infoFile, 'utf8')) as Record<string, unknown> & { correction?: DfclCorrection | null; armModel?: unknown };
    // a map that is not one (a cache written otherwise): fitted again
    const map = armModel === undefined ? null : Array.isArray(armModel) && armModel.length > 0 && armModel.every((m) => Number.isInteger(m) && m >= 0) ? (armModel as number[]) : undefined;
    const count = map ? Math.max(...map) + 1 : 1;
    const files = Array.from({ length: count }, (_, i) => boosterFile(i, count));
    if (map !== undefined && files.every((f) => existsSync(f))) {
      const outcomes: OutcomeModel[] = [];
      try {
        for (const f of files) outcomes.push(loadOutcomeModel(new Uint8Array(readFileSync(f))));
        const model = map ? { outcomes, armModel: map } : pooled(outcomes[0]);
        checkArms(model);
        return { artifact: { model, correction }, fitted: false, info, release: () => disposeArms(model) };
      } catch (e) {
        for (const o of outcomes) o.dispose();
        throw new DataError('EVAL_BAD_CACHE', `cannot read the fitted model back (${(e as Error).message}): delete ${ctx.cache.dir} to fit it again`, { file: infoFile });
      }
    }
  }
  const t0 = performance.now();
  const { model, correction, info } = await fit();
  model.outcomes.forEach((o, i) => writeFileSync(boosterFile(i, model.outcomes.length), saveOutcomeModel(o)));
  const record = { ...info, seconds: (performance.now() - t0) / 1000 };
  const perArm = model.outcomes.length > 1 ? { armModel: model.armModel } : {};
  writeJsonAtomic(infoFile, correction === undefined ? { ...record, ...perArm } : { ...record, ...perArm, correction });
  return { artifact: { model, correction: correction ?? null }, fitted: true, info: record, release: () => disposeArms(model) };
}

const treesFor = (quick: boolean) => (quick ? 60 : 200);

/** The model and its correction with the map of its (the training log's) action indices to the environment's: SY's own order; the simulator's are the log's. */
function artifactOf(data: EvalDataset, { model, correction }: ScoredFit): ScoredArtifact & { correction: DfclCorrection | null } {
  return data.config ? { model, correction, envAction: syActionMap(data.train.actionEncodings, data.config, 'train') } : { model, correction };
}

export function cmdpMethod(fraction: number): EvalMethod<ScoredFit> {
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
        return { model: pooled(fit.q), info: { lambda, bellmanResidual: fit.iterations.map((i) => i.bellmanResidual), change: fit.iterations.map((i) => i.change) } };
      }),
    async run(ctx, q): Promise<MethodOutcome> {
      if (!q) throw new ArgumentError(`cmdp${pct}`, 'not fitted');
      // greedy in Q (no cost heads: the λ of the rollout plays no part), one budgeted rollout
      const r = await solve({ ...solveBase(ctx), policy: 'scored-fixed', scored: artifactOf(ctx.data, q) });
      return { ...outcomeOf(r, ctx, { qLambda: lambda }), budgetNotBinding: r.blocked === 0 };
    },
  };
}

/** DFCL's fine-tune as eval fits it (fitDfcl's options; in the cache key, so a change refits). */
const DFCL_FINE_TUNE: DfclOptions = { arms: 'select', keepMargin: 2, epochs: 200, l2: 0.1, temperature: 0.2, basis: 'uplift', estimator: 'dr' };

/**
 * What fitDfcl itself does, in the cache key: 2 since each row is weighed by its own logging
 * propensity (fits before used arm shares), the λ grid comes from the start's spend (before:
 * [0.25, 0.5, 1, 2]) and the fine-tune is kept only if it raises J (before: unless it lowered it);
 * 3 since `arms: 'select'` may start from models per arm (before: always one pooled booster);
 * 4 since the fine-tune must beat the start by `keepMargin` standard errors.
 */
const DFCL_VERSION = 4;

export const dfclMethod: EvalMethod<ScoredFit> = {
  name: 'dfcl',
  label: 'DFCL',
  role: 'baseline',
  description: 'a response model of r and c (XGBoost over state and history: one per arm, or one pooled with the action one-hot, whichever earns more on held-out log users) with a per-arm uplift correction fitted by the decision-focused loss on DR logged outcomes (kept only if it raises the held-out decision value by 2 SE; λ grid where the start spends 80-20% of its λ = 0 spend), argmax r̃ − λ·c̃, λ searched',
  lambdaSearched: true,
  config: (settings) => ({ trees: treesFor(settings.quick), ...DFCL_FINE_TUNE, version: DFCL_VERSION }),
  prepare: (ctx) =>
    cached(ctx, async () => {
      ctx.progress('fitting the response model and its decision-focused correction');
      const fit = await fitDfcl(ctx.data.train, { seed: ctx.data.seed, rounds: treesFor(ctx.settings.quick), threads: ctx.settings.threads, ...DFCL_FINE_TUNE });
      const o = fit.objective;
      const info = { arms: fit.arms, selection: fit.selection, objectiveBefore: o.before, objectiveAfter: o.after, objectiveDifference: o.difference, kept: o.kept, epochs: o.epochs, lambdas: fit.lambdas };
      return { model: fit.model, correction: fit.correction, info };
    }),
  async run(ctx, fit): Promise<MethodOutcome> {
    if (!fit) throw new ArgumentError('dfcl', 'not fitted');
    return outcomeOf(await solve({ ...solveBase(ctx), policy: 'scored', scored: artifactOf(ctx.data, fit), lambdaMax: ctx.settings.oracleLambdaMax }), ctx);
  },
};

export const scoredMethods: readonly EvalMethod<ScoredFit>[] = [cmdpMethod(0.25), cmdpMethod(0.5), cmdpMethod(0.75), dfclMethod];
