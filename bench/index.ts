/**
 * `npm run bench`: latency and throughput of each stage. Prints markdown tables and writes
 * bench/results/<date>-<host>.json. Flags: `--quick` (smoke run; skips training to early stop),
 * `--only=import|data|train|solve|precision|quality|lambda|sim|sim-real|dfcl|cluster` (precision: fp32 against bf16 on the same model, alternated, bench/precision.ts) (lambda: issue 12's gates, ~30 min: SY 3 seeds x 9 budgets, C(λ) on five data sets, IPS on the RCTs) (import: fresh-process time of `import 'saco'`, needs a build;
 * cluster: the sharded solve through a local redis-server, `--cluster-users=N` users, default 100k),
 * `--model=FILE` (a trained SY model: adds SACO vs Random vs Oracle at three budgets).
 * dfcl: issue 14's DFCL checks (bench/dfcl.ts): its fine-tune's decision objective on fresh users against its two-stage start, and DFCL's and the Forest's share of the Oracle on SY static at 0.5x, 3 seeds.
 * sim-real: issue 13's gate on the Hillstrom and Starbucks RCTs (bench/sim-real.ts): solve in the simulator at 25/50/75% of treat-everyone spend, BARate, the plan's IPS and DR on the held-out logs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeInfo } from '../src/native/index.js';
import { benchData } from './data.js';
import { benchImport } from './import.js';
import { benchTrainToStop, benchTraining } from './train.js';
import { benchQuality, benchSolve, PAPER_TABLE_2 } from './solve.js';
import { benchPrecision, type PrecisionRow } from './precision.js';
import { benchSim } from './sim.js';
import { benchCluster, reportCluster } from './cluster.js';
import { benchRctGates, benchSyGates, type CurveRow } from './lambda-gates.js';
import { benchSimReal, simRealTables } from './sim-real.js';
import { benchDfcl, dfclTables } from './dfcl.js';
import { formatTable, machine } from './harness.js';

const quick = process.argv.includes('--quick');
const info = nativeInfo();
console.log(`machine: ${machine()}`);
const threads = os.availableParallelism?.() ?? os.cpus().length;
console.log(`native core: CUDA ${info.cudaBuilt ? 'built' : 'not built'}, ${info.cudaDevices} GPU(s) visible${info.cudaDevices === 0 ? ' (no GPU here: GPU scenarios are skipped)' : ''}; native threads ${threads}, ORT intra-op threads 1 per session`);
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const modelFile = process.argv.find((a) => a.startsWith('--model='))?.slice(8);
const results = [];
if (!only || only === 'import') {
  const [imported, startup, added] = await benchImport({ quick });
  results.push(imported, startup, added);
  console.log(`import 'saco': ${imported.medianMs.toFixed(0)} ms in a fresh process, of which node's own start-up ${startup.medianMs.toFixed(0)} ms (saco adds ${added.medianMs.toFixed(0)} ms)`);
}
if (!only || only === 'data') results.push(...(await benchData({ quick })));
if (!only || only === 'train') {
  const training = await benchTraining({ quick });
  results.push(...training);
  const native = training[0];
  for (const t of training) console.log(`training throughput on ${t.backend}: ${t.samplesPerSecond.toFixed(1)} trajectories/s${t === native ? '' : ` (native all cores: ${(native.samplesPerSecond / t.samplesPerSecond).toFixed(1)}x this)`}`);
  if (!quick) {
    const run = await benchTrainToStop();
    results.push(run);
    console.log(`default config on SY 10,000 x 10 to early stopping (${run.trainer}): ${(run.medianMs / 1000).toFixed(1)} s, ${run.epochs} epochs, best validation loss ${run.bestValLoss.toFixed(4)}`);
  }
}
if (!only || only === 'solve') {
  results.push(...(await benchSolve({ quick, modelFile })));
  console.log('paper Table 2, for comparison (their hardware, not this machine):');
  for (const p of PAPER_TABLE_2) console.log(`  ${p.scenario}: ${p.ms} ms on ${p.hardware}`);
}
let precision: PrecisionRow[] | undefined;
if (!only || only === 'precision') {
  const r = await benchPrecision({ quick, modelFile });
  precision = r.rows;
  results.push(...r.timings);
}
let sim;
if (!only || only === 'sim') {
  const r = await benchSim({ quick });
  results.push(...r.timings);
  sim = r.fit;
  const fit = r.timings[r.timings.length - 1];
  console.log(`outcome model fit (${r.fit.rows.toLocaleString('en-US')} rows x ${r.fit.cols} columns, ${r.fit.threads} threads): ${(fit.medianMs / 1000).toFixed(1)} s wall, ${r.fit.cpuSeconds.toFixed(1)} s CPU, ${r.fit.idleWallSeconds.toFixed(1)} s on ${r.fit.threads} idle cores by the heads' thread CPU times (issue 13's fit-sim gate: 60 s on 2 cores)`);
  for (const h of r.fit.heads) console.log(`  ${h.name}: ${h.rounds}/${h.roundsRun} trees, validation ${h.metric} ${h.validMetric.toFixed(4)}, ${h.cpuSeconds.toFixed(1)} s CPU`);
}
let cluster;
if (!only || only === 'cluster') {
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status !== 0) console.log('cluster: skipped (no redis-server on PATH; apt-get install redis-server)');
  else {
    const users = Number(process.argv.find((a) => a.startsWith('--cluster-users='))?.slice(16)) || undefined;
    cluster = await benchCluster({ quick, users });
    results.push(...cluster.timings);
    reportCluster(cluster);
  }
}
let quality;
if (modelFile && (!only || only === 'quality')) {
  quality = await benchQuality(modelFile, quick ? 2000 : 10000);
  console.log('| budget | SACO revenue | Random | Oracle | no coupon | SACO BARate | SACO % of Oracle incremental | rollouts bisection | rollouts SLSQP | SLSQP BARate |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const q of quality) {
    console.log(`| ${q.budget} | ${q.saco.toFixed(0)} | ${q.random.toFixed(0)} | ${q.oracle.toFixed(0)} | ${q.noCoupon.toFixed(0)} | ${q.sacoBaRate.toFixed(3)} | ${(100 * q.shareOfOracle).toFixed(1)}% | ${q.rolloutsBisection} | ${q.rolloutsSlsqp} | ${q.slsqpBaRate.toFixed(3)} |`);
  }
}
let lambdaGates;
if (only === 'lambda') {
  const curveLine = (c: CurveRow) => `| ${c.data} | ${(100 * c.shares[0]).toFixed(1)}% | ${(100 * Math.min(...c.shares)).toFixed(1)}% | ${(100 * c.maxRise).toFixed(2)}% | ${c.reference} | ${c.warnings.length ? c.warnings.join('; ') : 'none'} |`;
  const sy = await benchSyGates({ quick });
  const rct = await benchRctGates({ quick });
  lambdaGates = { sy, rct };
  console.log('\n| budget | SACO BARate per seed | share of the Oracle per seed | mean share |');
  console.log('| --- | --- | --- | ---: |');
  for (const r of sy.rows) console.log(`| ${r.budget} | ${r.baRate.map((b) => b.toFixed(3)).join(' / ')} | ${r.share.map((v) => (100 * v).toFixed(1) + '%').join(' / ')} | ${((100 * r.share.reduce((a, b) => a + b, 0)) / r.share.length).toFixed(1)}% |`);
  console.log('\n| data | spend at λ = 0 | lowest spend | largest rise between λ steps | reference | warnings |');
  console.log('| --- | ---: | ---: | ---: | --- | --- |');
  for (const c of [...sy.curves, ...(rct?.curves ?? [])]) console.log(curveLine(c));
  if (rct) {
    console.log('\n| data | budget (of treat-everyone spend) | SACO revenue per user (IPS ± SE) | best arm thinned (IPS ± SE) |');
    console.log('| --- | --- | ---: | ---: |');
    for (const r of rct.rows) console.log(`| ${r.data} | ${r.budget} | ${r.saco.value.toFixed(4)} ± ${r.saco.se.toFixed(4)} | ${r.bestArm.value.toFixed(4)} ± ${r.bestArm.se.toFixed(4)} |`);
  }
}
let simReal;
if (only === 'sim-real') simReal = await benchSimReal({ quick });
let dfcl;
if (only === 'dfcl') {
  dfcl = await benchDfcl({ quick });
  console.log(dfclTables(dfcl));
}
console.log(formatTable(results));
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `${new Date().toISOString().slice(0, 10)}-${os.hostname()}.json`);
writeFileSync(file, JSON.stringify({ machine: machine(), native: info, threads, quick, results, precision, quality, lambdaGates, sim, simReal, dfcl, cluster: cluster && { overheadMs: cluster.overheadMs, solve: cluster.solve } }, null, 2));
const md = file.replace(/\.json$/, '.md');
writeFileSync(md, `# saco bench, ${new Date().toISOString()}\n\nmachine: ${machine()}; CUDA ${info.cudaBuilt ? 'built' : 'not built'}, ${info.cudaDevices} GPU(s); native threads ${threads}\n\n${formatTable(results)}\n${simReal ? `\n## Issue 13 on the RCTs (sim-real)\n\n${simReal.map(simRealTables).join('\n\n')}\n` : ''}`);
console.log(`wrote ${file} and ${md}`);
