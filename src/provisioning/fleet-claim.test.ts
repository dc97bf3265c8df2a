import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import * as pki from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { openTestInstallation } from '../../test/support/installation.ts';
import { ClaimRateLimiter } from './claim-rate-limiter.ts';
import { FleetProvisioning } from './fleet-claim.ts';

const TEMPLATE = {
  Parameters: { SerialNumber: { Type: 'String' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { 'Fn::Join': ['', ['unit-', { Ref: 'SerialNumber' }]] } } },
    certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'unit-device' } },
  },
};

function deviceCsr(cn: string): string {
  return pki.createCsr({ subject: { CN: [cn] }, privateKeyPem: pki.generateKeyPair('EC_P256').privateKeyPem });
}

for (const dialect of DIALECTS) {
  describe(`fleet provisioning by claim, limits (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    let fleet: FleetProvisioning;
    let now = 1_000_000;
    const ctx = { tenantId: registry.DEFAULT_TENANT, actor: 'test' };

    beforeAll(async () => {
      const installation = await openTestInstallation(dialect);
      ({ store, dispose } = installation);
      const { cas } = installation;
      await store.transaction(async (trx) => {
        await registry.createPolicy(trx, ctx, { policyName: 'unit-device', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
        await registry.createProvisioningTemplate(trx, ctx, { templateName: 'unit', templateBody: TEMPLATE });
      });
      fleet = new FleetProvisioning(store, cas, new ClaimRateLimiter(() => now));
    });
    afterAll(async () => dispose());

    it('refuses the device past the per-minute limit with PROVISIONING_RATE_LIMITED, at each call, then lets it through a minute later', async () => {
      const claim = await fleet.createClaimCertificate(ctx, 'unit', { batch: 'rate', ratePerMinute: 2 });
      const caller = { tenantId: ctx.tenantId, certificateId: claim.certificateId, clientId: 'factory' };
      const tokens: string[] = [];
      for (let i = 0; i < 2; i += 1) tokens.push((await fleet.createCertificateFromCsr(caller, deviceCsr(`d${i}`))).certificateOwnershipToken);
      await expect(fleet.createCertificateFromCsr(caller, deviceCsr('d2'))).rejects.toMatchObject({ code: 'PROVISIONING_RATE_LIMITED', kind: 'rate_limited' });
      await expect(fleet.createKeysAndCertificate(caller)).rejects.toMatchObject({ code: 'PROVISIONING_RATE_LIMITED' });
      // a failed call gives its token back: the budget counts devices, not refusals
      await expect(fleet.registerThing(caller, 'unit', { certificateOwnershipToken: 'not-a-token', parameters: { SerialNumber: 'x' } })).rejects.toMatchObject({ code: 'PROVISIONING_TOKEN_INVALID' });
      for (const [i, token] of tokens.entries()) await fleet.registerThing(caller, 'unit', { certificateOwnershipToken: token, parameters: { SerialNumber: `r${i}` } });
      now += 30_000;
      const third = await fleet.createCertificateFromCsr(caller, deviceCsr('d3'));
      await expect(fleet.createCertificateFromCsr(caller, deviceCsr('d4'))).rejects.toMatchObject({ code: 'PROVISIONING_RATE_LIMITED' });
      await fleet.registerThing(caller, 'unit', { certificateOwnershipToken: third.certificateOwnershipToken, parameters: { SerialNumber: 'r2' } });
      expect((await fleet.listClaims(ctx.tenantId, 'unit')).find((c) => c.certificateId === claim.certificateId)).toMatchObject({ devicesProvisioned: 3, ratePerMinute: 2, maxDevices: null });
    });

    it('changes the limits of a claim later; the new rate applies to the next call', async () => {
      const claim = await fleet.createClaimCertificate(ctx, 'unit', { batch: 'later' });
      const caller = { tenantId: ctx.tenantId, certificateId: claim.certificateId, clientId: 'factory' };
      await fleet.createCertificateFromCsr(caller, deviceCsr('l0'));
      expect(await fleet.updateClaim(ctx, claim.certificateId, { ratePerMinute: 1, maxDevices: 10 })).toMatchObject({ ratePerMinute: 1, maxDevices: 10, batch: 'later' });
      await fleet.createCertificateFromCsr(caller, deviceCsr('l1'));
      await expect(fleet.createCertificateFromCsr(caller, deviceCsr('l2'))).rejects.toMatchObject({ code: 'PROVISIONING_RATE_LIMITED' });
      expect(await fleet.updateClaim(ctx, claim.certificateId, { ratePerMinute: null })).toMatchObject({ ratePerMinute: null, maxDevices: 10 });
      await fleet.createCertificateFromCsr(caller, deviceCsr('l3'));
      const audit = await registry.listAudit(store.db, ctx.tenantId, { limit: 50 });
      expect(audit.filter((e) => e.action === 'claim.update').map((e) => e.details)).toEqual([{ maxDevices: 10, ratePerMinute: null }, { maxDevices: 10, ratePerMinute: 1 }]);
      await expect(fleet.updateClaim(ctx, 'f'.repeat(64), { ratePerMinute: 5 })).rejects.toMatchObject({ code: 'REGISTRY_CERTIFICATE_NOT_FOUND' });
    });

    it('counts devices against maxDevices inside the RegisterThing transaction, so concurrent calls never exceed it', async () => {
      const claim = await fleet.createClaimCertificate(ctx, 'unit', { batch: 'max', maxDevices: 2 });
      const caller = { tenantId: ctx.tenantId, certificateId: claim.certificateId, clientId: 'factory' };
      const tokens = await Promise.all([0, 1, 2].map(async (i) => (await fleet.createCertificateFromCsr(caller, deviceCsr(`m${i}`))).certificateOwnershipToken));
      const results = await Promise.allSettled(tokens.map((token, i) => fleet.registerThing(caller, 'unit', { certificateOwnershipToken: token, parameters: { SerialNumber: `m${i}` } })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r.reason as { code: string }).code)).toEqual(['PROVISIONING_CLAIM_EXHAUSTED']);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r.reason as Error).message)).toEqual(['this claim reached its limit of 2 devices (maxDevices)']);
      expect((await fleet.listClaims(ctx.tenantId, 'unit')).find((c) => c.certificateId === claim.certificateId)).toMatchObject({ devicesProvisioned: 2 });
      expect(await registry.verifyAuditLog(store.db)).toMatchObject({ ok: true });
    });
  });
}
