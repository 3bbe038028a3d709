/**
 * Timing harness: repeated runs of one call, median / p95 / min of the per-call times
 * (benchmark.js reports means per cycle of many calls; latency wants per-call percentiles).
 */
import os from 'node:os';

export interface Timing {
  name: string;
  runs: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
}

export async function time(name: string, runs: number, body: () => unknown | Promise<unknown>, warmup = 1): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await body();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await body();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { name, runs, medianMs: at(0.5), p95Ms: at(0.95), minMs: samples[0] };
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'} x${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${os.hostname()}`;
}

export function formatTable(rows: Timing[]): string {
  const lines = ['| scenario | runs | median ms | p95 ms | min ms | ops/s (at the median) |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  const ms = (v: number) => (v < 1 ? v.toFixed(3) : v.toFixed(2));
  for (const r of rows) lines.push(`| ${r.name} | ${r.runs} | ${ms(r.medianMs)} | ${ms(r.p95Ms)} | ${ms(r.minMs)} | ${(1000 / r.medianMs).toFixed(r.medianMs > 100 ? 2 : 0)} |`);
  return lines.join('\n');
}
