/**
 * Child of exit.test.ts. Ends the process with code 3 while onnxruntime work is in flight,
 * `delay` ms after the anchor:
 *   start   — ORT solves back to back (each starts and destroys its own pool); the timer
 *             starts with the first, while the pool's workers load onnxruntime;
 *   search  — as start, timed from the first λ probe's progress event (workers running the model);
 *   sigterm — as search, through a SIGTERM handler that exits, as a service has;
 *   destroy — `pool.destroy()` while a pool runs a large batch, then process.exit(3).
 * Usage: node --import tsx exit.child.ts <model.onnx> <start|search|sigterm|destroy> <delay ms> [users]
 */
import { OrtPool } from '../../src/infer/ort.js';
import { actionWidth } from '../../src/model/config.js';
import { readOnnx } from '../../src/model/onnx.js';
import { solve } from '../../src/solve/index.js';

const [modelPath, anchor, delayArg, usersArg = '300'] = process.argv.slice(2);
const delay = Number(delayArg);
const users = Number(usersArg);
if (!modelPath || !['start', 'search', 'sigterm', 'destroy'].includes(anchor) || !Number.isFinite(delay) || !Number.isInteger(users)) {
  process.stderr.write('usage: exit.child.ts <model.onnx> <start|search|sigterm|destroy> <delay ms> [users]\n');
  process.exit(2);
}

if (anchor === 'destroy') {
  const model = readOnnx(modelPath);
  const pool = await OrtPool.create(model, { workers: 2, allowOversubscribe: true });
  const c = model.meta.config;
  const B = users * 10;
  const running = pool.logits({
    batch: B, rounds: 1, states: new Float32Array(B * c.stateDim), rtg: new Float32Array(B), ctg: new Float32Array(B),
    actionsOneHot: new Float32Array(B * actionWidth(c)), lambda: new Float32Array(B),
  });
  running.catch(() => undefined); // a call cut short by destroy() may reject; it must not abort
  await new Promise((resolve) => setTimeout(resolve, delay));
  await pool.destroy();
  await running.catch(() => undefined);
  process.exit(3);
}

if (anchor === 'sigterm') process.on('SIGTERM', () => process.exit(3));
let armed = false;
const arm = (): void => {
  if (armed) return;
  armed = true;
  setTimeout(() => (anchor === 'sigterm' ? process.kill(process.pid, 'SIGTERM') : process.exit(3)), delay);
};

if (anchor === 'start') arm();
for (;;) {
  await solve({
    model: modelPath, engine: 'ort', users, budget: '0.5x',
    onProgress: (p) => {
      if (p.phase === 'search') arm();
    },
  });
}
