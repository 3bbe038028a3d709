// Piscina worker: one onnxruntime-node session per worker (intra-op threads 1), created
// from the model bytes in workerData on first use. Plain JS so it runs from src and dist.
import * as ort from 'onnxruntime-node';
import { workerData } from 'node:worker_threads';

let session;

async function getSession() {
  if (!session) {
    session = await ort.InferenceSession.create(workerData.modelBytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  }
  return session;
}

/** task: { feeds: { name: { data: Float32Array, dims: number[] } } } -> Float32Array logits */
export default async function run(task) {
  if (task && task.kind === 'crash') throw new Error('worker asked to fail (test hook)');
  const s = await getSession();
  const feeds = {};
  for (const [name, t] of Object.entries(task.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
  const out = await s.run(feeds);
  return out.logits.data;
}
