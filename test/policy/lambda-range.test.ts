/**
 * λ's range of the expected recipe (relabelFromOutcomes): an action that costs next to
 * nothing over the control, e.g. a plain message beside a coupon, must not set it. Its
 * revenue per unit of extra cost is noise over ~0, which made λmax 5e7 on a ride-hailing log
 * (every useful λ then sat in the first millionth of the model's λ input).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readTrajectories } from '../../src/data/ingest.js';
import { parseSchema } from '../../src/data/schema.js';
import { CounterStream } from '../../src/data/rng.js';
import { EXPECTED_OUTCOME_MODEL, relabelFromOutcomes } from '../../src/policy/train.js';
import { crossFitOutcomes } from '../../src/sim/outcome.js';
import { tempDir } from '../helpers/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('λmax of the expected recipe', () => {
  it('comes from the coupon, not from a message that costs 1/10,000 of it', async () => {
    // one round per user; arms drawn uniformly: none (free), message (cost 0.0005, no effect),
    // coupon (cost 5, reward +10 on average): the coupon's revenue per unit of extra cost is 2
    const rows = ['user,x,arm,cost,reward'];
    for (let u = 0; u < 3000; u++) {
      const s = new CounterStream(7, u, 0, 0);
      const x = s.uniform();
      const arm = ['none', 'message', 'coupon'][Math.floor(3 * s.uniform())];
      const base = 20 * x + 4 * (s.uniform() - 0.5);
      const reward = arm === 'coupon' ? base + 10 * 2 * x : base;
      const cost = arm === 'coupon' ? 5 : arm === 'message' ? 0.0005 : 0;
      rows.push(`${u},${x.toFixed(4)},${arm},${cost},${reward.toFixed(3)}`);
    }
    const file = tmp.file('message-and-coupon.csv', rows.join('\n') + '\n');
    const schema = parseSchema({ user: 'user', time: null, states: ['x'], actions: [{ column: 'arm', values: ['none', 'message', 'coupon'], control: 'none' }], cost: 'cost', reward: 'reward' });
    const { trajectories } = await readTrajectories(file, { schema });
    const cross = await crossFitOutcomes(trajectories, { ...EXPECTED_OUTCOME_MODEL, seed: 1 });
    const { lambdaMax } = relabelFromOutcomes(trajectories, cross);
    // the coupon's ratio is 20x / 5 = 4x over x ~ U(0, 1): its 99th percentile is ~3.96, so
    // λmax ≈ 1.2 × 3.96 = 4.75, give or take the outcome model's error
    expect(lambdaMax).toBeGreaterThan(3.5);
    expect(lambdaMax).toBeLessThan(6.5);
  });
});
