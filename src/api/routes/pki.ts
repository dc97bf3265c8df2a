import type { FastifyInstance } from 'fastify';
import * as pki from '../../pki/index.ts';
import * as registry from '../../registry/index.ts';
import type { ApiDependencies } from '../context.ts';
import { HTTP_URL_PATTERN, S, bodyOf, ctxOf, paramsOf, queryOf } from '../route-helpers.ts';

const caParams = { type: 'object', required: ['caCertificateId'], properties: { caCertificateId: S.certificateId } } as const;
const certParams = { type: 'object', required: ['certificateId'], properties: { certificateId: S.certificateId } } as const;
const REASONS = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'aACompromise'] as const;
const STATUSES = ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER', 'PENDING_ACTIVATION', 'REGISTER_INACTIVE'] as const;

/** CAs (owned and registered), device certificates, CRLs (AWS CreateCertificateFromCsr, RegisterCACertificate, …). */
export function registerPkiRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const { store, controlPlane: cp } = deps;
  const manufacturer = { roles: ['admin', 'operator', 'manufacturer'] as const };
  const provider = { roles: ['admin', 'operator', 'provider', 'manufacturer'] as const };

  app.post('/v1/cas', {
    schema: {
      tags: ['cas'],
      body: {
        type: 'object', required: ['commonName'], additionalProperties: false,
        properties: {
          commonName: { type: 'string', minLength: 1, maxLength: 64 },
          keyAlgorithm: { type: 'string', enum: ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072'] },
          parentCaCertificateId: S.certificateId,
          validityDays: { type: 'integer', minimum: 1, maximum: 36500 },
          pathLength: { type: 'integer', minimum: 0, maximum: 8 },
        },
      },
    },
  }, async (request, reply) => reply.status(201).send(await cp.createCa(ctxOf(request), bodyOf(request))));

  app.get('/v1/cas', { schema: { tags: ['cas'], querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging, status: { type: 'string', enum: ['ACTIVE', 'INACTIVE', 'REVOKED'] } } } } }, async (request) => {
    const page = await registry.listCas(store.db, ctxOf(request).tenantId, queryOf<registry.PageRequest & { status?: registry.CaStatus }>(request));
    return { certificates: page.items, nextToken: page.nextToken };
  });

  app.get('/v1/cas/registration-code', { config: manufacturer, schema: { tags: ['cas'] } }, async (request) => ({ registrationCode: await cp.getRegistrationCode(ctxOf(request)) }));

  app.post('/v1/cas/register', {
    config: manufacturer,
    schema: {
      tags: ['cas'],
      body: {
        type: 'object', required: ['caCertificatePem'], additionalProperties: false,
        properties: { caCertificatePem: S.pem, verificationCertificatePem: S.pem, certificateMode: { type: 'string', enum: ['DEFAULT', 'SNI_ONLY'] }, setAsActive: { type: 'boolean' }, allowAutoRegistration: { type: 'boolean' } },
      },
    },
  }, async (request, reply) => reply.status(201).send(await cp.registerCa(ctxOf(request), bodyOf(request))));

  app.get('/v1/cas/:caCertificateId', { config: manufacturer, schema: { tags: ['cas'], params: caParams } }, async (request) => {
    return registry.getCa(store.db, ctxOf(request).tenantId, paramsOf<{ caCertificateId: string }>(request).caCertificateId).then(({ keyRef: _k, ...rest }) => rest);
  });

  app.patch('/v1/cas/:caCertificateId', {
    schema: {
      tags: ['cas'], params: caParams,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: {
          status: { type: 'string', enum: ['ACTIVE', 'INACTIVE'] },
          autoRegistrationStatus: { type: 'string', enum: ['ENABLE', 'DISABLE'] },
          registrationConfig: { type: 'object', additionalProperties: false, properties: { templateName: { anyOf: [{ type: 'string', minLength: 1, maxLength: 36, pattern: '^[0-9A-Za-z_-]+$' }, { type: 'null' }] } } },
          firstConnect: { type: 'string', enum: ['continue', 'reconnect'] },
        },
      },
    },
  }, async (request) => {
    const b = bodyOf<{ status?: 'ACTIVE' | 'INACTIVE'; autoRegistrationStatus?: 'ENABLE' | 'DISABLE'; registrationConfig?: { templateName?: string | null }; firstConnect?: registry.FirstConnectMode }>(request);
    const update: registry.CaUpdate = {
      status: b.status,
      autoRegistration: b.autoRegistrationStatus === undefined ? undefined : b.autoRegistrationStatus === 'ENABLE',
      registrationTemplate: b.registrationConfig?.templateName,
      firstConnect: b.firstConnect,
    };
    const { keyRef: _k, ...rest } = await cp.updateCa(ctxOf(request), paramsOf<{ caCertificateId: string }>(request).caCertificateId, update);
    return rest;
  });

  app.post('/v1/cas/:caCertificateId/revoke', {
    schema: { tags: ['cas'], params: caParams, body: { type: ['object', 'null'], additionalProperties: false, properties: { reason: { type: 'string', enum: [...REASONS] } } } },
  }, async (request) => {
    const body = bodyOf<{ reason?: string } | null>(request);
    const { keyRef: _k, ...rest } = await cp.revokeCa(ctxOf(request), paramsOf<{ caCertificateId: string }>(request).caCertificateId, body?.reason ?? 'unspecified');
    return rest;
  });

  // CRLs are public: relying parties fetch them from the CRL distribution point of every issued certificate.
  app.get('/v1/crl/:caCertificateId', { config: { public: true }, schema: { tags: ['cas'], params: { type: 'object', required: ['caCertificateId'], properties: { caCertificateId: { type: 'string', pattern: '^[0-9a-f]{64}(\\.crl|\\.pem)?$' } } } } }, async (request, reply) => {
    const raw = paramsOf<{ caCertificateId: string }>(request).caCertificateId;
    const id = raw.slice(0, 64);
    const crl = await cp.getCrl(id);
    if (raw.endsWith('.pem')) return reply.type('application/x-pem-file').send(crl.pem);
    return reply.type('application/pkix-crl').send(Buffer.from(crl.der));
  });

  app.post('/v1/certificates/from-csr', {
    config: manufacturer,
    schema: {
      tags: ['certificates'],
      body: {
        type: 'object', required: ['certificateSigningRequest'], additionalProperties: false,
        properties: { certificateSigningRequest: { type: 'string', minLength: 1, maxLength: 16384 }, setAsActive: { type: 'boolean' }, caCertificateId: S.certificateId, validityDays: { type: 'integer', minimum: 1, maximum: 36500 }, subjectCommonName: { type: 'string', minLength: 1, maxLength: 64 } },
      },
    },
  }, async (request, reply) => reply.status(201).send(await cp.issueFromCsr(ctxOf(request), bodyOf(request))));

  app.post('/v1/certificates/keys-and-certificate', {
    schema: { tags: ['certificates'], body: { type: ['object', 'null'], additionalProperties: false, properties: { setAsActive: { type: 'boolean' }, caCertificateId: S.certificateId, subjectCommonName: { type: 'string', minLength: 1, maxLength: 64 } } } },
  }, async (request, reply) => reply.status(201).send(await cp.createKeysAndCertificate(ctxOf(request), bodyOf<Record<string, unknown> | null>(request) ?? {})));

  app.post('/v1/certificates/register', {
    config: provider,
    schema: {
      tags: ['certificates'],
      body: { type: 'object', required: ['certificatePem'], additionalProperties: false, properties: { certificatePem: S.pem, caCertificatePem: S.pem, status: { type: 'string', enum: ['ACTIVE', 'INACTIVE', 'PENDING_ACTIVATION', 'REGISTER_INACTIVE'] }, setAsActive: { type: 'boolean' } } },
    },
  }, async (request, reply) => reply.status(201).send(await cp.registerCertificate(ctxOf(request), bodyOf(request))));

  app.post('/v1/certificates/register-without-ca', {
    config: provider,
    schema: { tags: ['certificates'], body: { type: 'object', required: ['certificatePem'], additionalProperties: false, properties: { certificatePem: S.pem, status: { type: 'string', enum: ['ACTIVE', 'INACTIVE', 'REGISTER_INACTIVE'] } } } },
  }, async (request, reply) => reply.status(201).send(await cp.registerCertificateWithoutCa(ctxOf(request), bodyOf(request))));

  app.get('/v1/certificates', {
    schema: { tags: ['certificates'], querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging, status: { type: 'string', enum: [...STATUSES] }, caCertificateId: S.certificateId } } },
  }, async (request) => {
    const q = queryOf<registry.ListCertificatesFilter>(request);
    const page = await registry.listCertificates(store.db, ctxOf(request).tenantId, { ...q, status: q.status === undefined ? undefined : registry.parseCertificateStatus(q.status) });
    return { certificates: page.items, nextToken: page.nextToken };
  });

  app.get('/v1/certificates/:certificateId', { schema: { tags: ['certificates'], params: certParams } }, async (request) => {
    const ctx = ctxOf(request);
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    const c = await registry.getCertificate(store.db, ctx.tenantId, certificateId);
    return { ...c, things: await registry.listPrincipalThings(store.db, ctx.tenantId, certificateId), policies: await registry.listAttachedPolicies(store.db, ctx.tenantId, { kind: 'certificate', certificateId }) };
  });

  app.patch('/v1/certificates/:certificateId', {
    schema: { tags: ['certificates'], params: certParams, body: { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string', enum: [...STATUSES] } } } },
  }, async (request) => {
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    return cp.updateCertificateStatus(ctxOf(request), certificateId, registry.parseCertificateStatus(bodyOf<{ status: string }>(request).status));
  });

  app.post('/v1/certificates/:certificateId/revoke', {
    schema: { tags: ['certificates'], params: certParams, body: { type: ['object', 'null'], additionalProperties: false, properties: { reason: { type: 'string', enum: [...REASONS] } } } },
  }, async (request) => {
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    return cp.revokeCertificate(ctxOf(request), certificateId, bodyOf<{ reason?: string } | null>(request)?.reason ?? 'unspecified');
  });

  app.delete('/v1/certificates/:certificateId', {
    schema: { tags: ['certificates'], params: certParams, querystring: { type: 'object', additionalProperties: false, properties: { forceDelete: { type: 'boolean' } } } },
  }, async (request, reply) => {
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    const force = queryOf<{ forceDelete?: boolean }>(request).forceDelete === true;
    await store.transaction((trx) => registry.deleteCertificate(trx, ctxOf(request), certificateId, { rowLocks: store.supportsRowLocks, force }));
    cp.notifyCertificateChanged(ctxOf(request).tenantId, certificateId);
    return reply.status(204).send();
  });

  app.post('/v1/certificates/:certificateId/transfer', {
    schema: { tags: ['certificates'], params: certParams, body: { type: 'object', required: ['targetTenant'], additionalProperties: false, properties: { targetTenant: S.tenantName } } },
  }, async (request) => {
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    return store.transaction((trx) => registry.transferCertificate(trx, ctxOf(request), certificateId, bodyOf<{ targetTenant: string }>(request).targetTenant, { rowLocks: store.supportsRowLocks }));
  });
  for (const action of ['accept', 'reject', 'cancel'] as const) {
    app.post(`/v1/certificates/:certificateId/${action}-transfer`, {
      schema: { tags: ['certificates'], params: certParams, body: { type: ['object', 'null'], additionalProperties: false, properties: { setAsActive: { type: 'boolean' } } } },
    }, async (request) => {
      const { certificateId } = paramsOf<{ certificateId: string }>(request);
      const setAsActive = bodyOf<{ setAsActive?: boolean } | null>(request)?.setAsActive === true;
      const rec = await store.transaction((trx) => registry.resolveTransfer(trx, ctxOf(request), certificateId, action, { rowLocks: store.supportsRowLocks, setAsActive }));
      cp.notifyCertificateChanged(ctxOf(request).tenantId, certificateId);
      return rec;
    });
  }
  app.get('/v1/certificates/incoming-transfers', { schema: { tags: ['certificates'] } }, async (request) => ({ transfers: await registry.listIncomingTransfers(store.db, ctxOf(request).tenantId) }));

  app.get('/v1/cas/:caCertificateId/registration-hooks', { schema: { tags: ['cas'], params: caParams } }, async (request) => {
    const { tenantId } = ctxOf(request);
    const { caCertificateId } = paramsOf<{ caCertificateId: string }>(request);
    await registry.getCa(store.db, tenantId, caCertificateId); // 404 for a CA of another tenant or none, as PUT answers
    return registry.getCaRegistrationHooks(store.db, tenantId, caCertificateId);
  });
  app.put('/v1/cas/:caCertificateId/registration-hooks', {
    schema: {
      tags: ['cas'], params: caParams,
      body: {
        type: 'object', additionalProperties: false,
        properties: {
          allowList: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, properties: { policyName: S.policyName } }] },
          crlPem: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1, maxLength: 10 * 1024 * 1024 }] },
          crlUrl: { type: ['string', 'null'], pattern: HTTP_URL_PATTERN, maxLength: 2048, description: 'an http(s) URL of the CA CRL, or null' },
        },
      },
    },
  }, async (request) => {
    const b = bodyOf<{ allowList?: { policyName?: string } | null; crlPem?: string | null; crlUrl?: string | null }>(request);
    const ctx = ctxOf(request);
    const { caCertificateId } = paramsOf<{ caCertificateId: string }>(request);
    if (typeof b.crlPem === 'string') {
      const ca = await registry.getCa(store.db, ctx.tenantId, caCertificateId);
      await pki.readCrl(b.crlPem, pki.loadCertificate(ca.certificatePem));
    }
    return store.transaction((trx) => registry.setCaRegistrationHooks(trx, ctx, caCertificateId, { allowList: b.allowList ?? null, crlPem: b.crlPem ?? null, crlUrl: b.crlUrl ?? null }, { rowLocks: store.supportsRowLocks }));
  });

  app.post('/v1/allow-list', {
    schema: { tags: ['cas'], body: { type: 'object', required: ['values'], additionalProperties: false, properties: { values: { type: 'array', maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 256 } } } } },
  }, async (request, reply) => {
    const { values } = bodyOf<{ values: string[] }>(request);
    const added = await store.transaction((trx) => registry.addAllowListEntries(trx, ctxOf(request), values, { rowLocks: store.supportsRowLocks }));
    return reply.status(201).send({ submitted: values.length, added });
  });
  app.get('/v1/allow-list', { schema: { tags: ['cas'], querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'string', maxLength: 256 }, maxResults: { type: 'integer', minimum: 1, maximum: 1000 } } } } }, async (request) => {
    const q = queryOf<{ after?: string; maxResults?: number }>(request);
    return { values: await registry.listAllowList(store.db, ctxOf(request).tenantId, { after: q.after, limit: q.maxResults ?? 100 }) };
  });
  app.delete('/v1/allow-list/:value', { schema: { tags: ['cas'], params: { type: 'object', required: ['value'], properties: { value: { type: 'string', minLength: 1, maxLength: 256 } } } } }, async (request, reply) => {
    await store.transaction((trx) => registry.removeAllowListEntry(trx, ctxOf(request), paramsOf<{ value: string }>(request).value, { rowLocks: store.supportsRowLocks }));
    return reply.status(204).send();
  });
}
