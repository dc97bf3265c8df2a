import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../../test/support/dialects.ts';
import { openTestInstallation } from '../../../test/support/installation.ts';
import type { TestInstallation } from '../../../test/support/installation.ts';
import * as pki from '../../pki/index.ts';
import * as registry from '../../registry/index.ts';
import { BulkTaskRunner, bulkPrivateKeyLabel, resealBulkPrivateKeys } from './bulk-task-runner.ts';
import type { BulkTaskView } from './bulk-task-runner.ts';

/** A template whose thing records which version made it (attribute `made-by`), with a certificate resource. */
const template = (version: string): string =>
  JSON.stringify({
    Parameters: { ThingName: { Type: 'String' }, MadeBy: { Type: 'String', Default: version } },
    Resources: {
      thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'ThingName' }, AttributePayload: { 'made-by': { Ref: 'MadeBy' } } } },
      certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    },
  });

const devices = (prefix: string, count: number): Readable =>
  Readable.from([Buffer.from(Array.from({ length: count }, (_x, i) => JSON.stringify({ ThingName: `${prefix}${i + 1}` })).join('\n'))]);

for (const dialect of DIALECTS) {
  describe(`bulk task runner (${dialect.name})`, () => {
    let inst: TestInstallation;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gh-bulk-unit-'));
    const ctx = { tenantId: registry.DEFAULT_TENANT, actor: 'test' };
    const runners: BulkTaskRunner[] = [];
    const runner = (): BulkTaskRunner => {
      const r = new BulkTaskRunner({ store: inst.store, cas: inst.cas, dataDir, batchSize: 2 });
      runners.push(r);
      return r;
    };
    /** A runner that records tasks but never runs them (as a server that stopped, or crashed, right after the upload). */
    const closedRunner = async (): Promise<BulkTaskRunner> => {
      const r = runner();
      await r.close();
      return r;
    };
    const finished = async (r: BulkTaskRunner, taskId: string): Promise<BulkTaskView> => {
      for (let i = 0; i < 400; i += 1) {
        const t = await r.getTask(ctx.tenantId, taskId);
        if (t.status !== 'RUNNING' && t.status !== 'STOPPING') return t;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`task ${taskId} did not finish`);
    };
    const results = async (r: BulkTaskRunner, taskId: string): Promise<{ line: number; thingName: string; certificatePem?: string; privateKeyPem?: string }[]> => {
      let text = '';
      for await (const chunk of r.streamResults(ctx.tenantId, taskId, 'results')) text += chunk;
      return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { line: number; thingName: string; certificatePem?: string; privateKeyPem?: string });
    };
    const madeBy = async (thingName: string): Promise<string | undefined> => (await registry.getThing(inst.store.db, ctx.tenantId, thingName)).attributes['made-by'];
    const sealer = (kek: Uint8Array): registry.SecretSealer => ({ seal: (label, s) => pki.sealText(kek, s, label), open: (label, s) => pki.openSealedText(kek, s, label), isSealed: pki.isSealedText });

    beforeAll(async () => {
      inst = await openTestInstallation(dialect);
      registry.useSecretSealer(sealer(inst.kek));
      await inst.store.transaction((trx) => registry.createProvisioningTemplate(trx, ctx, { templateName: 'tver', templateBody: template('v1') }));
    });
    afterAll(async () => {
      for (const r of runners) await r.close();
      registry.useSecretSealer(undefined);
      await inst.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('seals the private keys it generates under the KEK, bound to their row, and opens them only for the results', async () => {
      const r = runner();
      const task = await r.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices('sealed-', 3), maxBytes: 1 << 20 });
      expect(await finished(r, task.taskId)).toMatchObject({ status: 'COMPLETED', succeeded: 3 });
      const rows = await inst.store.db.selectFrom('bulk_task_results').select(['line_no', 'private_key_pem']).where('task_id', '=', task.taskId).orderBy('line_no').execute();
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row.private_key_pem).toMatch(/^gh-sealed-v1:/);
        expect(row.private_key_pem).not.toContain('PRIVATE KEY');
      }
      // the download has each key in clear, and it is the key of the line's certificate
      const out = await results(r, task.taskId);
      expect(out.map((o) => o.line)).toEqual([1, 2, 3]);
      for (const o of out) {
        expect(o.privateKeyPem).toContain('BEGIN PRIVATE KEY');
        const cert = pki.parseCertificate(o.certificatePem ?? '');
        expect(createPublicKey(o.privateKeyPem ?? '').export({ type: 'spki', format: 'der' }).equals(cert.spkiDer)).toBe(true);
      }
      // a sealed key copied to another row does not open there
      await sql`update bulk_task_results set private_key_pem = ${rows[0]?.private_key_pem ?? ''} where task_id = ${task.taskId} and line_no = 2`.execute(inst.store.db);
      await expect(results(r, task.taskId)).rejects.toMatchObject({ code: 'PKI_KEK_MISMATCH' });
      // (the error names no key)
      await results(r, task.taskId).catch((error: unknown) => expect(String((error as Error).message)).not.toContain('PRIVATE KEY'));
    });

    it('still reads a key stored in clear by an earlier version, and seals it once at start', async () => {
      const r = runner();
      const task = await r.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices('legacy-', 2), maxBytes: 1 << 20 });
      await finished(r, task.taskId);
      const clear = pki.generateKeyPair('EC_P256').privateKeyPem;
      await sql`update bulk_task_results set private_key_pem = ${clear} where task_id = ${task.taskId} and line_no = 1`.execute(inst.store.db);
      expect((await results(r, task.taskId))[0]?.privateKeyPem).toBe(clear);
      await inst.store.db.deleteFrom('system_settings').where('key', '=', 'bulk.private_keys_sealed').execute();
      expect(await inst.store.transaction((trx) => resealBulkPrivateKeys(trx))).toBeGreaterThanOrEqual(1);
      expect(await inst.store.transaction((trx) => resealBulkPrivateKeys(trx))).toBe(0);
      const stored = await inst.store.db.selectFrom('bulk_task_results').select('private_key_pem').where('task_id', '=', task.taskId).where('line_no', '=', 1).executeTakeFirstOrThrow();
      expect(stored.private_key_pem).toMatch(/^gh-sealed-v1:/);
      expect(pki.openSealedText(inst.kek, stored.private_key_pem ?? '', bulkPrivateKeyLabel(task.taskId, 1))).toBe(clear);
      expect((await results(r, task.taskId))[0]?.privateKeyPem).toBe(clear);
    });

    it('resumes a task with the template version it started with, not the default of the day', async () => {
      const upload = await closedRunner();
      const task = await upload.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices('pin-', 5), maxBytes: 1 << 20 });
      expect(task).toMatchObject({ status: 'RUNNING', processed: 0, templateVersionId: 1 });
      const v2 = await inst.store.transaction((trx) => registry.createProvisioningTemplateVersion(trx, ctx, 'tver', { templateBody: template('v2'), setAsDefault: true }));
      expect(v2).toEqual({ versionId: 2, isDefaultVersion: true });
      const r = runner();
      expect(await r.resumeTask(ctx, task.taskId)).toMatchObject({ templateVersionId: 1 });
      expect(await finished(r, task.taskId)).toMatchObject({ status: 'COMPLETED', succeeded: 5, templateVersionId: 1 });
      for (let i = 1; i <= 5; i += 1) expect(await madeBy(`pin-${i}`)).toBe('v1');
      // a new task takes the default of its day, and keeps it
      const later = await r.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices('pin2-', 1), maxBytes: 1 << 20 });
      expect(await finished(r, later.taskId)).toMatchObject({ status: 'COMPLETED', templateVersionId: 2 });
      expect(await madeBy('pin2-1')).toBe('v2');
    });

    it('refuses to resume when its version was deleted, or deleted and its id reused, with PROVISIONING_BULK_TEMPLATE_VERSION_GONE', async () => {
      // tver: v1, v2 (default). A task on v2; v1 made the default, v2 deleted.
      const upload = await closedRunner();
      const task = await upload.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices('gone-', 2), maxBytes: 1 << 20 });
      expect(task.templateVersionId).toBe(2);
      await inst.store.transaction(async (trx) => {
        await registry.updateProvisioningTemplate(trx, ctx, 'tver', { defaultVersionId: 1 });
        await registry.deleteProvisioningTemplateVersion(trx, ctx, 'tver', 2);
      });
      const r = runner();
      await expect(r.resumeTask(ctx, task.taskId)).rejects.toMatchObject({ code: 'PROVISIONING_BULK_TEMPLATE_VERSION_GONE', kind: 'conflict' });
      // a new version gets id 2 again: another body, still refused
      await inst.store.transaction((trx) => registry.createProvisioningTemplateVersion(trx, ctx, 'tver', { templateBody: template('v2-again') }));
      await expect(r.resumeTask(ctx, task.taskId)).rejects.toMatchObject({ code: 'PROVISIONING_BULK_TEMPLATE_VERSION_GONE' });
      expect(await r.getTask(ctx.tenantId, task.taskId)).toMatchObject({ status: 'RUNNING', processed: 0, templateVersionId: 2 });
      await expect(registry.getThing(inst.store.db, ctx.tenantId, 'gone-1')).rejects.toMatchObject({ code: 'REGISTRY_THING_NOT_FOUND' });
    });

    it('pins a task of an earlier version (no version recorded) to the default at its next run', async () => {
      const upload = await closedRunner();
      const task = await upload.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices('old-', 1), maxBytes: 1 << 20 });
      await inst.store.db.updateTable('bulk_tasks').set({ template_version_id: null, template_body_sha256: null }).where('task_id', '=', task.taskId).execute();
      expect(await upload.getTask(ctx.tenantId, task.taskId)).toMatchObject({ templateVersionId: null });
      const r = runner();
      expect(await r.resumeTask(ctx, task.taskId)).toMatchObject({ templateVersionId: 1 });
      expect(await finished(r, task.taskId)).toMatchObject({ status: 'COMPLETED', succeeded: 1, templateVersionId: 1 });
    });

    it('lists every task page by page, newest first, with nextToken', async () => {
      const r = await closedRunner();
      for (let i = 0; i < 5; i += 1) await r.createTask(ctx, { templateName: 'tver', format: 'jsonl', input: devices(`list-${i}-`, 1), maxBytes: 1 << 20 });
      const all = await inst.store.db.selectFrom('bulk_tasks').select(['task_id', 'created_at']).where('tenant_id', '=', ctx.tenantId).execute();
      const expected = all.sort((a, b) => (a.created_at === b.created_at ? (a.task_id < b.task_id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1)).map((t) => t.task_id);
      expect(expected.length).toBeGreaterThan(6);
      const seen: string[] = [];
      let nextToken: string | undefined;
      let pages = 0;
      do {
        const page = await r.listTasks(ctx.tenantId, { maxResults: 3, nextToken });
        expect(page.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.items.map((t) => t.taskId));
        nextToken = page.nextToken;
        pages += 1;
      } while (nextToken !== undefined);
      expect(seen).toEqual(expected);
      expect(pages).toBe(Math.ceil(expected.length / 3));
      expect((await r.listTasks(ctx.tenantId)).items).toHaveLength(Math.min(expected.length, registry.PAGE_DEFAULT));
      await expect(r.listTasks(ctx.tenantId, { nextToken: 'bm90LWEtdG9rZW4' })).rejects.toMatchObject({ code: 'REGISTRY_PAGINATION_TOKEN_INVALID' });
      const noBar = Buffer.from(JSON.stringify({ k: 'no-separator' })).toString('base64url');
      await expect(r.listTasks(ctx.tenantId, { nextToken: noBar })).rejects.toMatchObject({ code: 'REGISTRY_PAGINATION_TOKEN_INVALID' });
    });
  });
}
