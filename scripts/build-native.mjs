#!/usr/bin/env node
// Builds the native addon with cmake-js (root `install` script, so `npm ci` builds it).
// Missing Debian build packages are installed with apt-get when we run as root on a machine
// that has it (one printed line says what and why); otherwise one line names the exact
// command and the build stops, instead of a wall of CMake output.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const have = (cmd) => spawnSync('sh', ['-c', 'command -v "$0"', cmd], { stdio: 'ignore' }).status === 0;

/** Each need: how to tell it is present, and the Debian package that provides it. */
const needs = [
  { pkg: 'cmake', present: () => have('cmake') },
  { pkg: 'g++', present: () => have('g++') },
  { pkg: 'make', present: () => have('make') },
  { pkg: 'libeigen3-dev', present: () => existsSync('/usr/include/eigen3/Eigen/Core') },
  { pkg: 'libnlopt-dev', present: () => existsSync('/usr/include/nlopt.h') },
  { pkg: 'libxgboost-dev', present: () => existsSync('/usr/include/xgboost/c_api.h') },
  // not for the build: the local Redis of the sharded solve (`saco solve --redis`) and its tests
  { pkg: 'redis-server', present: () => have('redis-server'), optional: true },
];

function missingPackages(includeOptional = true) {
  return needs.filter((n) => (includeOptional || !n.optional) && !n.present()).map((n) => n.pkg);
}

function installWithApt(pkgs) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !have('apt-get')) return false;
  console.log(`saco: installing ${pkgs.join(' ')} with apt-get (needed to build the native core${pkgs.includes('redis-server') ? '; redis-server for the sharded solve' : ''})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'], env };
  if (spawnSync('apt-get', ['update', '-qq'], quiet).status !== 0) return false;
  return spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], quiet).status === 0;
}

let missing = missingPackages();
if (missing.length > 0 && !process.env.SACO_SKIP_HEADER_CHECK) {
  installWithApt(missing);
  const optional = missingPackages().filter((p) => needs.find((n) => n.pkg === p)?.optional);
  if (optional.length > 0) console.log(`saco: ${optional.join(' ')} not installed (optional: the sharded solve with a local Redis and its tests need it): apt-get install -y ${optional.join(' ')}`);
  missing = missingPackages(false);
  if (missing.length > 0) {
    const sudo = typeof process.getuid === 'function' && process.getuid() === 0 ? '' : 'sudo ';
    console.error(
      `saco: cannot build the native core: missing Debian package(s) ${missing.join(' ')}. ` +
        `Install them, then run npm ci again: ${sudo}apt-get install -y ${missing.join(' ')}`,
    );
    process.exit(1);
  }
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root, '--out', path.join(root, 'build')];
if (process.env.SACO_CUDA === '0') args.push('--CDSACO_CUDA=OFF');
// Warnings are errors only where we control the compiler (CI); a user's newer compiler
// must not break their install over a new warning.
if (process.env.SACO_WERROR === '1' || process.env.CI === 'true') args.push('--CDSACO_WERROR=ON');
if (process.env.SACO_BUILD_JOBS) args.push('--parallel', process.env.SACO_BUILD_JOBS);
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error('saco: native build failed (see the CMake output above)');
  process.exit(result.status ?? 1);
}
