import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import { isSealedText, openSealedText, sealText } from '../pki/index.ts';
import type { Store } from '../store/index.ts';
import * as registry from './index.ts';

const HOOK_TEMPLATE = {
  Parameters: { SerialNumber: { Type: 'String' } },
  Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } } },
};

/** Webhook and pre-provisioning hook secrets: sealed under the KEK when written, opened when read; legacy rows resealed. */
for (const dialect of DIALECTS) {
  describe(`secret sealing (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    const ctx = { tenantId: 'default', actor: 'test' };
    const kek = randomBytes(32);
    const sealer: registry.SecretSealer = { seal: (label, s) => sealText(kek, s, label), open: (label, s) => openSealedText(kek, s, label), isSealed: isSealedText };

    beforeAll(async () => {
      registry.useSecretSealer(undefined);
      const s = await dialect.create();
      store = s.store;
      dispose = s.dispose;
      await registry.createTenant(store.db, 'default', 'localhost');
    });
    afterAll(async () => {
      registry.useSecretSealer(undefined);
      await dispose();
    });

    const storedWebhookSecrets = async (): Promise<string[]> => (await store.db.selectFrom('webhooks').select('secret').orderBy('created_at').orderBy('webhook_id').execute()).map((r) => r.secret);
    const storedHook = async (name: string): Promise<string> =>
      (await store.db.selectFrom('provisioning_templates').select('pre_provisioning_hook').where('template_name', '=', name).executeTakeFirstOrThrow()).pre_provisioning_hook ?? '';

    it('seals rows written before sealing existed, keeps them readable, and seals new ones at once', async () => {
      // an earlier version: no sealer, secrets in clear
      await store.transaction((trx) => registry.createWebhook(trx, ctx, { url: 'https://example.invalid/a', events: [], secret: 'legacy-webhook-secret-1' }));
      await store.transaction((trx) => registry.createProvisioningTemplate(trx, ctx, { templateName: 'legacy', templateBody: HOOK_TEMPLATE, preProvisioningHook: { type: 'webhook', url: 'https://example.invalid/h', secret: 'legacy-hook-secret-1' } }));
      expect(await storedWebhookSecrets()).toEqual(['legacy-webhook-secret-1']);

      registry.useSecretSealer(sealer);
      // readable before the reseal (a row in clear is read as is)
      expect((await registry.listAllWebhookTargets(store.db)).map((t) => t.secret)).toEqual(['legacy-webhook-secret-1']);
      expect(await store.transaction((trx) => registry.resealLegacySecrets(trx))).toBe(2);
      expect(await store.transaction((trx) => registry.resealLegacySecrets(trx))).toBe(0);
      const [sealedWebhook] = await storedWebhookSecrets();
      expect(sealedWebhook).toMatch(/^gh-sealed-v1:/);
      expect(await storedHook('legacy')).not.toContain('legacy-hook-secret-1');
      expect((await registry.listAllWebhookTargets(store.db)).map((t) => t.secret)).toEqual(['legacy-webhook-secret-1']);
      expect((await registry.getProvisioningTemplate(store.db, 'default', 'legacy')).preProvisioningHook).toMatchObject({ type: 'webhook', secret: 'legacy-hook-secret-1' });

      // new rows are sealed when written; an update of the template keeps its hook sealed
      await store.transaction((trx) => registry.createWebhook(trx, ctx, { url: 'https://example.invalid/b', events: [], secret: 'new-webhook-secret-22' }));
      expect((await storedWebhookSecrets()).every((secret) => /^gh-sealed-v1:/.test(secret))).toBe(true);
      await store.transaction((trx) => registry.updateProvisioningTemplate(trx, ctx, 'legacy', { enabled: false }));
      expect(await storedHook('legacy')).not.toContain('legacy-hook-secret-1');
      expect((await registry.getProvisioningTemplate(store.db, 'default', 'legacy')).preProvisioningHook).toMatchObject({ secret: 'legacy-hook-secret-1' });
      expect((await registry.listAllWebhookTargets(store.db)).map((t) => t.secret).sort()).toEqual(['legacy-webhook-secret-1', 'new-webhook-secret-22']);
    });

    it('refuses a sealed secret moved to another row, and one sealed under another KEK', async () => {
      const [first, second] = await storedWebhookSecrets();
      const ids = (await store.db.selectFrom('webhooks').select('webhook_id').orderBy('created_at').orderBy('webhook_id').execute()).map((r) => r.webhook_id);
      await sql`update webhooks set secret = ${first} where webhook_id = ${ids[1]}`.execute(store.db);
      await expect(registry.listAllWebhookTargets(store.db)).rejects.toMatchObject({ code: 'PKI_KEK_MISMATCH' });
      await sql`update webhooks set secret = ${second} where webhook_id = ${ids[1]}`.execute(store.db);
      registry.useSecretSealer({ ...sealer, open: (label, s) => openSealedText(randomBytes(32), s, label) });
      await expect(registry.listAllWebhookTargets(store.db)).rejects.toMatchObject({ code: 'PKI_KEK_MISMATCH' });
      registry.useSecretSealer(sealer);
      expect(await registry.listAllWebhookTargets(store.db)).toHaveLength(2);
    });
  });
}
