import { existsSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempPathFor } from '../../src/data/atomic.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { selectBackend } from '../../src/model/backend.js';
import { readCheckpoint } from '../../src/model/checkpoint.js';
import { trainCodt, type TrainOptions } from '../../src/model/train.js';
import { generateSy } from '../../src/native/index.js';
import { maxAbsDiff } from '../helpers/model.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let traj: Trajectories;

beforeAll(async () => {
  await selectBackend('auto');
  traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 400, rounds: 4, seed: 2 })));
});

const OPTS: TrainOptions = { dModel: 16, layers: 1, heads: 2, batchSize: 32, epochs: 3, patience: 5, dropout: 0.1, lr: 1e-3, seed: 4 };

describe('checkpoints', () => {
  it('interrupting mid-epoch and resuming gives the weights of an uninterrupted run', async () => {
    const whole = await trainCodt(traj, OPTS);
    const ckpt = tmp.file('run.ckpt');
    // 12 batches per epoch: stop inside epoch 2, then again inside epoch 3
    const first = await trainCodt(traj, { ...OPTS, checkpoint: ckpt, stopAfterSteps: 17 });
    expect(first.interrupted).toBe(true);
    expect(readCheckpoint(ckpt).state.step).toBe(17);
    const second = await trainCodt(traj, { ...OPTS, checkpoint: ckpt, resume: true, stopAfterSteps: 10 });
    expect(second.interrupted).toBe(true);
    const done = await trainCodt(traj, { ...OPTS, checkpoint: ckpt, resume: true });
    expect(done.interrupted).toBe(false);
    expect(done.history.map((h) => h.valLoss)).toEqual(whole.history.map((h) => h.valLoss));
    for (const [name, data] of whole.model.params) expect(maxAbsDiff(done.model.params.get(name) as Float32Array, data), name).toBeLessThan(1e-6);
  });

  it('refuses a checkpoint from another config, and a file that is not one', async () => {
    const ckpt = tmp.file('other.ckpt');
    await trainCodt(traj, { ...OPTS, epochs: 1, checkpoint: ckpt });
    await expect(trainCodt(traj, { ...OPTS, epochs: 1, dModel: 8, checkpoint: ckpt, resume: true })).rejects.toMatchObject({ code: 'CHECKPOINT_MISMATCH' });
    await expect(trainCodt(traj, { ...OPTS, epochs: 1, seed: 99, checkpoint: ckpt, resume: true })).rejects.toMatchObject({ code: 'CHECKPOINT_MISMATCH' });
    const junk = tmp.file('junk.ckpt', 'hello');
    await expect(trainCodt(traj, { ...OPTS, epochs: 1, checkpoint: junk, resume: true })).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID' });
  });

  it('a failed checkpoint write leaves no partial file behind', async () => {
    const dir = tmp.file('ckpt-is-a-dir');
    mkdirSync(dir);
    await expect(trainCodt(traj, { ...OPTS, epochs: 1, checkpoint: dir })).rejects.toMatchObject({ code: 'CHECKPOINT_WRITE_FAILED' });
    expect(existsSync(tempPathFor(dir))).toBe(false);
  });
});
