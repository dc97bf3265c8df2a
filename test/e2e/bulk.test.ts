import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDeviceLines } from '../../src/provisioning/index.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/index.ts';
import type { GeneratedMaterial } from '../../src/provisioning/index.ts';
import { DIALECTS } from '../support/dialects.ts';
import { OpensslWorkspace } from '../support/openssl.ts';
import { REPO, startServer, waitFor } from '../support/server-process.ts';

const MANIFESTS = path.resolve(REPO, '../shared/data/manifests');
const TEMPLATE = {
  Parameters: { ThingName: { Type: 'String' }, Batch: { Type: 'String', Default: 'b1' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'ThingName' }, AttributePayload: { batch: { Ref: 'Batch' } } } },
    certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}' } },
  },
};

type Server = Awaited<ReturnType<typeof startServer>>;
interface TaskView { taskId: string; status: string; total: number; processed: number; succeeded: number; alreadyPresent: number; failed: number; rate: number; checkpointLine: number; templateVersionId: number | null }

/** A template that records its version in each thing (attribute madeBy); no certificate, so that lines are cheap. */
const versionedTemplate = (version: string): string =>
  JSON.stringify({ Parameters: { ThingName: { Type: 'String' }, MadeBy: { Type: 'String', Default: version } }, Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'ThingName' }, AttributePayload: { madeBy: { Ref: 'MadeBy' } } } } } });

function lines(count: number, material: GeneratedMaterial, prefix: string): string[] {
  return [...generateDeviceLines({ count, material, prefix })].map((d) => d.line);
}

function jsonLines<T>(text: string): T[] {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T);
}

async function upload(server: Server, body: string, query: string, contentType = 'application/x-ndjson'): Promise<TaskView> {
  const r = await server.api('POST', `/v1/bulk-tasks?${query}`, undefined, { rawBody: body, contentType });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as TaskView;
}

async function finished(server: Server, taskId: string): Promise<TaskView> {
  return waitFor(async () => {
    const t = (await server.api('GET', `/v1/bulk-tasks/${taskId}`)).body as TaskView;
    return t.status === 'RUNNING' || t.status === 'STOPPING' ? undefined : t;
  }, 60_000, `task ${taskId}`);
}

for (const dialect of DIALECTS) {
  describe(`bulk registration and manifest import (${dialect.name})`, () => {
    let server: Server;
    let firstServer: Server | undefined;
    const ws = new OpensslWorkspace();
    const tmp = mkdtempSync(path.join(tmpdir(), 'gh-bulk-'));
    let factoryCaId: string;
    let factory: GeneratedMaterial;

    beforeAll(async () => {
      // 1000-line batches: the stop/resume/kill test below needs a 6,000-line task to be still running when stopped.
      server = await startServer({ dialect, env: { GATEHOUSE_BULK_BATCH_LINES: '1000' } });
      firstServer = server;
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'bulk', templateBody: JSON.stringify(TEMPLATE) })).status).toBe(201);
      // A factory CA registered with proof of possession; certificates it signed are registered under it.
      ws.selfSignedCa('factory', '/CN=Factory CA/O=Acme');
      const code = ((await server.api('GET', '/v1/cas/registration-code')).body as { registrationCode: string }).registrationCode;
      ws.key('verif');
      ws.csr('verif', `/CN=${code}`);
      const reg = await server.api('POST', '/v1/cas/register', { caCertificatePem: ws.read('factory.pem'), verificationCertificatePem: ws.sign('verif', 'factory') });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      factoryCaId = (reg.body as { caCertificateId: string }).caCertificateId;
      factory = { kind: 'certificate', caCertificatePem: ws.read('factory.pem'), caKeyPem: readFileSync(ws.file('factory.key'), 'utf8') };
      ws.selfSignedCa('other', '/CN=Unregistered CA');
    });
    afterAll(async () => {
      rmSync(tmp, { recursive: true, force: true });
      if (firstServer === undefined) return; // the server did not start; its error is the one reported
      await server.destroy();
      if (server !== firstServer) await firstServer.disposeDatabase();
    });

    // Lines 1-3 under the factory CA, 4-5 without a CA, 6-7 CSRs, 8 keys generated, then one of each bad input.
    const good = (): string[] => [
      ...lines(3, factory, 'fac-'),
      ...lines(2, { kind: 'certificate', caCertificatePem: ws.read('other.pem'), caKeyPem: readFileSync(ws.file('other.key'), 'utf8') }, 'noca-'),
      ...lines(2, { kind: 'csr' }, 'csr-'),
      JSON.stringify({ ThingName: 'keys-1' }),
    ];
    let input = '';
    let rows: { ThingName: string; CertificatePem: string }[] = [];
    const badCodes: Record<number, string> = {
      9: 'PROVISIONING_BULK_LINE_MALFORMED',
      10: 'PKI_CERTIFICATE_MALFORMED',
      11: 'PKI_CSR_SIGNATURE_INVALID',
      12: 'PROVISIONING_BULK_DUPLICATE_THING',
      13: 'TEMPLATE_PARAMETER_UNKNOWN',
      14: 'PROVISIONING_BULK_LINE_TOO_LARGE',
    };

    it('registers certificates with and without their CA, signs CSRs, reports each bad line with its code', async () => {
      const csr = (JSON.parse(lines(1, { kind: 'csr' }, 'tamper-me-please')[0] ?? '{}') as { CSR: string }).CSR;
      const tampered = csr.replace(/-----BEGIN CERTIFICATE REQUEST-----\n([\s\S]*?)\n-----END/, (_m, b64: string) => {
        const der = Buffer.from(b64.replace(/\n/g, ''), 'base64');
        const i = der.indexOf(Buffer.from('tamper-me-please'));
        der[i] = 'T'.charCodeAt(0);
        return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END`;
      });
      const first = good();
      input = [
        ...first,
        '{"ThingName": "broken',
        JSON.stringify({ ThingName: 'badpem', CertificatePem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }),
        JSON.stringify({ ThingName: 'badcsr', CSR: tampered }),
        JSON.stringify({ ...(JSON.parse(lines(1, factory, 'dup-')[0] ?? '{}') as object), ThingName: 'fac-1' }),
        JSON.stringify({ ThingName: 'unknown-param', Colour: 'red' }),
        JSON.stringify({ ThingName: 'huge', Padding: 'x'.repeat(70 * 1024) }),
      ].join('\n');
      const created = await upload(server, input, 'templateName=bulk');
      expect(created.total).toBe(14);
      const t = await finished(server, created.taskId);
      expect(t).toMatchObject({ status: 'COMPLETED', total: 14, processed: 14, succeeded: 8, alreadyPresent: 0, failed: 6, checkpointLine: 14 });

      const errors = jsonLines<{ line: number; code: string; message: string }>((await server.api('GET', `/v1/bulk-tasks/${t.taskId}/errors`)).body as string);
      expect(Object.fromEntries(errors.map((e) => [e.line, e.code]))).toEqual(badCodes);
      expect(errors.find((e) => e.line === 13)?.message).toBe('The template does not declare the parameter "Colour"');
      const results = jsonLines<{ line: number; outcome: string; thingName: string; certificateId: string | null; certificatePem?: string; privateKeyPem?: string }>(
        (await server.api('GET', `/v1/bulk-tasks/${t.taskId}/results`)).body as string,
      );
      expect(results.map((r) => r.line)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
      const byName = new Map(results.filter((r) => r.outcome === 'created').map((r) => [r.thingName, r]));
      expect([...byName.keys()].sort()).toEqual(['csr-1', 'csr-2', 'fac-1', 'fac-2', 'fac-3', 'keys-1', 'noca-1', 'noca-2']);

      const cert = async (name: string): Promise<{ caCertificateId: string | null; status: string; things: string[]; policies: string[] }> =>
        (await server.api('GET', `/v1/certificates/${byName.get(name)?.certificateId ?? ''}`)).body as { caCertificateId: string | null; status: string; things: string[]; policies: string[] };
      expect(await cert('fac-2')).toMatchObject({ caCertificateId: factoryCaId, status: 'ACTIVE', things: ['fac-2'] });
      expect((await cert('fac-2')).policies).toHaveLength(1);
      expect(await cert('noca-1')).toMatchObject({ caCertificateId: null, status: 'ACTIVE', things: ['noca-1'] });
      // CSR lines get the signed certificate back; generated keys come with their private key (development only).
      ws.write('csr1.pem', byName.get('csr-1')?.certificatePem ?? '');
      expect(ws.run(['x509', '-in', 'csr1.pem', '-noout', '-subject'])).toContain('csr-1');
      expect(byName.get('keys-1')?.privateKeyPem).toContain('BEGIN PRIVATE KEY');
      expect(byName.get('fac-1')?.certificatePem).toBeUndefined();
      const thing = await server.api('GET', '/v1/things/fac-1');
      expect(thing.body).toMatchObject({ thingName: 'fac-1', attributes: { batch: 'b1' } });
      // Nothing half-written for the bad lines.
      for (const name of ['badpem', 'badcsr', 'unknown-param', 'huge']) expect((await server.api('GET', `/v1/things/${name}`)).status).toBe(404);
      expect((await server.api('GET', '/v1/audit/verify')).body).toMatchObject({ ok: true });
    });

    it('is idempotent: the same file again reports devices as already present, nothing duplicated', async () => {
      const before = ((await server.api('GET', '/v1/certificates?maxResults=250')).body as { certificates: unknown[] }).certificates.length;
      const again = await finished(server, (await upload(server, input, 'templateName=bulk')).taskId);
      expect(again).toMatchObject({ status: 'COMPLETED', succeeded: 0, alreadyPresent: 8, failed: 6 });
      expect(((await server.api('GET', '/v1/certificates?maxResults=250')).body as { certificates: unknown[] }).certificates.length).toBe(before);
      const results = jsonLines<{ thingName: string; outcome: string; certificateId: string }>((await server.api('GET', `/v1/bulk-tasks/${again.taskId}/results`)).body as string);
      expect(((await server.api('GET', '/v1/things/csr-1/principals')).body as { principals: string[] }).principals).toEqual([results.find((r) => r.thingName === 'csr-1')?.certificateId]);
      const list = ((await server.api('GET', '/v1/bulk-tasks')).body as { tasks: TaskView[] }).tasks;
      expect(list[0]?.taskId).toBe(again.taskId);
    });

    it('answers with problem+json codes for bad uploads and unknown tasks; manufacturers may upload, installers may not', async () => {
      const json = await server.api('POST', '/v1/bulk-tasks?templateName=bulk', { ThingName: 'x' });
      expect([json.status, (json.body as { code: string }).code]).toEqual([400, 'PROVISIONING_BULK_FORMAT_INVALID']);
      const noTemplate = await server.api('POST', '/v1/bulk-tasks?templateName=nope', undefined, { rawBody: '{"ThingName":"x"}\n', contentType: 'application/x-ndjson' });
      expect([noTemplate.status, (noTemplate.body as { code: string }).code]).toEqual([404, 'REGISTRY_TEMPLATE_NOT_FOUND']);
      const empty = await server.api('POST', '/v1/bulk-tasks?templateName=bulk', undefined, { rawBody: '\n\n', contentType: 'application/x-ndjson' });
      expect((empty.body as { code: string }).code).toBe('PROVISIONING_BULK_INPUT_EMPTY');
      const unknown = await server.api('GET', '/v1/bulk-tasks/00000000-0000-4000-8000-000000000000');
      expect([unknown.status, (unknown.body as { code: string }).code]).toEqual([404, 'PROVISIONING_BULK_TASK_NOT_FOUND']);
      const token = async (role: string): Promise<string> => ((await server.api('POST', '/v1/tokens', { role, name: `bulk-${role}` })).body as { token: string }).token;
      const maker = await token('manufacturer');
      const t = await server.api('POST', '/v1/bulk-tasks?templateName=bulk', undefined, { token: maker, rawBody: lines(1, factory, 'maker-')[0] ?? '', contentType: 'application/x-ndjson' });
      expect(t.status).toBe(201);
      expect(await finished(server, (t.body as TaskView).taskId)).toMatchObject({ succeeded: 1 });
      const installer = await server.api('GET', '/v1/bulk-tasks', undefined, { token: await token('installer') });
      expect(installer.status).toBe(403);
    });

    it('accepts CSV through the CLI and prints plain progress lines without a TTY; results download to a file', async () => {
      rows = lines(5, factory, 'csv-').map((l) => JSON.parse(l) as { ThingName: string; CertificatePem: string });
      const csv = ['ThingName,CertificatePem,Batch', ...rows.map((r) => `${r.ThingName},"${r.CertificatePem}",b2`)].join('\r\n');
      writeFileSync(path.join(tmp, 'devices.csv'), csv);
      const r = await server.cli(['bulk', 'start', '--template', 'bulk', '--file', path.join(tmp, 'devices.csv'), '--format', 'csv', '--wait', '--interval', '100']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/completed 5\/5 \(100\.0%\) \d+\/s ETA \S+ errors 0/);
      const taskId = /taskId: (\S+)/.exec(r.stdout)?.[1] ?? '';
      expect((await server.api('GET', '/v1/things/csv-3')).body).toMatchObject({ attributes: { batch: 'b2' } });
      const out = path.join(tmp, 'results.jsonl');
      expect((await server.cli(['bulk', 'results', taskId, '--out', out])).code).toBe(0);
      expect(jsonLines(readFileSync(out, 'utf8'))).toHaveLength(5);
      const described = await server.cli(['--json', 'bulk', 'describe', taskId]);
      expect(JSON.parse(described.stdout)).toMatchObject({ status: 'COMPLETED', succeeded: 5, total: 5 });
      // without --format a .csv file is read as CSV (it was read as JSON lines, and every line failed)
      const more = lines(2, factory, 'csv-auto-').map((l) => JSON.parse(l) as { ThingName: string; CertificatePem: string });
      writeFileSync(path.join(tmp, 'more.CSV'), ['ThingName,CertificatePem', ...more.map((m) => `${m.ThingName},"${m.CertificatePem}"`)].join('\n'));
      const inferred = await server.cli(['--json', 'bulk', 'start', '--template', 'bulk', '--file', path.join(tmp, 'more.CSV'), '--wait', '--interval', '100']);
      expect(inferred.code, inferred.stderr).toBe(0);
      expect(JSON.parse(inferred.stdout)).toMatchObject({ format: 'csv', status: 'COMPLETED', succeeded: 2, failed: 0 });
      // a task whose lines partly failed is printed, then --wait exits 1: a script must not take it for success
      const mixed = lines(1, factory, 'csv-mixed-').map((l) => JSON.parse(l) as { ThingName: string; CertificatePem: string });
      writeFileSync(path.join(tmp, 'mixed.csv'), ['ThingName,CertificatePem', ...mixed.map((m) => `${m.ThingName},"${m.CertificatePem}"`), 'bad name!,nope'].join('\n'));
      const partly = await server.cli(['bulk', 'start', '--template', 'bulk', '--file', path.join(tmp, 'mixed.csv'), '--wait', '--interval', '100']);
      expect(partly.code).toBe(1);
      const mixedId = /taskId: (\S+)/.exec(partly.stdout)?.[1] ?? '';
      expect(partly.stdout).toContain('succeeded: 1');
      expect(partly.stderr).toBe(`error CLI_BULK_INCOMPLETE: 1 of 2 lines of task ${mixedId} failed (gatehouse bulk errors ${mixedId} lists them)\n`);
      expect(jsonLines<{ line: number }>((await server.cli(['bulk', 'errors', mixedId])).stdout).map((e) => e.line)).toEqual([2]);
    });

    it('CSV and JSON lines: a stray or unclosed quote fails its line alone; blank lines and a byte order mark are skipped; an extra column is named', async () => {
      // A stray quote merged every following line into one record (total 1), and so did a quoted field never closed.
      const csv = '\uFEFF\r\nThingName,Batch\r\nq-mq1,12"panel\r\nq-mq2,b2\r\nq-cq2,"unterminated\r\nq-mq3,b3\r\n\r\nq-mq4,"b4"\r\n';
      const created = await upload(server, csv, 'templateName=bulk', 'text/csv');
      expect(created.total).toBe(5);
      const t = await finished(server, created.taskId);
      expect(t).toMatchObject({ status: 'COMPLETED', total: 5, processed: 5, succeeded: 3, failed: 2 });
      const errors = jsonLines<{ line: number; code: string; message: string }>((await server.api('GET', `/v1/bulk-tasks/${t.taskId}/errors`)).body as string);
      // the quote stays in the value (which an attribute may not hold); the unclosed field fails alone
      expect(errors.map((e) => [e.line, e.code])).toEqual([[2, 'TEMPLATE_ATTRIBUTE_INVALID'], [4, 'PROVISIONING_BULK_LINE_MALFORMED']]);
      expect(errors[1]?.message).toContain('quoted field 2 is not closed on its line');
      expect((await server.api('GET', '/v1/things/q-mq4')).body).toMatchObject({ attributes: { batch: 'b4' } });
      // A blank line before the header made the header count as a device: "completed 2/3", exit code 0.
      writeFileSync(path.join(tmp, 'blank.csv'), '\nThingName\nlb-1\nlb-2\n');
      const r = await server.cli(['--json', 'bulk', 'start', '--template', 'bulk', '--file', path.join(tmp, 'blank.csv'), '--wait', '--interval', '100']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'COMPLETED', total: 2, processed: 2, succeeded: 2, failed: 0 });
      // A byte order mark made JSON line 1 "not valid JSON".
      const bom = await finished(server, (await upload(server, '\uFEFF{"ThingName":"bom-1"}\n{"ThingName":"bom-2"}\n', 'templateName=bulk')).taskId);
      expect(bom).toMatchObject({ status: 'COMPLETED', total: 2, succeeded: 2, failed: 0 });
      // An extra column failed every line without naming it.
      const extra = await finished(server, (await upload(server, 'ThingName,Serial\nx-1,S1\n', 'templateName=bulk', 'text/csv')).taskId);
      expect(extra).toMatchObject({ total: 1, failed: 1 });
      const named = (await server.api('GET', `/v1/bulk-tasks/${extra.taskId}/errors`)).body; // one JSON line: parsed by the helper
      expect(named).toMatchObject({ line: 1, code: 'TEMPLATE_PARAMETER_UNKNOWN', message: 'The template does not declare the parameter "Serial"' });
    });

    it('generates device lines with their keys, and never overwrites a keys file', async () => {
      const out = path.join(tmp, 'gen.jsonl');
      const keysOut = path.join(tmp, 'gen.keys.jsonl');
      const g = await server.cli(['--json', 'bulk', 'generate', '--count', '3', '--csr', '--out', out, '--keys-out', keysOut, '--jobs', '1']);
      expect(g.code, g.stderr).toBe(0);
      expect(jsonLines(readFileSync(out, 'utf8'))).toHaveLength(3);
      const keys = readFileSync(keysOut, 'utf8');
      expect(jsonLines(keys)).toHaveLength(3);
      const again = await server.cli(['bulk', 'generate', '--count', '3', '--csr', '--out', out, '--keys-out', keysOut, '--jobs', '1']);
      expect(again.stderr).toBe(`error CLI_OUTPUT_EXISTS: --out ${out} exists already; choose another file (key material is never overwritten)\n`);
      const keysAgain = await server.cli(['bulk', 'generate', '--count', '3', '--csr', '--out', path.join(tmp, 'gen-2.jsonl'), '--keys-out', keysOut, '--jobs', '1']);
      expect(keysAgain.stderr).toBe(`error CLI_OUTPUT_EXISTS: --keys-out ${keysOut} exists already; choose another file (key material is never overwritten)\n`);
      expect(readFileSync(keysOut, 'utf8')).toBe(keys);
      // the CSRs and their keys in one file would leave the keys nowhere
      const same = path.join(tmp, 'same.jsonl');
      expect((await server.cli(['bulk', 'generate', '--count', '3', '--csr', '--out', same, '--keys-out', same, '--jobs', '1'])).stderr).toBe('error CLI_USAGE_INVALID: --out and --keys-out must be different files\n');
      expect(existsSync(same)).toBe(false);
      expect((await server.cli(['bulk', 'generate', '--count', 'ten', '--out', out])).stderr).toBe('error CLI_USAGE_INVALID: --count must be a whole number from 1, got "ten"\n');
      // outputs that cannot be written are refused before any key is made; a missing input names itself
      const nowhere = path.join(tmp, 'no-such-dir', 'devices.jsonl');
      expect((await server.cli(['bulk', 'generate', '--count', '3', '--out', nowhere])).stderr).toBe(`error CLI_USAGE_INVALID: cannot write --out ${nowhere}: the directory ${path.join(tmp, 'no-such-dir')} does not exist\n`);
      const keysNowhere = path.join(tmp, 'no-such-dir', 'keys.jsonl');
      expect((await server.cli(['bulk', 'generate', '--count', '3', '--out', path.join(tmp, 'unwritten.jsonl'), '--keys-out', keysNowhere])).stderr).toBe(`error CLI_USAGE_INVALID: cannot write --keys-out ${keysNowhere}: the directory ${path.join(tmp, 'no-such-dir')} does not exist\n`);
      expect(existsSync(path.join(tmp, 'unwritten.jsonl'))).toBe(false);
      expect((await server.cli(['bulk', 'start', '--template', 'bulk', '--file', path.join(tmp, 'absent.jsonl')])).stderr).toBe(`error CLI_FILE_UNREADABLE: cannot read the bulk input ${path.join(tmp, 'absent.jsonl')}: no such file\n`);
      // a bad --interval is refused before the task is uploaded and started (it used to run anyway)
      const tasksBefore = ((await server.api('GET', '/v1/bulk-tasks?maxResults=250')).body.tasks as unknown[]).length;
      expect((await server.cli(['bulk', 'start', '--template', 'bulk', '--file', out, '--wait', '--interval', '0'])).stderr).toBe('error CLI_USAGE_INVALID: --interval must be a whole number from 1, got "0"\n');
      expect(((await server.api('GET', '/v1/bulk-tasks?maxResults=250')).body.tasks as unknown[]).length).toBe(tasksBefore);
      expect((await server.cli(['manifest', 'import', path.join(tmp, 'absent.csv'), '--vendor', 'espressif', '--template', 'bulk'])).stderr).toBe(`error CLI_FILE_UNREADABLE: cannot read the manifest ${path.join(tmp, 'absent.csv')}: no such file\n`);
    });

    it('follows the template OverrideSettings when a device exists with other attributes', async () => {
      const withOverride = (action: string): string => JSON.stringify({ ...TEMPLATE, Resources: { ...TEMPLATE.Resources, thing: { ...TEMPLATE.Resources.thing, OverrideSettings: { AttributePayload: action } } } });
      for (const action of ['FAIL', 'REPLACE']) {
        expect((await server.api('POST', '/v1/provisioning-templates', { templateName: `bulk-${action.toLowerCase()}`, templateBody: withOverride(action) })).status).toBe(201);
      }
      const body = rows.slice(0, 2).map((r) => JSON.stringify({ ...r, Batch: 'b3' })).join('\n');
      // DO_NOTHING (the default): the devices are there, their attributes are kept.
      expect(await finished(server, (await upload(server, body, 'templateName=bulk')).taskId)).toMatchObject({ alreadyPresent: 2, failed: 0 });
      expect((await server.api('GET', '/v1/things/csv-1')).body).toMatchObject({ attributes: { batch: 'b2' } });
      const failed = await finished(server, (await upload(server, body, 'templateName=bulk-fail')).taskId);
      expect(failed).toMatchObject({ alreadyPresent: 0, failed: 2 });
      const errs = jsonLines<{ code: string }>((await server.api('GET', `/v1/bulk-tasks/${failed.taskId}/errors`)).body as string);
      expect(errs.map((e) => e.code)).toEqual(['PROVISIONING_OVERRIDE_CONFLICT', 'PROVISIONING_OVERRIDE_CONFLICT']);
      expect(await finished(server, (await upload(server, body, 'templateName=bulk-replace')).taskId)).toMatchObject({ alreadyPresent: 2, failed: 0 });
      expect((await server.api('GET', '/v1/things/csv-2')).body).toMatchObject({ attributes: { batch: 'b3' } });
    });

    it('imports Microchip (verified, tampered entries refused), TrustMANAGER, Espressif, PEM-directory and Infineon manifests', async () => {
      const signer = path.join(MANIFESTS, 'MCHP_manifest_signer_5_Mar_6-2024_noExpiration.crt');
      // A tampered copy: one payload byte and one signature byte flipped.
      const entries = JSON.parse(readFileSync(path.join(MANIFESTS, 'microchip-ECC608C-TNGTLSU-B.json'), 'utf8')) as Record<string, string>[];
      const flip = (s: string, at: number): string => {
        const b = Buffer.from(s, 'base64url');
        b[at] = (b[at] ?? 0) ^ 1;
        return b.toString('base64url');
      };
      if (entries[3] === undefined || entries[7] === undefined) throw new Error('sample changed');
      entries[3]['payload'] = flip(entries[3]['payload'] ?? '', 40);
      entries[7]['signature'] = flip(entries[7]['signature'] ?? '', 5);
      writeFileSync(path.join(tmp, 'tampered.json'), JSON.stringify(entries));
      const report = path.join(tmp, 'refused.jsonl');
      const mchp = await server.cli(['--json', 'manifest', 'import', '--vendor', 'microchip', '--template', 'bulk', '--verifier', signer, '--report', report, '--wait', '--interval', '100', path.join(tmp, 'tampered.json')]);
      // --wait prints the task, then exits 1: lines failed
      expect(mchp.code, mchp.stderr).toBe(1);
      const mt = JSON.parse(mchp.stdout) as TaskView;
      expect(mchp.stderr).toContain('manifest: 8 devices, 2 refused entries');
      expect(mchp.stderr).toContain(`error CLI_BULK_INCOMPLETE: 2 of 10 lines of task ${mt.taskId} failed (gatehouse bulk errors ${mt.taskId} lists them)`);
      expect(mt).toMatchObject({ status: 'COMPLETED', total: 10, succeeded: 8, failed: 2 });
      const errs = jsonLines<{ line: number; code: string }>((await server.api('GET', `/v1/bulk-tasks/${mt.taskId}/errors`)).body as string);
      expect(errs.map((e) => [e.line, e.code])).toEqual([[4, 'PROVISIONING_MANIFEST_SIGNATURE_INVALID'], [8, 'PROVISIONING_MANIFEST_SIGNATURE_INVALID']]);
      expect(jsonLines(readFileSync(report, 'utf8'))).toHaveLength(2);
      expect((await server.api('GET', '/v1/things/sn0123F2408EA1FCF201')).status).toBe(200);

      const tm = await server.cli(['--json', 'manifest', 'import', '--vendor', 'microchip', '--template', 'bulk', '--verifier', signer, '--wait', path.join(MANIFESTS, 'microchip-ECC608-TMNGTLSS-B.json')]);
      expect(tm.code, tm.stderr).toBe(1);
      expect(tm.stderr).toContain('error CLI_BULK_INCOMPLETE: 10 of 10 lines');
      expect(JSON.parse(tm.stdout)).toMatchObject({ status: 'COMPLETED', total: 10, succeeded: 0, failed: 10 });

      const esp = await server.cli(['--json', 'manifest', 'import', '--vendor', 'espressif', '--template', 'bulk', '--wait', path.join(MANIFESTS, 'espressif.csv')]);
      expect(esp.code, esp.stderr).toBe(0);
      expect(JSON.parse(esp.stdout)).toMatchObject({ status: 'COMPLETED', total: 7, succeeded: 7, failed: 0 });
      expect((await server.api('GET', '/v1/things/4BA2BB8764BD')).status).toBe(200);

      const dir = path.join(tmp, 'pems');
      mkdirSync(path.join(dir, 'sub'), { recursive: true });
      for (const name of ['pem-a', 'pem-b']) {
        ws.key(name);
        ws.csr(name, `/CN=${name}`);
        writeFileSync(path.join(dir, name === 'pem-a' ? 'pem-a.pem' : 'sub/pem-b.crt'), ws.sign(name, 'other'));
      }
      const pd = await server.cli(['--json', 'manifest', 'import', '--vendor', 'pem-dir', '--template', 'bulk', '--wait', dir]);
      expect(pd.code, pd.stderr).toBe(0);
      expect(JSON.parse(pd.stdout)).toMatchObject({ status: 'COMPLETED', total: 2, succeeded: 2 });
      expect((await server.api('GET', '/v1/things/pem-b')).status).toBe(200);
      // The same certificates as a zip: already present.
      execFileSync('7z', ['a', '-tzip', '-bd', path.join(tmp, 'pems.zip'), `${dir}/*`], { stdio: 'ignore' });
      const zip = await server.cli(['--json', 'manifest', 'import', '--vendor', 'pem-dir', '--template', 'bulk', '--wait', path.join(tmp, 'pems.zip')]);
      expect(zip.code, zip.stderr).toBe(0);
      expect(JSON.parse(zip.stdout)).toMatchObject({ status: 'COMPLETED', total: 2, alreadyPresent: 2 });

      // Infineon OPTIGA Trust M: an archive of archives; the E0E0 certificates, thing name = CN.
      const inf = await server.cli(['--json', 'manifest', 'import', '--vendor', 'infineon', '--template', 'bulk', '--wait', path.join(MANIFESTS, 'infineon.7z')]);
      expect(inf.code, inf.stderr).toBe(0);
      expect(JSON.parse(inf.stdout)).toMatchObject({ status: 'COMPLETED', total: 200, succeeded: 200, failed: 0 });
      // archive problems carry a code: a bundle without the slot's archive, a damaged archive, a missing manifest
      const noSlot = await server.cli(['manifest', 'import', '--vendor', 'infineon', '--template', 'bulk', '--slot', 'E0F0', path.join(MANIFESTS, 'infineon.7z')]);
      expect(noSlot.stderr).toBe('error CLI_ARCHIVE_UNREADABLE: the bundle holds no *_E0F0_Certs.7z archive (data object E0F0; --slot names another)\n');
      writeFileSync(path.join(tmp, 'broken.zip'), 'not an archive');
      const broken = await server.cli(['manifest', 'import', '--vendor', 'pem-dir', '--template', 'bulk', path.join(tmp, 'broken.zip')]);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/^error CLI_ARCHIVE_UNREADABLE: cannot extract broken\.zip: /);
      expect((await server.cli(['manifest', 'import', '--vendor', 'pem-dir', '--template', 'bulk', path.join(tmp, 'absent')])).stderr).toBe(`error CLI_FILE_UNREADABLE: cannot read the manifest ${path.join(tmp, 'absent')}: no such file\n`);
      const badReport = path.join(tmp, 'broken.zip', 'report.jsonl');
      expect((await server.cli(['manifest', 'import', '--vendor', 'pem-dir', '--template', 'bulk', '--report', badReport, dir])).stderr).toBe(`error CLI_USAGE_INVALID: cannot write --report ${badReport}: ${path.join(tmp, 'broken.zip')} is not a directory\n`);
    });

    it('stops and resumes, and after kill -9 of the server resumes with no device lost or duplicated', async () => {
      const count = 6000;
      const file = lines(count, factory, 'crash-').join('\n');
      const created = await upload(server, file, 'templateName=bulk&format=jsonl');
      const stopped = (await server.api('POST', `/v1/bulk-tasks/${created.taskId}/stop`)).body as TaskView;
      expect(stopped.status).toBe('STOPPED');
      expect(stopped.processed).toBeLessThan(count);
      expect(((await server.api('POST', `/v1/bulk-tasks/${created.taskId}/stop`)).body as { code: string }).code).toBe('PROVISIONING_BULK_TASK_STATE_INVALID');
      expect((await server.api('POST', `/v1/bulk-tasks/${created.taskId}/resume`)).status).toBe(200);
      await waitFor(async () => {
        const t = (await server.api('GET', `/v1/bulk-tasks/${created.taskId}`)).body as TaskView;
        return t.processed > stopped.processed + 100 ? t : undefined;
      }, 30_000, 'progress after resume');
      await server.stop('SIGKILL');
      const killedAt = (await waitFor(async () => (server.proc.exitCode !== null || server.proc.signalCode !== null ? true : undefined))) && Date.now();
      expect(killedAt).toBeGreaterThan(0);
      rmSync(path.join(server.dataDir, 'server.json'), { force: true });
      server = await startServer({ dialect, dataDir: server.dataDir, databaseUrl: server.databaseUrl, keepDatabase: true, env: { GATEHOUSE_BULK_BATCH_LINES: '1000' } });
      const stale = (await server.api('GET', `/v1/bulk-tasks/${created.taskId}`)).body as TaskView;
      expect(stale.processed).toBeLessThan(count);
      const resumed = await server.cli(['bulk', 'resume', created.taskId, '--wait', '--interval', '200']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const done = await finished(server, created.taskId);
      expect(done).toMatchObject({ status: 'COMPLETED', total: count, processed: count, succeeded: count, alreadyPresent: 0, failed: 0, checkpointLine: count });
      const results = jsonLines<{ line: number; thingName: string; certificateId: string }>((await server.api('GET', `/v1/bulk-tasks/${created.taskId}/results`)).body as string);
      expect(results).toHaveLength(count);
      expect(new Set(results.map((r) => r.thingName)).size).toBe(count);
      expect(new Set(results.map((r) => r.certificateId)).size).toBe(count);
      let things = 0;
      let next: string | undefined;
      do {
        const page = (await server.api('GET', `/v1/things?namePrefix=crash-&maxResults=250${next === undefined ? '' : `&nextToken=${encodeURIComponent(next)}`}`)).body as { things: unknown[]; nextToken?: string | null };
        things += page.things.length;
        next = page.nextToken ?? undefined;
      } while (next !== undefined);
      expect(things).toBe(count);
      expect((await server.api('GET', '/v1/audit/verify')).body).toMatchObject({ ok: true });
    });

    /** The server's database, opened beside it (what an attacker with a copy of it would read). */
    async function withDatabase<T>(fn: (store: Store) => Promise<T>): Promise<T> {
      const store = await openStore({ databaseUrl: server.databaseUrl, dataDir: server.dataDir });
      try {
        return await fn(store);
      } finally {
        await store.close();
      }
    }

    /** Uploads `count` thing-only lines, waits until some are done, stops the task and returns it STOPPED part-way. */
    async function stoppedTask(prefix: string, count: number, templateName: string): Promise<TaskView> {
      const created = await upload(server, Array.from({ length: count }, (_x, i) => JSON.stringify({ ThingName: `${prefix}${i + 1}` })).join('\n'), `templateName=${templateName}`);
      await waitFor(async () => (((await server.api('GET', `/v1/bulk-tasks/${created.taskId}`)).body as TaskView).processed >= 1000 ? true : undefined), 30_000, 'first batches');
      const stopped = (await server.api('POST', `/v1/bulk-tasks/${created.taskId}/stop`)).body as TaskView;
      expect(stopped.status).toBe('STOPPED');
      expect(stopped.processed).toBeLessThan(count);
      return stopped;
    }

    it('pins a task to the template version it started with: a resume after a new default applies that version, or refuses once it is deleted', async () => {
      writeFileSync(path.join(tmp, 'tver-v1.json'), versionedTemplate('v1'));
      writeFileSync(path.join(tmp, 'tver-v2.json'), versionedTemplate('v2'));
      expect((await server.cli(['template', 'create', 'tver', path.join(tmp, 'tver-v1.json')])).code).toBe(0);
      const count = 12_000;
      const stopped = await stoppedTask('pin-', count, 'tver');
      expect(stopped.templateVersionId).toBe(1);
      const v2 = await server.cli(['--json', 'template', 'create-version', 'tver', path.join(tmp, 'tver-v2.json'), '--set-as-default']);
      expect(JSON.parse(v2.stdout)).toMatchObject({ versionId: 2, isDefaultVersion: true });
      const resumed = await server.cli(['--json', 'bulk', 'resume', stopped.taskId, '--wait', '--interval', '200']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 'COMPLETED', succeeded: count, templateVersionId: 1 });
      // early and late devices alike were made by version 1
      for (const name of ['pin-1', `pin-${count}`]) expect((await server.api('GET', `/v1/things/${name}`)).body).toMatchObject({ attributes: { madeBy: 'v1' } });
      expect(((await server.api('GET', '/v1/things?namePrefix=pin-&attributeName=madeBy&attributeValue=v2')).body as { things: unknown[] }).things).toEqual([]);
      const described = JSON.parse((await server.cli(['--json', 'bulk', 'describe', stopped.taskId])).stdout) as TaskView;
      expect(described.templateVersionId).toBe(1);

      // a task on version 2; version 1 made the default again and version 2 deleted: resume refuses, the task stays STOPPED
      const second = await stoppedTask('gone-', count, 'tver');
      expect(second.templateVersionId).toBe(2);
      expect((await server.cli(['template', 'update', 'tver', '--default-version', '1'])).code).toBe(0);
      expect((await server.cli(['template', 'delete-version', 'tver', '2'])).code).toBe(0);
      const refused = await server.cli(['bulk', 'resume', second.taskId]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error PROVISIONING_BULK_TEMPLATE_VERSION_GONE: task \S+ applies version 2 of template "tver", which was deleted/);
      const api = await server.api('POST', `/v1/bulk-tasks/${second.taskId}/resume`);
      expect([api.status, (api.body as { code: string }).code]).toEqual([409, 'PROVISIONING_BULK_TEMPLATE_VERSION_GONE']);
      expect((await server.api('GET', `/v1/bulk-tasks/${second.taskId}`)).body).toMatchObject({ status: 'STOPPED', processed: second.processed, templateVersionId: 2 });
      // the OpenAPI document describes the version of a task
      const doc = (await server.api('GET', '/v1/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: Record<string, unknown> } }> }> }>> };
      expect(doc.paths['/v1/bulk-tasks/{taskId}']?.['get']?.responses['200']?.content['application/json']?.schema.properties).toHaveProperty('templateVersionId');
    }, 180_000);

    it('keeps the private keys it generates sealed in the database, opens them only for the results, logs none, and seals keys of an earlier version at start', async () => {
      const t = await finished(server, (await upload(server, ['sealed-1', 'sealed-2'].map((n) => JSON.stringify({ ThingName: n })).join('\n'), 'templateName=bulk')).taskId);
      expect(t).toMatchObject({ status: 'COMPLETED', succeeded: 2 });
      const stored = await withDatabase((db) => db.db.selectFrom('bulk_task_results').select(['line_no', 'private_key_pem']).where('task_id', '=', t.taskId).orderBy('line_no').execute());
      expect(stored.map((r) => r.private_key_pem?.startsWith('gh-sealed-v1:'))).toEqual([true, true]);
      expect(JSON.stringify(stored)).not.toContain('PRIVATE KEY');
      const out = path.join(tmp, 'sealed-results.jsonl');
      expect((await server.cli(['bulk', 'results', t.taskId, '--out', out])).code).toBe(0);
      const keys = jsonLines<{ thingName: string; privateKeyPem?: string }>(readFileSync(out, 'utf8'));
      expect(keys.map((k) => k.privateKeyPem?.includes('BEGIN PRIVATE KEY'))).toEqual([true, true]);
      // the download is its owner's alone, and never replaces a file (it was 0644, and overwrote one)
      expect(statSync(out).mode & 0o777).toBe(0o600);
      expect((await server.cli(['bulk', 'results', t.taskId, '--out', out])).stderr).toBe(`error CLI_OUTPUT_EXISTS: --out ${out} exists already; choose another file (key material is never overwritten)\n`);
      const nowhere = path.join(tmp, 'no-such-dir', 'r.jsonl');
      expect((await server.cli(['bulk', 'results', t.taskId, '--out', nowhere])).stderr).toBe(`error CLI_USAGE_INVALID: cannot write --out ${nowhere}: the directory ${path.join(tmp, 'no-such-dir')} does not exist\n`);
      // every download of the keys is in the audit log, with who downloaded them
      const audit = (await server.api('GET', '/v1/audit?maxResults=20')).body.entries as { action: string; target: string; actor: string }[];
      expect(audit.filter((e) => e.action === 'bulk.task.results.download' && e.target === `bulk/${t.taskId}`)).toHaveLength(1);

      // a row as an earlier version wrote it (key in clear): still downloadable, and sealed at the next start
      const clear = keys[1]?.privateKeyPem ?? '';
      await withDatabase(async (db) => {
        await db.db.updateTable('bulk_task_results').set({ private_key_pem: clear }).where('task_id', '=', t.taskId).where('line_no', '=', 2).execute();
        await db.db.deleteFrom('system_settings').where('key', '=', 'bulk.private_keys_sealed').execute();
      });
      expect(jsonLines<{ privateKeyPem?: string }>((await server.api('GET', `/v1/bulk-tasks/${t.taskId}/results`)).body as string)[1]?.privateKeyPem).toBe(clear);
      const before = server.output();
      await server.stop();
      rmSync(path.join(server.dataDir, 'server.json'), { force: true });
      server = await startServer({ dialect, dataDir: server.dataDir, databaseUrl: server.databaseUrl, keepDatabase: true, env: { GATEHOUSE_BULK_BATCH_LINES: '1000' } });
      expect(server.output()).toContain('sealed the bulk task private keys stored in clear by an earlier version');
      const resealed = await withDatabase((db) => db.db.selectFrom('bulk_task_results').select('private_key_pem').where('task_id', '=', t.taskId).where('line_no', '=', 2).executeTakeFirstOrThrow());
      expect(resealed.private_key_pem).toMatch(/^gh-sealed-v1:/);
      expect(jsonLines<{ privateKeyPem?: string }>((await server.api('GET', `/v1/bulk-tasks/${t.taskId}/results`)).body as string)[1]?.privateKeyPem).toBe(clear);
      for (const log of [before, server.output()]) expect(log).not.toContain('PRIVATE KEY');
    });

    it('lists every task with maxResults and nextToken; bulk list prints them all', async () => {
      // more tasks than one page of the CLI (250) and the old default (100): rows of finished tasks, written beside the server
      const existing = ((await server.api('GET', '/v1/bulk-tasks?maxResults=250')).body as { tasks: TaskView[] }).tasks.length;
      await withDatabase(async (db) => {
        const now = new Date().toISOString();
        await db.transaction(async (trx) => {
          for (let i = 0; i < 260; i += 1) {
            await trx.insertInto('bulk_tasks').values({
              tenant_id: 'default', task_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, template_name: 'bulk', input_format: 'jsonl', input_path: '/nonexistent', status: 'COMPLETED',
              total_lines: 1, processed_lines: 1, succeeded: 1, already_present: 0, failed: 0, options: '{}', error: null, created_at: now, updated_at: now, template_version_id: 1, template_body_sha256: null,
            }).execute();
          }
        });
      });
      const total = existing + 260;
      const ids: string[] = [];
      let next: string | undefined;
      do {
        const r = await server.api('GET', `/v1/bulk-tasks?maxResults=100${next === undefined ? '' : `&nextToken=${encodeURIComponent(next)}`}`);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const page = r.body as { tasks: TaskView[]; nextToken?: string };
        ids.push(...page.tasks.map((t) => t.taskId));
        next = page.nextToken;
      } while (next !== undefined);
      expect(ids).toHaveLength(total);
      expect(new Set(ids).size).toBe(total);
      const bad = await server.api('GET', '/v1/bulk-tasks?nextToken=bm9wZQ');
      expect([bad.status, (bad.body as { code: string }).code]).toEqual([400, 'REGISTRY_PAGINATION_TOKEN_INVALID']);
      const listed = await server.cli(['--json', 'bulk', 'list']);
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as TaskView[]).map((t) => t.taskId)).toEqual(ids);
    }, 120_000);
  });
}
