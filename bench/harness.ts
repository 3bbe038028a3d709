/**
 * Timing harness. Latency scenarios run through benchmark.js (`latency`); long jobs (a full
 * solve, a 1M-row ingest) run a few times in a plain loop (`time`). Both report per-call
 * median / p95 / min.
 */
import os from 'node:os';
import Benchmark from 'benchmark';

export interface Timing {
  name: string;
  runs: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
}

/** The median / p95 / min of per-call samples in ms (any order). */
export function timingOf(name: string, samples: readonly number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { name, runs: sorted.length, medianMs: at(0.5), p95Ms: at(0.95), minMs: sorted[0] };
}

export async function time(name: string, runs: number, body: () => unknown | Promise<unknown>, warmup = 1): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await body();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await body();
    samples.push(performance.now() - t0);
  }
  return timingOf(name, samples);
}

/**
 * A latency scenario through benchmark.js (its calibrated cycles give ops/s and the relative
 * margin of error), with each call also timed on its own for the median and p95.
 */
export async function latency(name: string, body: () => unknown | Promise<unknown>, maxTimeSeconds = 3): Promise<Timing & { hz: number; rme: number }> {
  const samples: number[] = [];
  const bench = await new Promise<Benchmark>((resolve, reject) => {
    const b: Benchmark = new Benchmark(name, {
      defer: true,
      maxTime: maxTimeSeconds,
      minSamples: 5,
      fn: (deferred: { resolve(): void }) => {
        const t0 = performance.now();
        Promise.resolve(body()).then(() => {
          samples.push(performance.now() - t0);
          deferred.resolve();
        }, reject);
      },
      onComplete: () => resolve(b),
      onError: (e: unknown) => reject(e),
    });
    b.run({ async: true });
  });
  return { ...timingOf(name, samples), hz: bench.hz, rme: bench.stats.rme };
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'} x${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${os.hostname()}`;
}

export function formatTable(rows: Timing[]): string {
  const lines = ['| scenario | runs | median ms | p95 ms | min ms | ops/s |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  const ms = (v: number) => (v < 1 ? v.toFixed(3) : v.toFixed(2));
  // benchmark.js' calibrated rate where it ran the scenario, else 1 / median
  const ops = (r: Timing & { hz?: number; rme?: number }) => (r.hz !== undefined ? `${r.hz.toFixed(0)} ±${(r.rme ?? 0).toFixed(1)}%` : (1000 / r.medianMs).toFixed(r.medianMs > 100 ? 2 : 0));
  for (const r of rows) lines.push(`| ${r.name} | ${r.runs} | ${ms(r.medianMs)} | ${ms(r.p95Ms)} | ${ms(r.minMs)} | ${ops(r)} |`);
  return lines.join('\n');
}
