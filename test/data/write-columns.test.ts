/**
 * The user_id column of every file saco writes (plans, decisions, logs): ids are written as
 * the log has them, so a plan joins back to the user's own tables.
 */
import { describe, expect, it } from 'vitest';
import { userIdColumn } from '../../src/data/write.js';

describe('userIdColumn', () => {
  it('INTEGER only for ids that print back as themselves; leading zeros, 10+ digits and text stay text', () => {
    const column = (ids: string[]) => userIdColumn(ids, (r) => ids[r]);
    expect(column(['7', '12', '0', '-3']).sqlType).toBe('INTEGER');
    for (const ids of [['007', '12'], ['1234567890'], ['u7'], ['+5'], ['-0', '3']]) {
      const c = column(ids);
      expect(c.sqlType, ids.join(',')).toBe('VARCHAR');
      expect(c.value(0)).toBe(ids[0]);
    }
  });
});
