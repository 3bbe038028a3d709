import { generateSy, loadNativeModel, nativeForward, nativeRollout, nativeSearchLambda } from './src/native/index.js';
import { resolveSyConfig } from './src/data/synth.js';
import { readOnnx } from './src/model/onnx.js';
const model = readOnnx('/tmp/demo.onnx');
const h = loadNativeModel(model);
const env = resolveSyConfig({ users: 800, rounds: 10, seed: 1 });
const ids = Uint32Array.from({ length: 2000 }, (_, i) => i);
const sy = await generateSy({ users: 2000, rounds: 10, seed: 1 });
let t0 = performance.now();
const r = await nativeRollout({ env, rounds: 10, budget: Infinity, policy: 'random', lambda: 0, userIds: ids });
let R = 0, C = 0; for (let i = 0; i < sy.reward.length; i++) { R += sy.reward[i]; C += sy.cost[i]; }
console.log('random', r.revenue, r.cost, 'log', R, C, (performance.now() - t0).toFixed(1));
for (const lam of [0, 0.5, 1, 2, 4]) { t0 = performance.now(); const c = await nativeRollout({ env, rounds: 10, budget: Infinity, policy: 'codt', lambda: lam, model: h.id, userIds: ids }); const o = await nativeRollout({ env, rounds: 10, budget: Infinity, policy: 'oracle', lambda: lam, userIds: ids }); console.log('λ', lam, 'codt R', c.revenue.toFixed(0), 'C', c.cost.toFixed(0), 'oracle R', o.revenue.toFixed(0), 'C', o.cost.toFixed(0), (performance.now() - t0).toFixed(1), 'ms'); }
const B = r.cost * 0.5;
for (const method of ['bisection', 'slsqp'] as const) { t0 = performance.now(); const s = await nativeSearchLambda({ env, rounds: 10, budget: Infinity, policy: 'codt', lambda: 0, model: h.id, userIds: ids }, { method, budget: B }); console.log(method, 'λ*', s.lambda.toFixed(3), 'R', s.plan.revenue.toFixed(0), 'C', s.plan.cost.toFixed(0), 'B', B.toFixed(0), 'BARate', (s.plan.cost / B).toFixed(3), 'rollouts', s.rollouts, 'feasible', s.feasible, (performance.now() - t0).toFixed(0), 'ms'); }
{ const s = await nativeSearchLambda({ env, rounds: 10, budget: Infinity, policy: 'codt', lambda: 0, model: h.id, userIds: ids }, { method: 'bisection', budget: B });
for (const p of s.trace) console.log(p.lambda.toFixed(5), p.cost.toFixed(0), p.revenue.toFixed(0)); console.log('final', s.lambda, s.plan.cost, s.plan.blocked, s.plan.revenue); 
const lo = s.trace.filter(p => p.cost > B).sort((a, b) => b.lambda - a.lambda)[0]; const e = await nativeRollout({ env, rounds: 10, budget: B, policy: 'codt', lambda: lo.lambda, model: h.id, userIds: ids }); console.log('lo enforced', lo.lambda, e.cost, e.revenue, e.blocked); }
