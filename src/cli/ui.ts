/**
 * What a command shows, and where: the result on stdout (a human summary, or ONE JSON
 * document with --json), notices and progress on stderr so that stdout stays parseable.
 * Progress is a single updating line when stderr is a terminal, and occasional plain lines
 * otherwise (none for commands that finish within a second). SACO_PROGRESS=tty|lines|off
 * overrides the choice ('lines': a line per phase from the start, for logs and tests).
 */
import { performance } from 'node:perf_hooks';

/** Every live UI, so the error path and the interrupt handler can clear a progress line. */
const live = new Set<Ui>();

/** Clears the progress line of every live UI (before an error line or on an interrupt). */
export function clearProgressLines(): void {
  for (const ui of live) ui.clear();
}

export interface UiOptions {
  /** Print the result as one JSON document; human lines go to stderr. */
  json?: boolean;
  /** No progress. */
  quiet?: boolean;
  /** Treat stderr as a terminal or not (default: ask it). */
  tty?: boolean;
}

const TTY_REDRAW_MS = 100;
const PLAIN_FIRST_MS = 1000;
const PLAIN_EVERY_MS = 5000;
const TICK_MS = 250;

export class Ui {
  readonly json: boolean;
  private readonly quiet: boolean;
  private readonly tty: boolean;
  private readonly start = performance.now();
  private phaseName = '';
  private detail = '';
  private lineShown = false;
  private lastDraw = -Infinity;
  private printedPhase = '';
  private lastPrint = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly firstLineMs: number;

  constructor(options: UiOptions = {}) {
    // SACO_PROGRESS: 'tty' (the updating line), 'lines' (a plain line per phase from the start), 'off'
    const mode = process.env.SACO_PROGRESS;
    this.json = !!options.json;
    this.quiet = !!options.quiet || mode === 'off';
    this.tty = options.tty ?? (mode === 'tty' ? true : mode === 'lines' ? false : !!process.stderr.isTTY);
    this.firstLineMs = mode === 'lines' ? 0 : PLAIN_FIRST_MS;
    live.add(this);
  }

  /** A human line: stdout normally, stderr under --json. */
  info(line: string): void {
    this.clear();
    if (this.json) process.stderr.write(`${line}\n`);
    else process.stdout.write(`${line}\n`);
  }

  /** A notice (a warning, a skipped-rows count): always stderr. */
  notice(line: string): void {
    this.clear();
    process.stderr.write(`${line}\n`);
  }

  /** The command's result: `doc` as JSON under --json, else the human lines. */
  result(doc: unknown, human: () => string[] | string): void {
    this.clear();
    if (this.json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    else {
      const h = human();
      for (const line of Array.isArray(h) ? h : [h]) process.stdout.write(`${line}\n`);
    }
  }

  /** Starts a phase of a long command ("reading x.csv"); the elapsed time keeps ticking while it runs. */
  phase(name: string, detail = ''): void {
    if (this.quiet) return;
    this.phaseName = name;
    this.detail = detail;
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(false), TICK_MS);
      this.timer.unref();
    }
    this.draw(true);
  }

  /** Updates the detail of the current phase ("batch 3/40 loss 1.23"). */
  update(detail: string): void {
    if (this.quiet) return;
    this.detail = detail;
    this.draw(false);
  }

  /** Removes the progress line (the next output starts on a clean line). */
  clear(): void {
    if (this.lineShown) {
      process.stderr.write('\r\x1b[K');
      this.lineShown = false;
      this.lastDraw = -Infinity;
    }
  }

  /** Ends progress: stops the ticker and clears the line. */
  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.phaseName = '';
    this.clear();
    live.delete(this);
  }

  private text(now: number): string {
    const secs = ((now - this.start) / 1000).toFixed(1);
    return `[${secs}s] ${this.phaseName}${this.detail ? `: ${this.detail}` : ''}`;
  }

  private draw(phaseChanged: boolean): void {
    if (!this.phaseName) return;
    const now = performance.now();
    if (this.tty) {
      if (!phaseChanged && now - this.lastDraw < TTY_REDRAW_MS) return;
      const cols = process.stderr.columns || 100;
      process.stderr.write(`\r\x1b[K${this.text(now).slice(0, Math.max(cols - 1, 20))}`);
      this.lineShown = true;
      this.lastDraw = now;
      return;
    }
    if (now - this.start < this.firstLineMs) return;
    if (this.printedPhase === this.phaseName && now - this.lastPrint < PLAIN_EVERY_MS) return;
    process.stderr.write(`${this.text(now)}\n`);
    this.printedPhase = this.phaseName;
    this.lastPrint = now;
  }
}

/** Seconds as "42 s", "3.5 min" or "1.2 h". */
export const duration = (s: number): string => (s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

/** A text progress bar, e.g. [#####-----]. */
export function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}
