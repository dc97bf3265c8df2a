import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import type { Store } from '../store/index.ts';
import * as registry from './index.ts';

for (const dialect of DIALECTS) {
  describe(`registry (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    const ctx = { tenantId: 'default', actor: 'test' };

    beforeAll(async () => {
      const s = await dialect.create();
      store = s.store;
      dispose = s.dispose;
      await registry.createTenant(store.db, 'default', 'localhost');
      await registry.createTenant(store.db, 'other', 'localhost');
    });
    afterAll(async () => dispose());

    it('writes nothing when a multi-row change fails half-way', async () => {
      await store.transaction((trx) => registry.createThingGroup(trx, ctx, { thingGroupName: 'g1' }));
      const before = await registry.listAudit(store.db, 'default', { limit: 100 });
      await expect(store.transaction((trx) => registry.createThing(trx, ctx, { thingName: 't1', thingGroups: ['g1', 'missing'] }))).rejects.toMatchObject({ code: 'REGISTRY_THING_GROUP_NOT_FOUND' });
      await expect(
        store.transaction(async (trx) => {
          await registry.createThing(trx, ctx, { thingName: 't2' });
          await registry.createPolicy(trx, ctx, { policyName: 'p', policyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Nope"}]}' });
        }),
      ).rejects.toMatchObject({ code: expect.stringMatching(/^POLICY_/) });
      expect(await registry.findThing(store.db, 'default', 't1')).toBeUndefined();
      expect(await registry.findThing(store.db, 'default', 't2')).toBeUndefined();
      expect(await registry.listAudit(store.db, 'default', { limit: 100 })).toEqual(before);
    });

    it('keeps policy versions within the limit and computes effective policies through groups', async () => {
      const doc = (n: number) => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `arn:aws:iot:*:*:topic/t${n}` }] });
      await store.transaction((trx) => registry.createPolicy(trx, ctx, { policyName: 'direct', policyDocument: doc(0) }));
      for (let i = 1; i < registry.MAX_POLICY_VERSIONS; i += 1) await store.transaction((trx) => registry.createPolicyVersion(trx, ctx, 'direct', { policyDocument: doc(i) }));
      await expect(store.transaction((trx) => registry.createPolicyVersion(trx, ctx, 'direct', { policyDocument: doc(9) }))).rejects.toMatchObject({ code: 'REGISTRY_POLICY_VERSION_LIMIT' });
      await store.transaction((trx) => registry.createPolicy(trx, ctx, { policyName: 'viagroup', policyDocument: doc(7) }));
      const certificateId = 'a'.repeat(64);
      await store.transaction(async (trx) => {
        await registry.insertCertificate(trx, ctx, { certificateId, certificatePem: 'pem', caCertificateId: null, status: 'ACTIVE', serialNumber: '01', subjectCommonName: 'd', notBefore: new Date(), notAfter: new Date(Date.now() + 1e9), createdBy: 'test' });
        await registry.createThing(trx, ctx, { thingName: 'member', thingGroups: ['g1'] });
        await registry.attachThingPrincipal(trx, ctx, 'member', certificateId);
        await registry.attachPolicy(trx, ctx, 'direct', { kind: 'certificate', certificateId });
        await registry.attachPolicy(trx, ctx, 'viagroup', { kind: 'thinggroup', thingGroupName: 'g1' });
      });
      const eff = await registry.effectivePolicyDocuments(store.db, 'default', certificateId);
      expect(eff.map((p) => p.policyName)).toEqual(['direct', 'viagroup']);
      expect(await registry.effectivePolicyDocuments(store.db, 'other', certificateId)).toEqual([]);
    });

    it('scopes a CA to its tenant: another tenant\'s registration of the same certificate never stands in for it, nor reaches its CRL', async () => {
      const caId = 'c1'.repeat(32);
      const ca = (owned: boolean, status: registry.CaStatus): registry.NewCaRecord => ({
        caCertificateId: caId, certificatePem: 'pem', subjectCommonName: 'ca', serialNumber: '0a', status, certificateMode: owned ? 'DEFAULT' : 'SNI_ONLY', owned,
        keyRef: owned ? 'k' : null, keyStore: owned ? 'encrypted' : null, parentCaCertificateId: null, autoRegistration: false, notBefore: new Date(), notAfter: new Date(Date.now() + 1e9),
      });
      const other = { tenantId: 'other', actor: 'test' };
      // the other tenant's registration comes first (as one made before such registrations were refused could)
      await store.transaction((trx) => registry.insertCa(trx, other, ca(false, 'INACTIVE')));
      await store.transaction((trx) => registry.insertCa(trx, ctx, ca(true, 'ACTIVE')));
      const revoked = async (c: typeof ctx, id: string, serial: string): Promise<void> => {
        await store.transaction(async (trx) => {
          await registry.insertCertificate(trx, c, { certificateId: id, certificatePem: 'pem', caCertificateId: caId, status: 'ACTIVE', serialNumber: serial, subjectCommonName: null, notBefore: new Date(), notAfter: new Date(Date.now() + 1e9), createdBy: 'test' });
          await registry.updateCertificateStatus(trx, c, id, 'REVOKED', { reason: 'keyCompromise' });
        });
      };
      await revoked(ctx, 'd1'.repeat(32), '11');
      await revoked(other, 'd2'.repeat(32), '22');
      expect((await registry.listRevokedByCa(store.db, caId)).map((r) => r.serialNumber)).toEqual(['11']);
      expect((await registry.findOwnedCa(store.db, caId))?.owned).toBe(true);
      expect(await registry.findCertificateCa(store.db, 'default', caId)).toEqual({ status: 'ACTIVE', certificateMode: 'DEFAULT' });
      expect(await registry.findCertificateCa(store.db, 'other', caId)).toEqual({ status: 'INACTIVE', certificateMode: 'SNI_ONLY' });
      expect(await registry.listCaRegistrationsElsewhere(store.db, 'other', caId)).toEqual([{ tenantId: 'default', certificateMode: 'DEFAULT', owned: true }]);
      // a revoked certificate of the owned CA stays (it is on the CRL); the other tenant's, of a CA it does not own, may go
      await expect(store.transaction((trx) => registry.deleteCertificate(trx, ctx, 'd1'.repeat(32), { force: true }))).rejects.toMatchObject({ code: 'REGISTRY_CERTIFICATE_ON_CRL' });
      await store.transaction((trx) => registry.deleteCertificate(trx, other, 'd2'.repeat(32)));
    });

    it('numbers CRLs of an owned CA uniquely and upwards, also when they are built at once', async () => {
      const caId = 'c3'.repeat(32);
      await store.transaction((trx) => registry.insertCa(trx, ctx, { caCertificateId: caId, certificatePem: 'pem', subjectCommonName: 'ca', serialNumber: '0b', status: 'ACTIVE', certificateMode: 'DEFAULT', owned: true, keyRef: 'k', keyStore: 'encrypted', parentCaCertificateId: null, autoRegistration: false, notBefore: new Date(), notAfter: new Date(Date.now() + 1e9) }));
      const numbers = await Promise.all(Array.from({ length: 10 }, () => store.transaction((trx) => registry.nextCrlNumber(trx, caId))));
      expect([...numbers].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      await expect(store.transaction((trx) => registry.nextCrlNumber(trx, 'c4'.repeat(32)))).rejects.toMatchObject({ code: 'REGISTRY_CA_NOT_FOUND' });
    });

    it('enforces certificate status transitions and transfers between tenants', async () => {
      const id = 'b'.repeat(64);
      await store.transaction((trx) => registry.insertCertificate(trx, ctx, { certificateId: id, certificatePem: 'pem', caCertificateId: null, status: 'PENDING_ACTIVATION', serialNumber: '02', subjectCommonName: null, notBefore: new Date(), notAfter: new Date(Date.now() + 1e9), createdBy: 'test' }));
      await store.transaction((trx) => registry.updateCertificateStatus(trx, ctx, id, 'INACTIVE'));
      await store.transaction((trx) => registry.transferCertificate(trx, ctx, id, 'other'));
      await expect(store.transaction((trx) => registry.updateCertificateStatus(trx, ctx, id, 'ACTIVE'))).rejects.toMatchObject({ code: 'REGISTRY_CERTIFICATE_TRANSITION_INVALID' });
      await expect(store.transaction((trx) => registry.resolveTransfer(trx, ctx, id, 'accept'))).rejects.toMatchObject({ code: 'REGISTRY_CERTIFICATE_TRANSFER_INVALID' });
      const accepted = await store.transaction((trx) => registry.resolveTransfer(trx, { tenantId: 'other', actor: 't' }, id, 'accept', { setAsActive: true }));
      expect(accepted.status).toBe('ACTIVE');
      expect(await registry.findCertificate(store.db, 'default', id)).toBeUndefined();
      await store.transaction((trx) => registry.updateCertificateStatus(trx, { tenantId: 'other', actor: 't' }, id, 'REVOKED'));
      await expect(store.transaction((trx) => registry.updateCertificateStatus(trx, { tenantId: 'other', actor: 't' }, id, 'ACTIVE'))).rejects.toMatchObject({ code: 'REGISTRY_CERTIFICATE_TRANSITION_INVALID' });
    });

    it('writes a batch of audit entries in order at its end, chained, and nothing when the batch fails', async () => {
      const before = await registry.listAudit(store.db, 'default', { limit: 1 });
      await store.transaction((trx) =>
        registry.withAuditBatch(trx, ctx, store.supportsRowLocks, async (bctx) => {
          await registry.createThing(trx, bctx, { thingName: 'batched-1' });
          await registry.appendAudit(trx, { tenantId: 'other', actor: 'outside-the-batch' }, 'test.immediate', 'x/1');
          await registry.createThing(trx, bctx, { thingName: 'batched-2' });
        }),
      );
      const entries = await registry.listAudit(store.db, 'default', { limit: 2 });
      expect(entries.map((e) => [e.action, e.target])).toEqual([['thing.create', 'thing/batched-2'], ['thing.create', 'thing/batched-1']]);
      expect(entries[1]?.seq).toBeGreaterThan((before[0]?.seq ?? 0) + 1);
      expect(await registry.verifyAuditLog(store.db)).toMatchObject({ ok: true });

      const head = await store.db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow();
      await expect(
        store.transaction((trx) =>
          registry.withAuditBatch(trx, ctx, store.supportsRowLocks, async (bctx) => {
            await registry.createThing(trx, bctx, { thingName: 'batched-3' });
            await registry.createThing(trx, bctx, { thingName: 'bad name!' });
          }),
        ),
      ).rejects.toMatchObject({ code: 'REGISTRY_NAME_INVALID' });
      expect(await store.db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow()).toEqual(head);
      expect(await registry.findThing(store.db, 'default', 'batched-3')).toBeUndefined();
      expect(await registry.verifyAuditLog(store.db)).toMatchObject({ ok: true });
    });

    it('chains the audit log and detects deletion', async () => {
      expect(await registry.verifyAuditLog(store.db)).toMatchObject({ ok: true });
      const last = await store.db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow();
      await store.db.deleteFrom('audit_log').where('seq', '=', 2).execute();
      expect(await registry.verifyAuditLog(store.db)).toMatchObject({ ok: false, problem: { seq: 2, reason: 'missing_entry' } });
      expect(last.seq).toBeGreaterThan(5);
    });
  });
}
