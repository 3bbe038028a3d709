import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syLogToInteractionLog } from '../../src/data/log.js';
import { SY_BUNDLE_DIMS } from '../../src/data/synth.js';
import { buildTrajectories, type Trajectories } from '../../src/data/trajectories.js';
import { ArgumentError, DataError } from '../../src/errors.js';
import { checkDataMatchesModel, type CodtModel } from '../../src/model/artifact.js';
import { selectBackend } from '../../src/model/backend.js';
import { validateCodtConfig, type CodtConfig } from '../../src/model/config.js';
import { decodeOnnx, encodeOnnx, readOnnx, writeOnnx } from '../../src/model/onnx.js';
import { trainCodtWith } from '../../src/model/train.js';
import { generateSy } from '../../src/native/index.js';
import { trainCodt } from '../../src/native/train-engine.js';
import { trainCodt as trainWithOutcomes } from '../../src/policy/train.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let traj: Trajectories;
let model: CodtModel;

beforeAll(async () => {
  await selectBackend('auto');
  traj = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 200, rounds: 3, seed: 5 })));
  model = (await trainCodt(traj, { dModel: 8, layers: 1, heads: 1, epochs: 1, batchSize: 64 })).model;
});

describe('model and data that do not fit together', () => {
  it('the training data itself is accepted', () => {
    expect(() => checkDataMatchesModel(model.meta, traj)).not.toThrow();
  });

  it('a different feature count is a DataError', async () => {
    const other = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 20, rounds: 3, features: 5 })));
    expect(() => checkDataMatchesModel(model.meta, other)).toThrow(DataError);
    expect(() => checkDataMatchesModel(model.meta, other)).toThrow(/8 state features but the model expects 11|has 8 state features/);
  });

  it('a different action encoding is a DataError naming the column', async () => {
    const other = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 20, rounds: 3, actionDims: [{ name: 'coupon', kind: 'cash', values: [0, 3, 5, 10] }] })));
    expect(() => checkDataMatchesModel(model.meta, other)).toThrow(/action encoding differs.*\[0,2,5,10\].*\[0,3,5,10\]/);
    const bundle = buildTrajectories(syLogToInteractionLog(await generateSy({ users: 20, rounds: 3, actionDims: SY_BUNDLE_DIMS })));
    expect(() => checkDataMatchesModel(model.meta, bundle)).toThrow(/2 action dimension/);
  });
});

describe('model files', () => {
  it('a truncated file is refused with a typed error', () => {
    const bytes = encodeOnnx(model);
    for (const cut of [10, Math.floor(bytes.length / 2), bytes.length - 3]) {
      expect(() => decodeOnnx(bytes.subarray(0, cut), 'cut.onnx')).toThrow(/cut\.onnx/);
      try {
        decodeOnnx(bytes.subarray(0, cut), 'cut.onnx');
      } catch (e) {
        expect((e as { code: string }).code).toMatch(/^MODEL_/);
      }
    }
  });

  it('an ONNX file that is not ours is refused', () => {
    const { onnx } = onnxProto;
    const foreign = onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 10, opsetImport: [{ version: 21 }], graph: { name: 'g', node: [{ opType: 'Relu', input: ['x'], output: ['y'] }] } })).finish();
    expect(() => decodeOnnx(foreign, 'foreign.onnx')).toThrow(/not a saco model/);
    expect(() => decodeOnnx(new TextEncoder().encode('definitely not protobuf'), 'text.onnx')).toThrow(/text\.onnx/);
    expect(() => readOnnx(tmp.file('absent.onnx'))).toThrow(/cannot read/);
  });

  it('a file whose metadata claims another size than its weights is refused', () => {
    const wrong = { meta: { ...model.meta, config: { ...model.meta.config, dModel: 16, heads: 1 } }, params: model.params };
    expect(() => encodeOnnx(wrong)).toThrow(ArgumentError);
  });

  it('a failed write never leaves a half-written model at the target path', () => {
    const target = tmp.file('model.onnx');
    writeOnnx(model, target);
    const good = readFileSync(target);
    // make the write fail: the target's folder disappears behind a file of the same name
    const blocked = path.join(tmp.file('blocked'), 'model.onnx');
    writeFileSync(tmp.file('blocked'), 'a file, not a folder');
    expect(() => writeOnnx(model, blocked)).toThrow(/cannot write the model/);
    // a target that is a directory: rename fails, the temporary file is removed
    const dirTarget = tmp.file('dir.onnx');
    mkdirSync(dirTarget);
    expect(() => writeOnnx(model, dirTarget)).toThrow(/cannot write the model/);
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readFileSync(target).equals(good)).toBe(true);
    expect(existsSync(blocked)).toBe(false);
  });
});

describe('impossible configs', () => {
  const base: CodtConfig = { stateDim: 4, actionSizes: [3], context: 5, dModel: 16, layers: 2, heads: 2, dropout: 0.1, variant: 'weighted' };
  it('are ArgumentErrors naming the field', () => {
    expect(() => validateCodtConfig(base)).not.toThrow();
    expect(() => validateCodtConfig({ ...base, heads: 3 })).toThrow(/not divisible by 3 heads/);
    expect(() => validateCodtConfig({ ...base, layers: 0 })).toThrow(/model\.layers/);
    expect(() => validateCodtConfig({ ...base, context: 0 })).toThrow(/model\.context/);
    expect(() => validateCodtConfig({ ...base, dModel: 2.5 })).toThrow(/model\.dModel/);
    expect(() => validateCodtConfig({ ...base, actionSizes: [] })).toThrow(/actionSizes/);
    expect(() => validateCodtConfig({ ...base, dropout: 1 })).toThrow(/dropout/);
    expect(() => validateCodtConfig({ ...base, variant: 'fancy' as never })).toThrow(/variant/);
  });
  it('and training options out of range are refused before any work', async () => {
    await expect(trainCodt(traj, { epochs: 0 })).rejects.toThrow(/epochs/);
    await expect(trainCodt(traj, { batchSize: -1 })).rejects.toThrow(/batchSize/);
    await expect(trainCodt(traj, { dModel: 10, heads: 4 })).rejects.toThrow(/divisible/);
    await expect(trainCodt(traj, { lr: NaN })).rejects.toThrow(/lr/);
    await expect(trainCodt(traj, { lambdaMargin: 1 })).rejects.toThrow(/lambdaMargin/);
    // saco's trainCodt refuses them before it fits the default recipe's outcome model
    const stages: string[] = [];
    await expect(trainWithOutcomes(traj, { lambdaMargin: -0.1, onOutcome: (stage) => stages.push(stage) })).rejects.toThrow(/lambdaMargin/);
    await expect(trainWithOutcomes(traj, { epochs: 0, onOutcome: (stage) => stages.push(stage) })).rejects.toThrow(/epochs/);
    expect(stages).toEqual([]);
  });
  it('the default recipe reports its outcome model fold by fold, to onOutcome and to the caller\'s own outcome.onFold', async () => {
    const own: Array<[number, number]> = [];
    const stages: Array<[string, number | undefined]> = [];
    await trainWithOutcomes(traj, { epochs: 1, dModel: 8, layers: 1, heads: 1, seed: 2, outcome: { folds: 2, onFold: (done, total) => own.push([done, total]) }, onOutcome: (stage, _s, folds) => stages.push([stage, folds?.done]) });
    expect(own).toEqual([[0, 2], [1, 2]]);
    expect(stages).toEqual([['fitting', 0], ['fitting', 1], ['done', undefined]]);
  });
  it('the orchestration without a native engine refuses the native trainer with a typed error', async () => {
    // model/ does not load the binary: only the wired trainCodt (native/train-engine.ts) hands it the engine
    const refused = trainCodtWith({}, traj, { trainer: 'native', epochs: 1 });
    await expect(refused).rejects.toBeInstanceOf(ArgumentError);
    await expect(refused).rejects.toMatchObject({ code: 'TRAINER_UNAVAILABLE' });
  });
});
