/**
 * CODT inference with onnxruntime-node on the exported .onnx file: one session in this
 * thread (`OrtSession`), or a Piscina pool of workers with one session each (`OrtPool`,
 * users sharded across workers; the paper ran 16 parallel models). Both take the inputs the
 * native engine takes, so their actions can be compared one for one.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type * as Ort from 'onnxruntime-node';
import type { Piscina } from 'piscina';
import { ArgumentError, InferenceError } from '../errors.js';
import type { CodtModel, ModelMeta } from '../model/artifact.js';
import { actionWidth, emptyForwardInputs } from '../model/config.js';
import type { ForwardInputs } from '../model/types.js';
import { encodeOnnx, onnxInputNames } from '../model/onnx.js';

export { InferenceError } from '../errors.js';

// onnxruntime and Piscina load on first use: importing saco must stay cheap.
let ortModule: Promise<typeof Ort> | undefined;
const loadOrt = (): Promise<typeof Ort> => (ortModule ??= import('onnxruntime-node'));

type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

function checkInputs(meta: ModelMeta, inputs: ForwardInputs): void {
  const c = meta.config;
  const { batch: B, rounds: T } = inputs;
  if (!Number.isInteger(B) || B < 1) throw new ArgumentError('inputs.batch', `must be an integer >= 1, got ${B}`);
  if (!Number.isInteger(T) || T < 1 || T > c.context) throw new ArgumentError('inputs.rounds', `must be in [1, ${c.context}], got ${T}`);
  const sizes: Array<[keyof ForwardInputs, number]> = [['states', B * T * c.stateDim], ['rtg', B * T], ['ctg', B * T], ['actionsOneHot', B * T * actionWidth(c)], ['lambda', B]];
  for (const [name, n] of sizes) {
    const a = inputs[name] as Float32Array;
    if (!(a instanceof Float32Array) || a.length !== n) throw new ArgumentError(`inputs.${String(name)}`, `must be a Float32Array of length ${n}`);
  }
}

/** The graph's feeds for users [from, to) of the inputs. */
function feedsFor(meta: ModelMeta, inputs: ForwardInputs, from = 0, to = inputs.batch): Feeds {
  const T = inputs.rounds;
  const d = meta.config.stateDim;
  const K = actionWidth(meta.config);
  const n = to - from;
  const all: Feeds = {
    states: { data: inputs.states.slice(from * T * d, to * T * d), dims: [n, T, d] },
    rtg: { data: inputs.rtg.slice(from * T, to * T), dims: [n, T] },
    ctg: { data: inputs.ctg.slice(from * T, to * T), dims: [n, T] },
    actions_onehot: { data: inputs.actionsOneHot.slice(from * T * K, to * T * K), dims: [n, T, K] },
    lambda: { data: inputs.lambda.slice(from, to), dims: [n] },
  };
  return Object.fromEntries(onnxInputNames(meta).map((name) => [name, all[name]]));
}

/**
 * Keeps a pool's workers from being terminated while one of them is inside onnxruntime's
 * native code. onnxruntime-node (1.30) is built without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS:
 * when a worker's environment starts tearing down (worker.terminate(), which Piscina's
 * destroy() and process exit both do) while the worker is loading the binding, creating a
 * session or running one, the binding's next Node-API call fails, its error cannot be thrown
 * into the dying environment, and the C++ exception ends in std::terminate: the whole process
 * aborts (exit 134) instead of exiting with the code asked for. A synchronous native call
 * cannot be interrupted, so the only safe order is: stop new calls, wait for the running ones,
 * then terminate. The gate is a SharedArrayBuffer shared with the workers (worker.mjs):
 * [CLOSED] is set by this thread, [IN_NATIVE] counts the tasks inside native code.
 */
const CLOSED = 0;
const IN_NATIVE = 1;
/** The longest process exit waits for in-flight inference (Node would wait as long joining the workers). */
const EXIT_WAIT_MS = 60_000;

/** Atomics.waitAsync (Node >= 16; typed only from lib es2024 on). */
type AtomicsWaitAsync = { waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> } };

class ExitGate {
  readonly buffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  private readonly cells = new Int32Array(this.buffer);

  close(): void {
    Atomics.store(this.cells, CLOSED, 1);
  }

  /** Blocks this thread until no worker is in native code (or `ms` passed); true when none is. */
  drainSync(ms: number): boolean {
    const deadline = Date.now() + ms;
    for (let n = Atomics.load(this.cells, IN_NATIVE); n !== 0; n = Atomics.load(this.cells, IN_NATIVE)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.cells, IN_NATIVE, n, left);
    }
    return true;
  }

  /** Resolves once no worker is in native code, without blocking this thread. */
  async drain(): Promise<void> {
    for (let n = Atomics.load(this.cells, IN_NATIVE); n !== 0; n = Atomics.load(this.cells, IN_NATIVE)) {
      const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.cells, IN_NATIVE, n);
      if (w.async) await w.value;
    }
  }
}

/** Gates of the pools not yet destroyed in this thread. */
const liveGates = new Set<ExitGate>();
let exitHookInstalled = false;

/**
 * On exit (process.exit(), the end of the event loop, an uncaught exception), before Node
 * terminates the workers: close every live pool's gate, then wait for in-flight calls.
 * 'exit' listeners run synchronously, before the workers are stopped; this one goes first.
 */
function closeGatesOnExit(): void {
  for (const gate of liveGates) gate.close();
  const deadline = Date.now() + EXIT_WAIT_MS;
  for (const gate of liveGates) {
    if (!gate.drainSync(Math.max(0, deadline - Date.now()))) {
      process.stderr.write(`saco: an onnxruntime call was still running ${EXIT_WAIT_MS / 1000} s after exit began; exiting anyway\n`);
      return;
    }
  }
}

function trackGate(gate: ExitGate): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.prependListener('exit', closeGatesOnExit);
  }
  liveGates.add(gate);
}

/**
 * One onnxruntime session in this thread. Used in a worker_thread of your own, let its
 * `logits()` calls settle before that worker is ended from outside (worker.terminate(), or the
 * main thread exiting): onnxruntime-node aborts the process when a thread's environment is torn
 * down during one of its calls (see ExitGate; OrtPool does this for its own workers).
 */
export class OrtSession {
  private constructor(readonly meta: ModelMeta, private readonly session: Ort.InferenceSession, private readonly ort: typeof Ort) {}

  static async create(model: CodtModel, options: { intraOpThreads?: number } = {}): Promise<OrtSession> {
    const ort = await loadOrt();
    try {
      const session = await ort.InferenceSession.create(encodeOnnx(model), { intraOpNumThreads: options.intraOpThreads ?? 1, interOpNumThreads: 1 });
      return new OrtSession(model.meta, session, ort);
    } catch (e) {
      throw new InferenceError(`onnxruntime could not load the model: ${(e as Error).message}`, e);
    }
  }

  /** Logits [B, T, sum K]. */
  async logits(inputs: ForwardInputs): Promise<Float32Array> {
    checkInputs(this.meta, inputs);
    const feeds = Object.fromEntries(Object.entries(feedsFor(this.meta, inputs)).map(([k, t]) => [k, new this.ort.Tensor('float32', t.data, t.dims)]));
    const out = await this.session.run(feeds);
    return out.logits.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export interface OrtPoolOptions {
  /** Workers (default: the number of cores; asked for more, still capped at the cores unless `allowOversubscribe`). */
  workers?: number;
  allowOversubscribe?: boolean;
}

/**
 * A Piscina pool of onnxruntime sessions (one per worker, users sharded); always
 * `await pool.destroy()` when done. onnxruntime and Piscina load when the first pool starts.
 * Exiting the process while the pool works (process.exit() in a SIGTERM handler, say) is safe:
 * exit first waits for the inference calls already running (never more than they take), so
 * the process ends with the code asked for.
 *
 * @example
 * const pool = await OrtPool.create(readOnnx('codt.onnx'), { workers: 4 });
 * try { await solve({ model, engine: 'ort', ort: pool, users: 1000, budget: '0.5x' }); } finally { await pool.destroy(); }
 */
export class OrtPool {
  private destroyed = false;
  /** Worker tasks sent and not yet settled. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private constructor(readonly meta: ModelMeta, private readonly pool: Piscina, readonly workers: number, private readonly gate: ExitGate) {}

  /**
   * Starts a pool and loads every worker's session, so a model that will not load fails here.
   * @throws {ArgumentError} for a `workers` count outside [1, 256].
   * @throws {InferenceError} (code `INFERENCE_FAILED`) when a session or worker cannot start.
   */
  static async create(model: CodtModel, options: OrtPoolOptions = {}): Promise<OrtPool> {
    return OrtPool.fromBytes(model.meta, encodeOnnx(model), options);
  }

  /** A pool over an .onnx file's bytes (as read from disk) described by `meta`. */
  static async fromBytes(meta: ModelMeta, modelBytes: Uint8Array, options: OrtPoolOptions = {}): Promise<OrtPool> {
    const cores = os.availableParallelism?.() ?? os.cpus().length;
    const requested = options.workers ?? cores;
    if (!Number.isInteger(requested) || requested < 1 || requested > 256) throw new ArgumentError('workers', `must be an integer in [1, 256], got ${requested}`);
    const workers = options.allowOversubscribe ? requested : Math.min(requested, cores);
    const { Piscina: PiscinaPool } = await import('piscina');
    const gate = new ExitGate();
    const pool = new PiscinaPool({
      filename: fileURLToPath(new URL('./worker.mjs', import.meta.url)),
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: 60_000,
      workerData: { modelBytes, gate: gate.buffer },
    });
    trackGate(gate);
    const p = new OrtPool(meta, pool, workers, gate);
    try {
      // load every session now, so a model that will not load fails here, not mid-campaign
      const probe = emptyForwardInputs(meta.config, workers, 1);
      await p.logits(probe);
    } catch (e) {
      await p.destroy();
      throw e instanceof InferenceError ? e : new InferenceError(`the pool could not start: ${(e as Error).message}`, e);
    }
    return p;
  }

  /** Logits [B, T, sum K]; users sharded across the workers. */
  async logits(inputs: ForwardInputs): Promise<Float32Array> {
    if (this.destroyed) throw new InferenceError('the pool was destroyed');
    checkInputs(this.meta, inputs);
    const K = actionWidth(this.meta.config);
    const T = inputs.rounds;
    const shards = Math.min(this.workers, inputs.batch);
    const per = Math.ceil(inputs.batch / shards);
    const parts = await Promise.all(
      Array.from({ length: shards }, (_, s) => {
        const from = s * per;
        const to = Math.min(inputs.batch, from + per);
        return this.track(this.pool.run({ feeds: feedsFor(this.meta, inputs, from, to) })).then((r: Float32Array) => ({ from, r }));
      }),
    ).catch((e: unknown) => {
      throw new InferenceError(`an inference worker failed: ${(e as Error).message}`, e);
    });
    const out = new Float32Array(inputs.batch * T * K);
    for (const { from, r } of parts) out.set(r, from * T * K);
    return out;
  }

  private track<T>(task: Promise<T>): Promise<T> {
    this.inFlight.add(task);
    const untrack = (): void => void this.inFlight.delete(task);
    task.then(untrack, untrack);
    return task;
  }

  /** Test hook: makes one worker task throw. */
  async crashOne(): Promise<void> {
    await this.track(this.pool.run({ kind: 'crash' })).catch((e: unknown) => {
      throw new InferenceError(`an inference worker failed: ${(e as Error).message}`, e);
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /**
   * Stops the workers. Tasks not yet started fail (their `logits()` call rejects with an
   * InferenceError); tasks running finish and deliver their results first: a worker
   * terminated inside onnxruntime would abort the process (see ExitGate).
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.gate.close();
    try {
      await Promise.allSettled([...this.inFlight]);
      await this.gate.drain();
      await this.pool.destroy();
    } finally {
      liveGates.delete(this.gate);
    }
  }
}
