import { existsSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempPathFor } from '../../src/data/atomic.js';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { selectBackend } from '../../src/model/backend.js';
import { readCheckpoint } from '../../src/model/checkpoint.js';
import { TrainingDivergedError, type TrainOptions } from '../../src/model/train.js';
import { generateSy } from '../../src/native/index.js';
import { NativeEngine, trainCodt } from '../../src/native/train-engine.js';
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
  for (const trainer of ['native', 'tfjs'] as const) {
    it(`interrupting mid-epoch and resuming gives the weights of an uninterrupted run (${trainer}, dropout on)`, async () => {
      const opts = { ...OPTS, trainer };
      const whole = await trainCodt(traj, opts);
      expect(whole.trainer.trainer).toBe(trainer);
      const ckpt = tmp.file(`run-${trainer}.ckpt`);
      // 12 batches per epoch: stop inside epoch 2, then again inside epoch 3
      const first = await trainCodt(traj, { ...opts, checkpoint: ckpt, stopAfterSteps: 17 });
      expect(first.interrupted).toBe(true);
      expect(readCheckpoint(ckpt).state.step).toBe(17);
      const second = await trainCodt(traj, { ...opts, checkpoint: ckpt, resume: true, stopAfterSteps: 10 });
      expect(second.interrupted).toBe(true);
      const done = await trainCodt(traj, { ...opts, checkpoint: ckpt, resume: true });
      expect(done.interrupted).toBe(false);
      expect(done.history.map((h) => h.valLoss)).toEqual(whole.history.map((h) => h.valLoss));
      for (const [name, data] of whole.model.params) expect(maxAbsDiff(done.model.params.get(name) as Float32Array, data), name).toBeLessThan(1e-6);
    });
  }

  it('epochs smaller than the users resume exactly, and a checkpoint of another epoch size is refused', async () => {
    // 360 fit users in epochs of 100 (4 batches of 32): the fourth epoch straddles the first two passes
    const opts = { ...OPTS, trainer: 'native' as const, epochSize: 100, epochs: 5 };
    const whole = await trainCodt(traj, opts);
    expect(whole.history).toHaveLength(5);
    const ckpt = tmp.file('sliced.ckpt');
    const first = await trainCodt(traj, { ...opts, checkpoint: ckpt, stopAfterSteps: 14 });
    expect(first.interrupted).toBe(true);
    expect(readCheckpoint(ckpt).state.epoch).toBe(3);
    const done = await trainCodt(traj, { ...opts, checkpoint: ckpt, resume: true });
    expect(done.history.map((h) => h.valLoss)).toEqual(whole.history.map((h) => h.valLoss));
    for (const [name, data] of whole.model.params) expect(maxAbsDiff(done.model.params.get(name) as Float32Array, data), name).toBeLessThan(1e-6);
    await expect(trainCodt(traj, { ...opts, epochSize: 50, checkpoint: ckpt, resume: true })).rejects.toThrow(/epochSize: checkpoint 100, this run 50/);
  });

  it('a checkpoint of one trainer is refused by the other, naming what differs', async () => {
    const ckpt = tmp.file('tfjs-run.ckpt');
    await trainCodt(traj, { ...OPTS, epochs: 1, trainer: 'tfjs', checkpoint: ckpt });
    await expect(trainCodt(traj, { ...OPTS, epochs: 1, trainer: 'native', checkpoint: ckpt, resume: true })).rejects.toThrow(/trainer: checkpoint "tfjs", this run "native"/);
  });

  it('a loss that stops being finite ends training with a clear error and keeps the last good checkpoint', async () => {
    const ckpt = tmp.file('diverge.ckpt');
    let steps = 0;
    const failing = (spec: Parameters<NonNullable<TrainOptions['createEngine']>>[0]) => {
      const engine = new NativeEngine(spec.config, spec.norm, spec.params, spec.adam);
      const step = engine.step.bind(engine);
      // 12 steps per epoch: the 15th step (epoch 2) "diverges"
      engine.step = async (...args) => (++steps === 15 ? NaN : step(...args));
      return engine;
    };
    const run = trainCodt(traj, { ...OPTS, checkpoint: ckpt, createEngine: failing });
    await expect(run).rejects.toBeInstanceOf(TrainingDivergedError);
    await expect(run).rejects.toThrow('the loss or its gradient is not finite (loss NaN) at epoch 2, step 15');
    await expect(run).rejects.toThrow(`the last good checkpoint is ${ckpt} (epoch 1)`);
    const kept = readCheckpoint(ckpt);
    expect(kept.state.epoch).toBe(1);
    expect(kept.state.step).toBe(12);
    for (const [name, data] of kept.params) expect(data.every(Number.isFinite), name).toBe(true);
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
