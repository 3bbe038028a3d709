/** `saco shard`: split a log by user hash into N Parquet files, the shards of `saco solve --data DIR --redis URL`. */
import path from 'node:path';
import { Command } from 'commander';
import { shardLog } from '../cluster/shard-files.js';
import { ArgumentError } from '../errors.js';
import { checkDistinct, examples, intArg, resolveInput, table, withInputOptions, withOutputFlags, type InputOpts } from './common.js';
import { Ui } from './ui.js';

interface ShardOpts extends InputOpts {
  shards: number;
  out: string;
  json?: boolean;
  quiet?: boolean;
}

async function runShard(o: ShardOpts, cmd: Command): Promise<void> {
  const { file, schema } = resolveInput(cmd, o);
  checkDistinct([['--data', file], ['--out', o.out]]);
  if (path.resolve(path.dirname(file)) === path.resolve(o.out)) throw new ArgumentError('--out', `${o.out} is the folder of the log itself: give a folder of its own for the shards`, 'ARGUMENT_OUTPUT');
  const ui = new Ui(o);
  try {
    ui.phase(`sharding ${file}`);
    const m = await shardLog(file, o.shards, o.out, { schema, glob: o.glob, onProgress: (stage) => ui.update(stage) });
    ui.done();
    ui.result({ ...m, dir: path.resolve(o.out) }, () => [
      `${m.users} users (${m.rows} rows) of ${file} in ${m.shards} shards by ${m.hash}, in ${o.out}:`,
      ...table(['shard', 'file', 'users', 'rows'], m.files.map((f) => [String(f.shard), f.file ?? '(empty: no file)', String(f.users), String(f.rows)]), '  '),
      `plan them: saco solve --model MODEL --data ${o.out} --budget 0.5x [--redis redis://HOST:6379]`,
    ]);
  } finally {
    ui.done();
  }
}

export function registerShard(program: Command): void {
  const cmd = program.command('shard').description('split a log by user hash into N Parquet files (one shard each) and a shards.json manifest, for the sharded solve');
  withInputOptions(cmd, 'mandatory')
    .requiredOption('--shards <n>', 'number of shards', intArg(1, 100000))
    .requiredOption('--out <dir>', 'folder for shard-NNNN.parquet and shards.json (created; earlier shards there are replaced)');
  withOutputFlags(cmd, 'print the manifest as JSON');
  cmd.action((o: ShardOpts, c: Command) => runShard(o, c));
  examples(cmd, ['saco shard --data users.parquet --shards 64 --out shards/', 'saco solve --model model.onnx --data shards/ --budget 0.5x --redis redis://127.0.0.1:6379']);
}
