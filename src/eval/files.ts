/** Small file helpers of the experiment runner: atomic JSON writes, stable hashes of keys. */
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '../data/atomic.js';

/** Writes `value` as pretty JSON through a temporary file and a rename (never half a file). */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`));
}

/** JSON with object keys sorted, so equal keys hash equal whatever order they were built in. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

/** A short hex digest of a key (cache folders and result files are named by it). */
export function keyHash(value: unknown, length = 12): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, length);
}
