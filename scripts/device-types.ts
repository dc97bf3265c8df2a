// Declarations of the device SDK (`gatehouse/device`) for TypeScript consumers: `lib/types/**/*.d.ts`, emitted by tsc
// from src/device/index.ts and what it imports (tsconfig.device-types.json). The package's `types` condition points
// there. The sources cannot be the types: a consumer's compiler type-checks `.ts` files it finds in node_modules
// with its own options, and without `allowImportingTsExtensions` it refuses every `./x.ts` import (TS5097).
//
// `npm install` runs this (`prepare`), and so do `npm pack` and `npm publish`; `npm run build:types` reruns it after
// src/device changes (test/device-types.test.ts fails on declarations that differ from the sources).
//   npx tsx scripts/device-types.ts [--out <dir>]   (default lib/types)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEVICE_TYPES_DIR = path.join(REPO, 'lib', 'types');

/** tsc of this checkout, or undefined when TypeScript is not installed (`npm install --omit=dev`). */
function tscPath(): string | undefined {
  try {
    return createRequire(path.join(REPO, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

/** Emits the declarations into `outDir` (emptied first). Throws with tsc's output when it fails. */
export function emitDeviceTypes(outDir: string): void {
  const tsc = tscPath();
  if (tsc === undefined) throw new Error('TypeScript is not installed: run npm install (with dev dependencies)');
  rmSync(outDir, { recursive: true, force: true });
  // a throw-away project that extends the repository's, so that `outDir` can be any directory
  const work = mkdtempSync(path.join(tmpdir(), 'gh-device-types-'));
  try {
    const project = path.join(work, 'tsconfig.json');
    writeFileSync(project, JSON.stringify({ extends: path.join(REPO, 'tsconfig.device-types.json'), compilerOptions: { outDir, rootDir: path.join(REPO, 'src'), typeRoots: [path.join(REPO, 'node_modules', '@types')] } }));
    execFileSync(process.execPath, [tsc, '-p', project], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`tsc could not emit the device SDK's declarations:\n${out || String(error)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const outDir = i > 0 && process.argv[i + 1] !== undefined ? path.resolve(process.argv[i + 1] as string) : DEVICE_TYPES_DIR;
  if (tscPath() === undefined) {
    // a production install: the server and the JavaScript SDK work; only TypeScript consumers need the declarations
    process.stderr.write('device-types: TypeScript is not installed, lib/types not built (TypeScript consumers of gatehouse/device need it)\n');
  } else {
    emitDeviceTypes(outDir);
    if (!existsSync(path.join(outDir, 'device', 'index.d.ts'))) throw new Error(`tsc emitted no device/index.d.ts into ${outDir}`);
    process.stderr.write(`device-types: declarations of gatehouse/device in ${path.relative(process.cwd(), outDir) || '.'}\n`);
  }
}
