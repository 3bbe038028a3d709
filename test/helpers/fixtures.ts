import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A fresh temporary folder removed by the returned cleanup. */
export function tempDir(): { dir: string; file: (name: string, content?: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'saco-test-'));
  return {
    dir,
    file: (name, content) => {
      const p = path.join(dir, name);
      if (content !== undefined) writeFileSync(p, content);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Exact equality of two numeric arrays, NaN-safe and -0-aware; returns the first mismatch. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): string | null {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `index ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

/** Where the datasets of ../shared/data live (not committed with the project). */
export const SHARED_DATA = process.env.SACO_SHARED_DATA ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'data');
