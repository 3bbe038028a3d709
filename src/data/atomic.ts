/**
 * Writes that never leave a half-written file at the target: write a temporary sibling,
 * then rename it over the target (atomic on one filesystem).
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The temporary sibling a write of `file` goes through. */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
}

/** Removes a file if it is there; never throws (used on failure paths). */
export function removeQuietly(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // the folder itself may be gone or not a folder: nothing was left there then
  }
}

/** Writes through a temporary file and a rename; on failure removes the temporary file and rethrows. */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const tmp = tempPathFor(file);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    removeQuietly(tmp);
    throw e;
  }
}
