/**
 * How users and the budget are split across shards, and how shard sums are added. Both the
 * in-process twin and the Redis run go through these functions, in shard order, so they give
 * the same bits.
 *
 * Budget split: the final plan at λ is a budget-enforced rollout, which is not separable
 * (within a round users arrive in id order and a coupon is withheld when its largest cost
 * would take realised spend over B). Each shard therefore enforces its own share:
 *
 *   share_k = B · C_k(λ) / Σ_j C_j(λ)       (shrunk by 1e-9 relative, see below)
 *
 * where C_k(λ) is shard k's natural (unbudgeted) spend at the same λ, known from the search's
 * probe at that λ (every λ the search plans at was probed first). When the natural spend fits
 * the budget (Σ C_j ≤ B) every shard gets at least what it would spend anyway, so few coupons
 * are withheld anywhere; when it does not, every shard is cut by the same factor. A policy
 * without a λ search (Random) is split by its reference spend (its natural spend at λ = 0).
 * When the natural spend is 0 everywhere, the split is by user count. The 1e-9 shrink keeps
 * Σ share_k ≤ B despite rounding (each shard's realised spend stays within its share, so the
 * total stays within B).
 */
import { ArgumentError } from '../errors.js';
import { ClusterError, type ShardJob, type ShardResult, type ShardUsers, type WireShardResult, type WireShardUsers } from './types.js';

const SHRINK = 1 - 1e-9;

/** Contiguous ranges [begin, end) of `count` items in `shards` parts, sizes differing by at most one. */
export function shardRanges(count: number, shards: number): Array<{ begin: number; end: number }> {
  if (!Number.isInteger(shards) || shards < 1 || shards > 1e6) throw new ArgumentError('shards', `must be an integer in [1, 1e6], got ${String(shards)}`);
  return Array.from({ length: shards }, (_, k) => ({ begin: Math.floor((k * count) / shards), end: Math.floor(((k + 1) * count) / shards) }));
}

/** Each shard's share of `budget`, pro-rata to `weights` (natural spend at the plan's λ), else to `users`. */
export function budgetShares(budget: number, weights: readonly number[], users: readonly number[]): number[] {
  let total = 0;
  for (const w of weights) total += w;
  let basis = weights;
  if (!(total > 0)) {
    basis = users;
    total = 0;
    for (const n of users) total += n;
  }
  return basis.map((w) => (total > 0 ? ((budget * w) / total) * SHRINK : 0));
}

/** Sums of shard results, added in shard order (the one order both runners use). */
export interface Combined {
  revenue: number;
  cost: number;
  coupons: number;
  blocked: number;
  users: number;
  /** Per shard, in shard order. */
  costs: number[];
}

/**
 * Checks that `results` are exactly one result per shard of this probe (a duplicate delivery,
 * a result of another probe or solve is refused, never added) and returns them in shard order.
 */
export function orderResults<P>(results: Array<ShardResult<P>>, jobs: readonly ShardJob<unknown>[]): Array<ShardResult<P>> {
  const out = new Array<ShardResult<P> | undefined>(jobs.length);
  for (const r of results) {
    const job = jobs[r.shard];
    if (!job || r.solve !== job.solve || r.probe !== job.probe || r.lambda !== job.lambda) {
      throw new ClusterError('CLUSTER_RESULT_INVALID', `a result for solve ${r.solve}, probe ${r.probe}, shard ${r.shard} does not belong to this probe: refused`);
    }
    if (out[r.shard]) throw new ClusterError('CLUSTER_RESULT_INVALID', `shard ${r.shard} of probe ${r.probe} came back twice: refused`);
    out[r.shard] = r;
  }
  const missing = out.findIndex((r) => r === undefined);
  if (missing >= 0 || out.length !== jobs.length) throw new ClusterError('CLUSTER_RESULT_INVALID', `shard ${missing < 0 ? out.length : missing} of probe ${jobs[0]?.probe} has no result`);
  return out as Array<ShardResult<P>>;
}

export function combine<P>(ordered: ReadonlyArray<ShardResult<P>>): Combined {
  const c: Combined = { revenue: 0, cost: 0, coupons: 0, blocked: 0, users: 0, costs: [] };
  for (const r of ordered) {
    c.revenue += r.revenue;
    c.cost += r.cost;
    c.coupons += r.coupons;
    c.blocked += r.blocked;
    c.users += r.users;
    c.costs.push(r.cost);
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// The wire: typed arrays as base64 of their bytes.

function toBase64(a: Uint32Array | Float64Array | Int32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function fromBase64<T>(s: string, Ctor: { new (buffer: ArrayBuffer): T; BYTES_PER_ELEMENT: number }, what: string): T {
  const bytes = Buffer.from(s, 'base64');
  if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw new ArgumentError(what, 'is not a whole number of elements');
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return new Ctor(copy);
}

export function usersToWire(u: ShardUsers): WireShardUsers {
  if (u.kind !== 'ids') return u;
  return { kind: 'ids', ids: toBase64(u.ids), ...(u.features ? { features: toBase64(u.features) } : {}) };
}

export function usersFromWire(u: WireShardUsers): ShardUsers {
  if (u.kind !== 'ids') return u;
  return { kind: 'ids', ids: fromBase64(u.ids, Uint32Array, 'users.ids'), ...(u.features ? { features: fromBase64(u.features, Float64Array, 'users.features') } : {}) };
}

export function resultToWire(r: ShardResult): WireShardResult {
  const { plan, ...rest } = r;
  return plan ? { ...rest, plan: toBase64(plan) } : rest;
}

export function resultFromWire(r: WireShardResult): ShardResult {
  const { plan, ...rest } = r;
  return plan !== undefined ? { ...rest, plan: fromBase64(plan, Int32Array, 'plan') } : rest;
}
