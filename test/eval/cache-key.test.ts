/**
 * What `saco eval` keys its cached fits by: a CODT method's key holds the library's training
 * defaults, so a model cached by a saco with another default recipe is trained again instead of
 * being reused for a run it does not belong to.
 */
import { describe, expect, it } from 'vitest';
import { keyHash } from '../../src/eval/files.js';
import { METHODS, type MethodSettings } from '../../src/eval/methods.js';
import { TRAIN_DEFAULTS } from '../../src/model/train.js';

const settings: MethodSettings = { quick: false, threads: 0, training: {}, oracleLambdaMax: 10 };

describe('eval cache keys', () => {
  it("a CODT method's key changes with the library's default learning rate and epoch size", () => {
    const saco = METHODS.find((m) => m.name === 'saco');
    if (!saco?.config) throw new Error('saco has no cache key config');
    const before = keyHash(saco.config(settings));
    const { lr, epochSize } = TRAIN_DEFAULTS;
    try {
      TRAIN_DEFAULTS.lr = lr / 2;
      expect(keyHash(saco.config(settings))).not.toBe(before);
      TRAIN_DEFAULTS.lr = lr;
      TRAIN_DEFAULTS.epochSize = epochSize + 1;
      expect(keyHash(saco.config(settings))).not.toBe(before);
    } finally {
      Object.assign(TRAIN_DEFAULTS, { lr, epochSize });
    }
    expect(keyHash(saco.config(settings))).toBe(before);
  });
});
