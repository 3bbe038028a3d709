// Piscina worker: one onnxruntime-node session per worker (intra-op threads 1), created
// from the model bytes in workerData on first use. Plain JS so it runs from src and dist.
//
// Every call into onnxruntime's native binding (loading it, creating the session, run) happens
// inside the pool's exit gate (see ExitGate in ort.ts): onnxruntime-node aborts the whole
// process ("terminate called after throwing an instance of 'Napi::Error'") when this worker is
// terminated while one of those calls runs, because the binding's error path cannot throw
// into an environment that is being torn down. The main thread closes the gate and waits for
// it to empty before the worker is terminated (pool.destroy(), process exit), and no native
// call starts once it is closed.
import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const gate = new Int32Array(workerData.gate);
const CLOSED = 0;
const IN_NATIVE = 1;

/** Enters the gate, or throws when the pool is shutting down (no native call may start). */
function enter() {
  Atomics.add(gate, IN_NATIVE, 1); // announce first, then look: the main thread does the opposite
  if (Atomics.load(gate, CLOSED) !== 0) {
    leave();
    throw new Error('the inference pool is shutting down');
  }
}

function leave() {
  Atomics.sub(gate, IN_NATIVE, 1);
  Atomics.notify(gate, IN_NATIVE);
}

let ort;
let session;

async function getSession() {
  // loaded here, inside the gate, not by a static import: loading the binding is a native call too
  ort ??= require('onnxruntime-node');
  session ??= await ort.InferenceSession.create(workerData.modelBytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  return session;
}

/** task: { feeds: { name: { data: Float32Array, dims: number[] } } } -> Float32Array logits */
export default async function run(task) {
  if (task && task.kind === 'crash') throw new Error('worker asked to fail (test hook)');
  enter();
  try {
    const s = await getSession();
    const feeds = {};
    for (const [name, t] of Object.entries(task.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
    const out = await s.run(feeds);
    return out.logits.data;
  } finally {
    leave();
  }
}
