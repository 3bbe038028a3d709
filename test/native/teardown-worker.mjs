// Worker side of worker-teardown.test.ts: starts a long native call, and exits mid-call
// when asked to; the main thread may terminate it instead.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const b = createRequire(import.meta.url)(workerData.binary);
const env = { users: 1, rounds: 10, features: 8, seed: 1, actionDims: [{ kind: 'cash', values: [0, 2, 5, 10] }] };
// sized to run ~1-3 s here: still running when the worker ends, short for the suite
const users = (n) => Uint32Array.from({ length: n }, (_, i) => i);
if (workerData.exit) setTimeout(() => process.exit(0), 150);
parentPort.postMessage('started');
if (workerData.call === 'synthSY') await b.synthSY({ ...env, users: 600000 });
else if (workerData.call === 'rollout') await b.rollout({ env, rounds: 10, budget: 1e6, policy: 'oracle', lambda: 1, userIds: users(100000) });
else await b.searchLambda({ env, rounds: 10, policy: 'oracle', lambda: 0, userIds: users(15000) }, { budget: 1e5, lambdaMax: 10 }, () => {});
parentPort.postMessage('finished');
