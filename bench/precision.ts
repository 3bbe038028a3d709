/**
 * fp32 against bf16 (`loadNativeModel(model, { precision: 'bf16' })`, native/bf16.h) on the same
 * model, each scenario alternated between the two in one run (this host's speed drifts by
 * tens of percent within minutes): issue 15's decision scenarios, the layer GEMMs, and the
 * full solve of 10,000 SY users x 10 rounds at 0.5x with what bf16 changes in its plan.
 * `npm run bench -- --only=precision [--model=FILE] [--quick]`.
 */
import { readOnnx } from '../src/model/onnx.js';
import { loadNativeModel, nativeBf16Hardware, nativeForward, type NativeModel } from '../src/native/index.js';
import { nativeGemmBench } from '../src/native/testing.js';
import { decideSync, solve, type SolveResult } from '../src/solve/index.js';
import { timingOf, type Timing } from './harness.js';
import { decideRound4, decisionBatch, defaultSizedModel, firstRounds, servingHistories, withoutDecisionCache } from './solve.js';

export interface PrecisionRow {
  scenario: string;
  fp32Ms: number;
  bf16Ms: number;
}


/** Medians of `body` on each handle, after 20 warm-up calls each, alternated in bursts of 50 calls for `seconds`. */
async function alternated(handles: Record<'fp32' | 'bf16', NativeModel>, seconds: number, body: (h: NativeModel) => unknown): Promise<Record<'fp32' | 'bf16', number>> {
  const samples: Record<'fp32' | 'bf16', number[]> = { fp32: [], bf16: [] };
  const end = performance.now() + 1000 * seconds;
  for (const p of ['fp32', 'bf16'] as const) for (let i = 0; i < 20; i++) await body(handles[p]); // warm each
  while (performance.now() < end) {
    for (const p of ['fp32', 'bf16'] as const) {
      for (let i = 0; i < 50; i++) {
        const t0 = performance.now();
        await body(handles[p]);
        samples[p].push(performance.now() - t0);
      }
    }
  }
  return { fp32: timingOf('fp32', samples.fp32).medianMs, bf16: timingOf('bf16', samples.bf16).medianMs };
}

export async function benchPrecision(options: { quick?: boolean; modelFile?: string } = {}): Promise<{ rows: PrecisionRow[]; timings: Timing[] }> {
  const model = options.modelFile ? readOnnx(options.modelFile) : defaultSizedModel();
  const handles = { fp32: loadNativeModel(model), bf16: loadNativeModel(model, { precision: 'bf16' }) };
  const c = model.meta.config;
  const d = c.stateDim;
  const lambda = 0.25 * model.meta.normalization.lambdaMax;
  const seconds = options.quick ? 1 : 4;
  const rows: PrecisionRow[] = [];
  const timings: Timing[] = [];
  const row = (scenario: string, r: Record<'fp32' | 'bf16', number>) => {
    rows.push({ scenario, fp32Ms: r.fp32, bf16Ms: r.bf16 });
    console.log(`${scenario}: fp32 ${fmt(r.fp32)}, bf16 ${fmt(r.bf16)} (bf16 ${(r.fp32 / r.bf16).toFixed(2)}x)`);
  };
  console.log(`bf16 on ${nativeBf16Hardware() ? "AMX's tiles" : 'fp32 arithmetic (no AMX in this process: bf16 gives its values at fp32 speed)'}`);
  try {
    // one user, decideSync: round 0; round 5 served (round 4 decided before); round 5 cold
    const state = Float32Array.from({ length: d }, (_, j) => 0.1 * j);
    const histories = servingHistories(c, state, 256);
    for (const h of Object.values(handles)) decideRound4(h, lambda, histories);
    row('one user, decideSync, round 0', await alternated(handles, seconds, (h) => decideSync({ model: h, lambda, state })));
    let next = 0;
    row('one user, decideSync, round 5, served (round 4 decided before)', await alternated(handles, seconds, (h) => decideSync({ model: h, lambda, state, history: histories[next++ % histories.length] })));
    const cold = histories[0];
    // 128 users in one call
    const B = 128;
    const b0 = decisionBatch(c, B, 1, lambda);
    const b5 = decisionBatch(c, B, 6, lambda);
    await withoutDecisionCache(Object.values(handles), async () => {
      row('one user, decideSync, round 5, cold (decision cache off)', await alternated(handles, seconds, (h) => decideSync({ model: h, lambda, state, history: cold })));
      row('128 users, one call, round 5, cold (decision cache off)', await alternated(handles, seconds, (h) => nativeForward(h, b5, 'incremental')));
    });
    row('128 users, one call, round 0', await alternated(handles, seconds, (h) => nativeForward(h, b0, 'incremental')));
    const b4 = firstRounds(c, b5, 5);
    for (const h of Object.values(handles)) await nativeForward(h, b4, 'incremental');
    row('128 users, one call, round 5, served (round 4 decided before)', await alternated(handles, seconds, (h) => nativeForward(h, b5, 'incremental')));
    // the layers' GEMMs, one core
    const D = c.dModel;
    for (const [m, k, n] of [[1, D, D], [4, D, 4 * D], [16, D, D], [128, D, 4 * D], [128, 4 * D, D], [512, D, 4 * D]]) {
      const g = nativeGemmBench(m, k, n, options.quick ? 0.2 : 0.5);
      console.log(`GEMM ${m}x${k} @ ${k}x${n}, one core: fp32 engine ${g.ours.toFixed(0)} GFLOP/s, bf16 ${g.bf16.toFixed(0)} GFLOP/s (${(g.bf16 / g.ours).toFixed(2)}x), Eigen ${g.eigen.toFixed(0)}`);
      const mflop = (2 * m * k * n) / 1e6;
      rows.push({ scenario: `GEMM ${m}x${k} @ ${k}x${n}, one core`, fp32Ms: mflop / g.ours, bf16Ms: mflop / g.bf16 });
    }
    // the full solve, alternated
    const users = options.quick ? 2000 : 10000;
    const env = { seed: 1, rounds: c.context };
    const results: Partial<Record<'fp32' | 'bf16', SolveResult>> = {};
    const runs = options.quick ? 1 : 3;
    const solveMs: Record<'fp32' | 'bf16', number[]> = { fp32: [], bf16: [] };
    for (const p of ['fp32', 'bf16'] as const) await solve({ users, budget: '0.5x', env, model: handles[p] }); // a warm-up each, not timed
    for (let i = 0; i < runs; i++) {
      for (const p of ['fp32', 'bf16'] as const) {
        const t0 = performance.now();
        results[p] = await solve({ users, budget: '0.5x', env, model: handles[p] });
        solveMs[p].push(performance.now() - t0);
      }
    }
    const solves = { fp32: timingOf(`full solve ${users} x ${env.rounds} at 0.5x, fp32`, solveMs.fp32), bf16: timingOf(`full solve ${users} x ${env.rounds} at 0.5x, bf16`, solveMs.bf16) };
    timings.push(solves.fp32, solves.bf16);
    row(`full solve ${users} x ${env.rounds} at 0.5x (default search, median of ${runs})`, { fp32: solves.fp32.medianMs, bf16: solves.bf16.medianMs });
    const a = results.fp32 as SolveResult;
    const b = results.bf16 as SolveResult;
    let same = 0;
    for (let i = 0; i < a.plan.length; i++) same += a.plan[i] === b.plan[i] ? 1 : 0;
    console.log(`  bf16 against fp32: λ* ${b.lambda.toFixed(4)} vs ${a.lambda.toFixed(4)}, revenue ${b.revenue.toFixed(0)} vs ${a.revenue.toFixed(0)} (${(100 * (b.revenue / a.revenue - 1)).toFixed(2)}%), ` +
      `cost ${b.cost.toFixed(0)} vs ${a.cost.toFixed(0)} (budget ${a.budget.toFixed(0)}), ${(100 * same / a.plan.length).toFixed(2)}% of decisions the same, rollouts ${b.rollouts} vs ${a.rollouts}`);
  } finally {
    for (const h of Object.values(handles)) h.unload();
  }
  return { rows, timings };
}

function fmt(ms: number): string {
  return ms < 0.1 ? `${(1000 * ms).toFixed(1)} µs` : `${ms.toFixed(3)} ms`;
}
