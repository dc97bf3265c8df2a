// The device SDK's declarations (`gatehouse/device`'s `types`, lib/types, built by scripts/device-types.ts at
// `npm install`): a device maker's TypeScript project type-checks against them with its own compiler options, they
// carry real types (a misuse is an error), and they match the sources.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEVICE_TYPES_DIR, emitDeviceTypes } from '../scripts/device-types.ts';

const execFileAsync = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const TSC = createRequire(path.join(REPO, 'package.json')).resolve('typescript/bin/tsc');

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

/** tsc on a consumer project; resolves with its exit code and output (tsc prints diagnostics on stdout). */
async function typeCheck(project: string): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileAsync(process.execPath, [TSC, '-p', project], { cwd: project, timeout: 60_000 });
    return { code: 0, out: r.stdout };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: e.stdout ?? String(error) };
  }
}

describe('gatehouse/device for TypeScript consumers', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'gh-sdk-ts-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('matches the sources (npm run build:types after changing src/device or what it imports)', () => {
    const fresh = path.join(work, 'fresh');
    emitDeviceTypes(fresh);
    const built = filesUnder(DEVICE_TYPES_DIR);
    expect(built).toContain('device/index.d.ts');
    expect(built).toEqual(filesUnder(fresh));
    for (const f of built) expect(readFileSync(path.join(DEVICE_TYPES_DIR, f), 'utf8'), f).toBe(readFileSync(path.join(fresh, f), 'utf8'));
    // what the package points TypeScript at
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
    expect(path.resolve(REPO, pkg.exports['./device']?.['types'] ?? '')).toBe(path.join(DEVICE_TYPES_DIR, 'device', 'index.d.ts'));
  });

  it("type-checks a device maker's project with its own strict options, and reports a misuse", async () => {
    // a project whose node_modules/gatehouse is this checkout; no allowImportingTsExtensions, declarations checked too
    const project = path.join(work, 'maker');
    mkdirSync(path.join(project, 'node_modules', '@types'), { recursive: true });
    symlinkSync(REPO, path.join(project, 'node_modules', 'gatehouse'), 'dir');
    symlinkSync(path.join(REPO, 'node_modules', '@types', 'node'), path.join(project, 'node_modules', '@types', 'node'), 'dir');
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'maker', type: 'module', private: true }));
    const options = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, skipLibCheck: false, noEmit: true, types: ['node'] };
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['device.ts'] }));
    writeFileSync(path.join(project, 'device.ts'), `
      import { connectDevice, isGatehouseError, provisionByClaim } from 'gatehouse/device';
      import type { DeviceEndpoint, ProvisionedDevice } from 'gatehouse/device';
      const endpoint: DeviceEndpoint = { host: 'acme.localhost', port: 8883, caPem: process.env['ROOT_CA'] ?? '' };
      const claim = { certificatePem: '', privateKeyPem: '' };
      try {
        const dev: ProvisionedDevice = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: '1' }, outDir: 'device/' });
        const client = await connectDevice(endpoint, dev, dev.thingName);
        await client.publishAsync('things/' + dev.thingName + '/hello', 'hi', { qos: 1 });
        await client.endAsync();
      } catch (error) {
        if (isGatehouseError(error)) console.error(error.code, error.details?.['connackCode'], error.message);
      }
    `);
    const good = await typeCheck(project);
    expect(good.out).toBe('');
    expect(good.code).toBe(0);

    // the declarations are real types, not any: a wrong argument and a wrong use of a result are errors
    writeFileSync(path.join(project, 'device.ts'), `
      import { provisionByClaim } from 'gatehouse/device';
      const endpoint = { host: 'acme.localhost', port: 8883, caPem: '' };
      const dev = await provisionByClaim({ endpoint, claim: { certificatePem: '', privateKeyPem: '' }, templateName: 42, parameters: {} });
      const port: number = dev.thingName;
      console.log(port);
    `);
    const bad = await typeCheck(project);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/device\.ts\(4,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(bad.out).toMatch(/device\.ts\(5,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  });
});
