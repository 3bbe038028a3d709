/** Redis URLs and the names coordinator and workers agree on (no BullMQ here: it loads only for a Redis run). */
import { ClusterError } from './types.js';

export const DEFAULT_PREFIX = 'saco';
export const DEFAULT_QUEUE = 'saco-shards';

/** BullMQ connection options for a redis:// URL. */
export function connectionOf(url: string): { url: string; maxRetriesPerRequest: null; lazyConnect?: boolean } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ClusterError('CLUSTER_REDIS_URL', `"${url}" is not a Redis URL (redis://host:port)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new ClusterError('CLUSTER_REDIS_URL', `"${url}" is not a Redis URL (redis://host:port or rediss://)`);
  return { url, maxRetriesPerRequest: null };
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
