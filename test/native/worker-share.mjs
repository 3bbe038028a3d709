// Worker side of the pool-sharing test: uses a model id loaded by the main thread.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const binding = require(workerData.binary);
const { logits } = await binding.codtForward(workerData.id, workerData.inputs, 'full');
parentPort.postMessage({ logits, poolSize: binding.modelCount() });
