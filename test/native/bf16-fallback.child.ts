/**
 * Child of bf16.test.ts, run with SACO_AMX=0 (the bf16 products without AMX's tiles): prints,
 * as JSON, whether the tiles were used, one product and a bf16 model's logits on fixed inputs,
 * for the parent to compare with its own (AMX where the machine has it).
 */
import { loadNativeModel, nativeBf16Hardware, nativeForward } from '../../src/native/index.js';
import { nativeBf16Matmul } from '../../src/native/testing.js';
import { bf16Fixture } from './bf16-fixture.js';

const f = bf16Fixture();
const product = nativeBf16Matmul(f.inp, f.w, f.b, f.rows, f.k, f.n).kernel;
const h = loadNativeModel(f.model, { precision: 'bf16' });
const logits = await nativeForward(h, f.batch, 'incremental');
h.unload();
console.log(JSON.stringify({ amx: nativeBf16Hardware(), product: Array.from(product), logits: Array.from(logits) }));
