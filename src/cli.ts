#!/usr/bin/env node
/**
 * The `saco` command: the entry point. Each command lives in src/cli/<command>.ts; this file
 * assembles them and owns the exit codes:
 *   0    done
 *   1    a bug: anything that is not a SacoError (the stack is printed)
 *   2    a user error: any SacoError (bad data, schema, argument, model file, native
 *        argument check) or a usage error (unknown command or option, bad flag value),
 *        printed as ONE line `saco: <message>`
 *   130  interrupted by Ctrl-C (train writes its checkpoint first); 143 on SIGTERM
 * Results go to stdout (--json: one JSON document), notices and progress to stderr.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { SacoError } from './errors.js';
import { examples, helpConfig } from './cli/common.js';
import { registerData } from './cli/data.js';
import { registerDecide } from './cli/decide.js';
import { registerDemo } from './cli/demo.js';
import { registerEval } from './cli/eval.js';
import { registerFitSim } from './cli/fit-sim.js';
import { installInterruptHandlers, Interrupted } from './cli/interrupt.js';
import { registerShard } from './cli/shard.js';
import { registerSimCheck } from './cli/sim-check.js';
import { registerSolve } from './cli/solve.js';
import { registerSynth } from './cli/synth.js';
import { registerTrain } from './cli/train.js';
import { registerWorker } from './cli/worker.js';
import { clearProgressLines } from './cli/ui.js';

export function buildProgram(): Command {
  const program = new Command();
  // settings first: commands created below inherit them
  program
    .name('saco')
    .description('Sequence-aware, budget-constrained coupon allocation (SACO): synthetic data, log ingestion, training and planning')
    .version('0.1.0')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureHelp(helpConfig)
    .configureOutput({ outputError: () => {} }); // main() prints usage errors as one line
  registerSynth(program);
  registerData(program);
  registerTrain(program);
  registerFitSim(program);
  registerSimCheck(program);
  registerSolve(program);
  registerDecide(program);
  registerEval(program);
  registerShard(program);
  registerWorker(program);
  registerDemo(program);
  const data = program.commands.find((c) => c.name() === 'data');
  if (data) examples(data, ['saco data inspect --data logs.parquet', 'saco data trajectories --data logs.csv --schema schema.json --json']);
  program.addHelpText(
    'after',
    '\nExit codes: 0 done, 2 bad input or usage (one line on stderr), 1 a bug (with its stack), 130 interrupted.\n' +
      'Every command reading a log takes --data FILE [--schema FILE] [--user-col ... column flags]; --json prints one JSON document on stdout.\n\n' +
      'Examples:\n' +
      '  $ saco synth --users 10000 --out sy.parquet\n' +
      '  $ saco train --data sy.parquet --out model.onnx\n' +
      '  $ saco solve --model model.onnx --users 10000 --budget 0.5x\n',
  );
  return program;
}

/** Commander's "error: unknown command 'sovle'\n(Did you mean solve?)" as one line. */
function usageLine(message: string): string {
  return message
    .replace(/^error: /, '')
    .replace(/\s*\n\(Did you mean (one of )?(.+)\?\)\s*$/, (_m, oneOf: string | undefined, names: string) => `. Did you mean ${oneOf ? 'one of ' : ''}${names.split(', ').map((n) => `'${n}'`).join(', ')}?`)
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}

/** "saco train --help" for an error in `saco train ...`: the deepest command named on the line. */
function helpHint(program: Command, args: string[]): string {
  const names = ['saco'];
  let cmd = program;
  for (const a of args) {
    if (a.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
  }
  return `${names.join(' ')} --help`;
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  installInterruptHandlers();
  // `saco ... | head`: a closed stdout ends the command quietly, as with other Unix tools
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    clearProgressLines();
    if (e instanceof Interrupted) return e.exitCode;
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0; help shown for a missing subcommand is a usage error
      if (e.exitCode === 0) return 0;
      if (e.code !== 'commander.help') process.stderr.write(`saco: ${usageLine(e.message)} (${helpHint(program, argv.slice(2))} for usage)\n`);
      return 2;
    }
    if (e instanceof SacoError) {
      process.stderr.write(`saco: ${oneLine(e.message)}\n`);
      return 2;
    }
    process.stderr.write(`saco: internal error (a bug, please report it with this output):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  if (process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
