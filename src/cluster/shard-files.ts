/**
 * `saco shard`: a log split by user into N Parquet files, the job units of a sharded solve on
 * logged users. A user's shard is the first 32 bits of md5(user key) modulo N (the user key as
 * the reader builds it: the user column as text, several columns joined by '|'), so a user's
 * rows all land in one file whatever the file order, and the split is the same on every machine
 * and DuckDB version. Each file keeps every column of the log as it was read, so the same schema
 * reads it. A manifest (`shards.json`) lists the files, their users and rows, and the schema.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../data/atomic.js';
import { DEFAULT_SCHEMA, type DataSchema } from '../data/schema.js';
import { ArgumentError } from '../errors.js';
import type { ShardFiles } from './types.js';

export const SHARD_MANIFEST = 'shards.json';

export interface ShardManifest {
  format: 'saco-shards';
  version: 1;
  /** The log that was split. */
  source: string;
  shards: number;
  hash: string;
  schema: DataSchema;
  /** File names relative to the manifest's folder, in shard order; users 0: an empty shard (no file). */
  files: Array<{ shard: number; file: string | null; users: number; rows: number }>;
  users: number;
  rows: number;
}

/** The shard of a user key (what `saco shard` computes in SQL), for tests and tools. */
export function shardOfUser(key: string, shards: number): number {
  return parseInt(createHash('md5').update(key).digest('hex').slice(0, 8), 16) % shards;
}

export const shardFileName = (k: number, shards: number): string => `shard-${String(k).padStart(Math.max(4, String(shards - 1).length), '0')}.parquet`;

/**
 * Splits `input` by user hash into `shards` Parquet files in `outDir` (created if missing;
 * earlier shard files there are replaced) and writes the manifest.
 * @throws {ArgumentError} for a schema without a user column, a bad shard count, or an output folder holding other files.
 * @throws {DataError} for a missing or unreadable log.
 */
export async function shardLog(input: string, shards: number, outDir: string, options: { schema?: DataSchema; glob?: boolean; onProgress?: (stage: string) => void; threads?: number } = {}): Promise<ShardManifest> {
  if (!Number.isInteger(shards) || shards < 1 || shards > 100000) throw new ArgumentError('shards', `must be an integer in [1, 100000], got ${String(shards)}`);
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const userCols = schema.user === null ? [] : Array.isArray(schema.user) ? schema.user : [schema.user];
  if (userCols.length === 0) throw new ArgumentError('schema.user', 'is none (every row its own user): a log is split by user, so it needs a user column');
  const progress = options.onProgress ?? (() => undefined);
  mkdirSync(outDir, { recursive: true });
  if (!statSync(outDir).isDirectory()) throw new ArgumentError('--out', `${outDir} is not a folder`, 'ARGUMENT_OUTPUT');
  const strangers = readdirSync(outDir).filter((f) => !/^shard-\d+(\.plan)?\.parquet$/.test(f) && f !== SHARD_MANIFEST && !f.startsWith('.'));
  if (strangers.length > 0) throw new ArgumentError('--out', `${outDir} holds other files (${strangers.slice(0, 3).join(', ')}${strangers.length > 3 ? ', …' : ''}): give an empty or shard folder`, 'ARGUMENT_OUTPUT');
  const { queryRows, quoteIdent, quoteLiteral, readerSql, resolveSource, withDuck } = await import('../data/duck.js'); // DuckDB loads on first use
  const staging = path.join(outDir, `.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    return await withDuck(async (conn) => {
      progress(`reading ${input}`);
      const source = await resolveSource(conn, input, options.glob);
      const cols = (await queryRows(conn, `DESCRIBE SELECT * FROM ${readerSql(source)}`)).map((r) => String(r.column_name));
      for (const c of userCols) if (!cols.includes(c)) throw new ArgumentError('schema.user', `column "${c}" is not in ${input} (columns: ${cols.slice(0, 12).join(', ')}${cols.length > 12 ? ', …' : ''})`);
      const key = userCols.length === 1 ? `CAST(${quoteIdent(userCols[0])} AS VARCHAR)` : `concat_ws('|', ${userCols.map((c) => `CAST(${quoteIdent(c)} AS VARCHAR)`).join(', ')})`;
      const shardExpr = `CAST(('0x' || substr(md5(${key}), 1, 8))::UBIGINT % ${shards} AS INTEGER)`;
      await conn.run(`CREATE TABLE split AS SELECT *, ${shardExpr} AS __saco_shard FROM ${readerSql(source)}`);
      const counts = await queryRows(conn, `SELECT __saco_shard AS k, count(*) AS rows, count(DISTINCT ${key}) AS users FROM split GROUP BY 1 ORDER BY 1`);
      const byShard = new Map(counts.map((r) => [Number(r.k), { rows: Number(r.rows), users: Number(r.users) }]));
      mkdirSync(staging);
      const keep = cols.map(quoteIdent).join(', ');
      const files: ShardManifest['files'] = [];
      for (let k = 0; k < shards; k++) {
        const c = byShard.get(k);
        if (!c) {
          files.push({ shard: k, file: null, users: 0, rows: 0 });
          continue;
        }
        progress(`writing shard ${k + 1}/${shards}`);
        const name = shardFileName(k, shards);
        await conn.run(`COPY (SELECT ${keep} FROM split WHERE __saco_shard = ${k}) TO ${quoteLiteral(path.join(staging, name))} (FORMAT parquet)`);
        files.push({ shard: k, file: name, users: c.users, rows: c.rows });
      }
      // replace earlier shards only once every new file is written
      for (const f of readdirSync(outDir)) if (/^shard-\d+(\.plan)?\.parquet$/.test(f)) rmSync(path.join(outDir, f), { force: true });
      for (const f of files) if (f.file) renameSync(path.join(staging, f.file), path.join(outDir, f.file));
      const manifest: ShardManifest = {
        format: 'saco-shards', version: 1, source: path.resolve(input), shards, hash: 'md5(user key) first 32 bits mod shards', schema,
        files, users: files.reduce((n, f) => n + f.users, 0), rows: files.reduce((n, f) => n + f.rows, 0),
      };
      writeFileAtomic(path.join(outDir, SHARD_MANIFEST), new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
      return manifest;
    }, options.threads);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** A shard folder (or its shards.json) as the users of a sharded solve: its non-empty files, in shard order. */
export function readShardManifest(dirOrFile: string): ShardManifest & { dir: string; asUsers: ShardFiles } {
  const file = existsSync(dirOrFile) && statSync(dirOrFile).isDirectory() ? path.join(dirOrFile, SHARD_MANIFEST) : dirOrFile;
  let manifest: ShardManifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as ShardManifest;
  } catch (e) {
    throw new ArgumentError('--data', `${file}: not a shard manifest written by saco shard (${(e as Error).message})`);
  }
  if (manifest?.format !== 'saco-shards' || manifest.version !== 1 || !Array.isArray(manifest.files)) throw new ArgumentError('--data', `${file}: not a shard manifest written by saco shard`);
  const dir = path.dirname(path.resolve(file));
  const shardFiles = manifest.files.filter((f) => f.file !== null).map((f) => path.join(dir, f.file as string));
  for (const f of shardFiles) if (!existsSync(f)) throw new ArgumentError('--data', `${f}: listed in ${file} but missing`);
  return { ...manifest, dir, asUsers: { shardFiles, schema: manifest.schema } };
}

/** Whether `p` is a shard folder or manifest. */
export function isShardSet(p: string): boolean {
  try {
    return statSync(p).isDirectory() ? existsSync(path.join(p, SHARD_MANIFEST)) : path.basename(p) === SHARD_MANIFEST;
  } catch {
    return false;
  }
}
