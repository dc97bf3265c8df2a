import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as registry from '../registry/index.ts';
import type { CertificateRecord } from '../registry/index.ts';
import { createSqliteStoreDialect, createStore } from '../store/index.ts';
import type { Store } from '../store/index.ts';
import { CertificateAuthenticator } from './authenticator.ts';
import type { UnknownCertificateHandler } from './authenticator.ts';
import type { PeerIdentity } from './device-tls.ts';

/**
 * The unknown-certificate path of admission: a handler that registers the certificate (as JITP does) hands back the
 * record it committed, and admission goes on with it without reading the certificate again.
 */
describe('CertificateAuthenticator: a certificate registered by the unknown-certificate handler', () => {
  let store: Store;
  let capture = false;
  const statements: string[] = [];
  beforeAll(async () => {
    store = createStore(createSqliteStoreDialect({ filename: ':memory:' }), { onQuery: (text) => capture && statements.push(text) });
    await store.migrate();
  });
  afterAll(async () => store.close());

  const identityOf = (certificateId: string): PeerIdentity =>
    ({ tenantId: 'default', certificateId, chainVerified: true, certificateDer: Buffer.alloc(0), chainDer: [], servername: undefined, remoteAddress: '127.0.0.1', peerCertificate: {} }) as unknown as PeerIdentity;

  /** A handler that registers the certificate with `status` (no CA) and returns the committed record, or not. */
  const registering = (status: 'ACTIVE' | 'PENDING_ACTIVATION', giveRecord: boolean): UnknownCertificateHandler => ({
    async handleUnknownCertificate(request) {
      const now = Date.now();
      const rec: CertificateRecord = await store.transaction((trx) =>
        registry.insertCertificate(trx, { tenantId: request.tenantId, actor: 'test' }, {
          certificateId: request.certificateId, certificatePem: 'x', caCertificateId: null, status, serialNumber: '01', subjectCommonName: 'dev',
          notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), createdBy: 'test',
        }),
      );
      return giveRecord ? { kind: 'registered', certificate: rec } : { kind: 'registered' };
    },
  });
  const certificateReads = (): number => statements.filter((s) => s.startsWith('select * from "certificates"')).length;

  /** Authenticates a never-seen certificate through `handler`; returns the outcome and the certificate reads. */
  const admit = async (handler: UnknownCertificateHandler, certificateId: string): Promise<{ ok: boolean; reads: number }> => {
    const auth = new CertificateAuthenticator({ store, maxClientIdLength: 128, unknownCertificateHandler: handler });
    statements.length = 0;
    capture = true;
    const r = await auth.authenticate(identityOf(certificateId), `dev-${certificateId.slice(0, 4)}`);
    capture = false;
    return { ok: r.ok, reads: certificateReads() };
  };

  it('admits with the committed record and reads the certificate only before the handler ran', async () => {
    expect(await admit(registering('ACTIVE', true), 'a'.repeat(64))).toEqual({ ok: true, reads: 1 });
  });

  it('reads the certificate again when the handler gives no record', async () => {
    expect(await admit(registering('ACTIVE', false), 'b'.repeat(64))).toEqual({ ok: true, reads: 2 });
  });

  it('still refuses what the committed record says: a PENDING_ACTIVATION certificate', async () => {
    const auth = new CertificateAuthenticator({ store, maxClientIdLength: 128, unknownCertificateHandler: registering('PENDING_ACTIVATION', true) });
    const r = await auth.authenticate(identityOf('c'.repeat(64)), 'dev-c');
    expect(r).toMatchObject({ ok: false, reason: 'certificate_pending' });
  });
});
