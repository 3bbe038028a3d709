#!/usr/bin/env node
// Builds the native addon with cmake-js (root `install` script, so `npm ci` builds it).
// Fails with one line that names the missing Debian package instead of a wall of CMake.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const missingTools = [
  ['cmake', 'cmake'],
  ['g++', 'g++'],
  ['make', 'make'],
].filter(([cmd]) => !have(cmd));
if (missingTools.length > 0) {
  const pkgs = missingTools.map(([, pkg]) => pkg).join(' ');
  console.error(`saco: cannot build the native core: missing ${pkgs}. Install: apt-get install -y ${pkgs}`);
  process.exit(1);
}
const headers = [
  ['/usr/include/eigen3/Eigen/Core', 'libeigen3-dev'],
  ['/usr/include/nlopt.h', 'libnlopt-dev'],
].filter(([file]) => !existsSync(file));
if (headers.length > 0 && !process.env.SACO_SKIP_HEADER_CHECK) {
  const pkgs = headers.map(([, pkg]) => pkg).join(' ');
  console.error(`saco: cannot build the native core: missing Debian package(s) ${pkgs}. Install: apt-get install -y ${pkgs}`);
  process.exit(1);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root, '--out', path.join(root, 'build')];
if (process.env.SACO_CUDA === '0') args.push('--CDSACO_CUDA=OFF');
if (process.env.SACO_BUILD_JOBS) args.push('--parallel', process.env.SACO_BUILD_JOBS);
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error('saco: native build failed (see the CMake output above)');
  process.exit(result.status ?? 1);
}
