/**
 * Ctrl-C and SIGTERM. By default an interrupt removes what the command registered for
 * cleanup (half-written temporary files), clears the progress line and ends the process by
 * that signal (status 130 for SIGINT, 143 for SIGTERM in a shell), as shells expect. A command that can stop cleanly (train: finish the
 * step, write the checkpoint) takes over SIGINT while it runs and ends with `Interrupted`.
 */
import { clearProgressLines } from './ui.js';

/** Thrown by a command that stopped early because of an interrupt; main() exits with its code, printing nothing more. */
export class Interrupted extends Error {
  constructor(readonly exitCode = 130) {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

const cleanups = new Set<() => void>();
let sigintOverride: (() => void) | undefined;
let installed = false;

/** Registers work to undo if the process is interrupted; returns the unregister function. */
export function onInterruptCleanup(fn: () => void): () => void {
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

/** While `handler` is installed, SIGINT calls it instead of exiting; returns the function that restores the default. */
export function takeOverSigint(handler: () => void): () => void {
  sigintOverride = handler;
  return () => {
    if (sigintOverride === handler) sigintOverride = undefined;
  };
}

/** Exits now with `code` after the registered cleanups (a second Ctrl-C, or the default). */
export function exitInterrupted(signal: 'SIGINT' | 'SIGTERM', code: number): never {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // best effort: the process is going away
    }
  }
  clearProgressLines();
  process.stderr.write(`saco: interrupted (${signal})\n`);
  // Die by the signal itself (shells report 128 + n: 130, 143), as the convention asks: a plain
  // exit() would first wait for work still running on native threads (a DuckDB COPY, a rollout).
  process.exitCode = code;
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  process.exit(code);
}

/** Installs the SIGINT and SIGTERM handlers (once per process). */
export function installInterruptHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', () => {
    if (sigintOverride) sigintOverride();
    else exitInterrupted('SIGINT', 130);
  });
  process.on('SIGTERM', () => exitInterrupted('SIGTERM', 143));
}
