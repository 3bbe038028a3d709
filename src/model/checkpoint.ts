/**
 * Training checkpoints: everything needed to continue a run exactly (weights, AdamW
 * moments, the best weights so far, counters, history). One binary file, written to a
 * temporary name and renamed, so an interrupted write never replaces a good checkpoint.
 *
 * Layout: "SACOCKP1" | u32 header bytes | header JSON | pad to 4 | float32 blocks.
 */
import { readFileSync } from 'node:fs';
import { SacoError } from '../errors.js';
import { writeFileAtomic } from '../data/atomic.js';
import type { Params } from './params.js';
import type { OptimizerState } from './types.js';

const MAGIC = 'SACOCKP1';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  samplesPerSecond: number;
  seconds: number;
}

export interface CheckpointState {
  /** What must match for a resume to be allowed (config, data, seed, batch size...). */
  identity: Record<string, unknown>;
  /** Epochs completed. */
  epoch: number;
  step: number;
  bestValLoss: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  history: EpochRecord[];
  /** Anything else the trainer wants back (e.g. normalisation). */
  extra: Record<string, unknown>;
}

export interface Checkpoint {
  state: CheckpointState;
  params: Params;
  best: Params;
  optimizer: OptimizerState;
}

export class CheckpointError extends SacoError {
  constructor(file: string, detail: string, code = 'CHECKPOINT_INVALID') {
    super(code, `${file}: ${detail}`);
  }
}

export function writeCheckpoint(file: string, ckpt: Checkpoint): void {
  const groups: Array<[string, Params]> = [['param', ckpt.params], ['best', ckpt.best], ['m', ckpt.optimizer.m], ['v', ckpt.optimizer.v]];
  const index: Array<{ group: string; name: string; length: number }> = [];
  for (const [group, params] of groups) for (const [name, data] of params) index.push({ group, name, length: data.length });
  const header = new TextEncoder().encode(JSON.stringify({ state: ckpt.state, index }));
  const headerPadded = Math.ceil((12 + header.length) / 4) * 4;
  const floats = index.reduce((s, e) => s + e.length, 0);
  const buf = new Uint8Array(headerPadded + floats * 4);
  buf.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(buf.buffer).setUint32(8, header.length, true);
  buf.set(header, 12);
  const body = new Float32Array(buf.buffer, headerPadded, floats);
  let offset = 0;
  for (const [, params] of groups) {
    for (const data of params.values()) {
      body.set(data, offset);
      offset += data.length;
    }
  }
  try {
    writeFileAtomic(file, buf);
  } catch (e) {
    throw new CheckpointError(file, `cannot write checkpoint: ${(e as Error).message}`, 'CHECKPOINT_WRITE_FAILED');
  }
}

export function readCheckpoint(file: string): Checkpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new CheckpointError(file, `cannot read: ${(e as Error).message}`, 'CHECKPOINT_MISSING');
  }
  if (buf.length < 12 || buf.subarray(0, 8).toString('latin1') !== MAGIC) throw new CheckpointError(file, 'not a saco checkpoint');
  const headerLength = buf.readUInt32LE(8);
  if (12 + headerLength > buf.length) throw new CheckpointError(file, 'truncated header');
  let header: { state: CheckpointState; index: Array<{ group: string; name: string; length: number }> };
  try {
    header = JSON.parse(buf.subarray(12, 12 + headerLength).toString('utf8'));
  } catch {
    throw new CheckpointError(file, 'corrupt header');
  }
  const headerPadded = Math.ceil((12 + headerLength) / 4) * 4;
  const floats = header.index.reduce((s, e) => s + e.length, 0);
  if (buf.length !== headerPadded + floats * 4) throw new CheckpointError(file, `truncated: ${buf.length} bytes, expected ${headerPadded + floats * 4}`);
  const body = new Float32Array(buf.buffer.slice(buf.byteOffset + headerPadded, buf.byteOffset + buf.length));
  const groups = new Map<string, Params>([['param', new Map()], ['best', new Map()], ['m', new Map()], ['v', new Map()]]);
  let offset = 0;
  for (const e of header.index) {
    groups.get(e.group)?.set(e.name, body.slice(offset, offset + e.length));
    offset += e.length;
  }
  return {
    state: header.state,
    params: groups.get('param') as Params,
    best: groups.get('best') as Params,
    optimizer: { m: groups.get('m') as Params, v: groups.get('v') as Params },
  };
}
