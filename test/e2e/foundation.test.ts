import { execFile } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../support/dialects.ts';
import { selectRows } from '../support/database-access.ts';
import { BIN, REPO, startServer } from '../support/server-process.ts';

const execFileAsync = promisify(execFile);

for (const dialect of DIALECTS) {
  describe(`foundation end to end (${dialect.name})`, () => {
    let server: Awaited<ReturnType<typeof startServer>>;

    beforeAll(async () => {
      server = await startServer({ dialect });
    });
    afterAll(async () => {
      await server.destroy();
    });

    it('initialises the data directory on first start', () => {
      expect(server.output()).toContain('admin API token (shown once');
      expect(server.output()).toContain(server.token);
      expect(statSync(path.join(server.dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
      expect(statSync(path.join(server.dataDir, 'kek')).mode & 0o777).toBe(0o600);
      expect(readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
      // no deprecation or other runtime warning on start (a Fastify option once printed one)
      expect(server.output()).not.toMatch(/Warning:|\[DEP\d+\]|\[FSTDEP\d+\]/);
    });

    it('never logs the token or a private key', () => {
      const logLines = server.output().split('\n').filter((l) => l.startsWith('{'));
      expect(logLines.length).toBeGreaterThan(0);
      for (const l of logLines) {
        expect(l).not.toContain(server.token);
        expect(l).not.toContain('PRIVATE KEY');
      }
    });

    it('serves healthz, metrics and the OpenAPI document', async () => {
      expect((await fetch(`${server.apiUrl}/healthz`)).status).toBe(200);
      const metrics = await (await fetch(`${server.apiUrl}/metrics`)).text();
      expect(metrics).toContain('gatehouse_http_requests_total');
      const doc = (await (await fetch(`${server.apiUrl}/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      for (const p of ['/v1/things', '/v1/things/{thingName}', '/v1/policies/{policyName}/attach', '/v1/tokens', '/v1/cas', '/v1/certificates/from-csr']) expect(doc.paths).toHaveProperty([p]);
      // the statuses the handlers send, checked against real calls; errors are problems; the CRL needs no token
      type Op = { responses: Record<string, unknown>; security?: unknown[] };
      const op = (p: string, m: string): Op => (doc.paths[p] as Record<string, Op>)[m] as Op;
      expect(Object.keys(op('/v1/things', 'post').responses)).toEqual(['201', 'default']);
      expect((await server.api('POST', '/v1/things', { thingName: 'documented' })).status).toBe(201);
      expect(Object.keys(op('/v1/things/{thingName}', 'delete').responses)).toEqual(['204', 'default']);
      expect((await server.api('DELETE', '/v1/things/documented')).status).toBe(204);
      expect(Object.keys(op('/v1/things/{thingName}', 'get').responses)).toEqual(['200', 'default']);
      expect(Object.keys(op('/v1/policies/{policyName}/attach', 'post').responses)).toEqual(['204', 'default']);
      expect(op('/v1/crl/{caCertificateId}', 'get').security).toEqual([]);
      expect(op('/v1/things', 'post').security).toBeUndefined();
    });

    it('advertises in /v1/endpoint only ports that accept connections', async () => {
      const ep = (await server.api('GET', '/v1/endpoint')).body as Record<string, unknown>;
      const ports = Object.entries(ep).filter(([k]) => k.endsWith('Port'));
      expect(ports).toEqual([['mqttPort', server.ports.mqtt]]);
      for (const [, port] of ports) {
        const sock = net.connect(Number(port), '127.0.0.1');
        await once(sock, 'connect');
        sock.destroy();
      }
    });

    it('manages things, types, groups, policies and attachments', async () => {
      expect((await server.api('POST', '/v1/thing-types', { thingTypeName: 'sensor' })).status).toBe(201);
      expect((await server.api('POST', '/v1/thing-groups', { thingGroupName: 'floor1' })).status).toBe(201);
      const created = await server.api('POST', '/v1/things', { thingName: 'dev-1', attributes: { serial: 'A1' }, thingTypeName: 'sensor', thingGroups: ['floor1'] });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ thingName: 'dev-1', attributes: { serial: 'A1' }, thingTypeName: 'sensor', thingGroups: ['floor1'], version: 1 });
      // creating the same thing again is idempotent; a different one is a conflict
      expect((await server.api('POST', '/v1/things', { thingName: 'dev-1', attributes: { serial: 'A1' }, thingTypeName: 'sensor' })).status).toBe(201);
      const conflict = await server.api('POST', '/v1/things', { thingName: 'dev-1', attributes: { serial: 'B2' } });
      expect(conflict.status).toBe(409);
      expect(conflict.body.code).toBe('REGISTRY_THING_EXISTS');
      for (let i = 2; i <= 5; i += 1) await server.api('POST', '/v1/things', { thingName: `dev-${i}` });
      const page1 = await server.api('GET', '/v1/things?maxResults=2&namePrefix=dev-');
      expect(page1.body.things.map((t: { thingName: string }) => t.thingName)).toEqual(['dev-1', 'dev-2']);
      const page2 = await server.api('GET', `/v1/things?maxResults=2&namePrefix=dev-&nextToken=${page1.body.nextToken}`);
      expect(page2.body.things.map((t: { thingName: string }) => t.thingName)).toEqual(['dev-3', 'dev-4']);
      expect((await server.api('GET', '/v1/things?thingGroupName=floor1')).body.things).toHaveLength(1);
      // a filter that names no group or type is a 404, not an empty list a typo hides behind
      expect((await server.api('GET', '/v1/things?thingGroupName=floor-typo')).body.code).toBe('REGISTRY_THING_GROUP_NOT_FOUND');
      expect((await server.api('GET', '/v1/things?thingTypeName=no-such-type')).body.code).toBe('REGISTRY_THING_TYPE_NOT_FOUND');
      const updated = await server.api('PATCH', '/v1/things/dev-1', { attributes: { fw: '1.2', serial: null }, expectedVersion: 1 });
      expect(updated.body).toMatchObject({ attributes: { fw: '1.2' }, version: 2 });
      expect((await server.api('PATCH', '/v1/things/dev-1', { attributes: { fw: '1.3' }, expectedVersion: 1 })).body.code).toBe('REGISTRY_THING_VERSION_CONFLICT');
      // an update that changes nothing is refused, and the version stays
      for (const body of [{}, { expectedVersion: 2 }]) {
        const empty = await server.api('PATCH', '/v1/things/dev-1', body);
        expect(empty.status).toBe(400);
        expect(empty.body).toMatchObject({ code: 'API_VALIDATION_FAILED', detail: 'body names nothing to change: give attributes, replaceAttributes or thingTypeName' });
      }
      expect((await server.api('GET', '/v1/things/dev-1')).body.version).toBe(2);
      const emptyTemplate = await server.api('PATCH', '/v1/provisioning-templates/none', {});
      expect(emptyTemplate.body).toMatchObject({ code: 'API_VALIDATION_FAILED', detail: 'body is empty: name at least one property to change' });

      const doc = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}' }] };
      const pol = await server.api('POST', '/v1/policies', { policyName: 'connect-only', policyDocument: doc });
      expect(pol.status).toBe(201);
      expect(pol.body.defaultVersionId).toBe(1);
      const v2 = await server.api('POST', '/v1/policies/connect-only/versions', { policyDocument: JSON.stringify(doc), setAsDefault: true });
      expect(v2.body).toMatchObject({ versionId: 2, isDefaultVersion: true });
      expect((await server.api('POST', '/v1/policies/connect-only/attach', { target: 'thinggroup/floor1' })).status).toBe(204);
      expect((await server.api('GET', '/v1/policies/connect-only')).body.targets).toEqual(['thinggroup/floor1']);
      const del = await server.api('DELETE', '/v1/policies/connect-only');
      expect(del.body.code).toBe('REGISTRY_POLICY_ATTACHED');
      const badDoc = await server.api('POST', '/v1/policies', { policyName: 'bad', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Maybe', Action: 'iot:Connect', Resource: '*' }] } });
      expect(badDoc.status).toBe(400);
      expect(badDoc.body.code).toMatch(/^POLICY_/);
      expect((await server.api('POST', '/v1/policies/connect-only/detach', { target: 'thinggroup/floor1' })).status).toBe(204);
    });

    it('rejects bad input with 4xx and stable codes, never 500', async () => {
      const malformed = await server.api('POST', '/v1/things', undefined, { rawBody: '{"thingName": ' });
      expect(malformed.status).toBe(400);
      expect(malformed.body.code).toBe('API_MALFORMED_JSON');
      expect(malformed.headers.get('content-type')).toContain('application/problem+json');
      const unknown = await server.api('POST', '/v1/things', { thingName: 'x', colour: 'red' });
      expect(unknown.status).toBe(400);
      expect(unknown.body.code).toBe('API_VALIDATION_FAILED');
      expect(unknown.body.detail).toBe('body has an unknown property "colour"');
      const wrongType = await server.api('POST', '/v1/things', { thingName: 42 });
      expect(wrongType.body.code).toBe('API_VALIDATION_FAILED');
      expect(wrongType.body.detail).toBe('body.thingName must be string');
      expect((await server.api('POST', '/v1/things', {})).body.detail).toBe('body lacks the required property "thingName"');
      const badName = await server.api('POST', '/v1/things', { thingName: 'no spaces/allowed' });
      expect(badName.status).toBe(400);
      // An oversized body gets its 413 every time: the server reads the rest of the body instead of closing while
      // the client is still sending (which the client saw as EPIPE, in 36 of 60 tries before the fix).
      const bigBody = JSON.stringify({ thingName: 'x', attributes: { a: 'y'.repeat(2 * 1024 * 1024) } });
      for (let i = 0; i < 20; i++) {
        const big = await server.api('POST', '/v1/things', undefined, { rawBody: bigBody });
        expect(big.status).toBe(413);
        expect(big.body.code).toBe('API_BODY_TOO_LARGE');
      }
      const badAttr = await server.api('POST', '/v1/things', { thingName: 'x', attributes: { 'bad key!': 'v' } });
      expect(badAttr.status).toBe(400);
      expect(badAttr.body.code).toBe('REGISTRY_ATTRIBUTES_INVALID');
      const noRoute = await server.api('GET', '/v1/nothing-here');
      expect(noRoute.body.code).toBe('API_ROUTE_NOT_FOUND');
      const noAuth = await fetch(`${server.apiUrl}/v1/things`);
      expect(noAuth.status).toBe(401);
      expect(((await noAuth.json()) as { detail: string }).detail).toBe('send Authorization: Bearer <token>');
      const shortToken = await server.api('GET', '/v1/things', undefined, { token: 'wrong' });
      expect(shortToken.body).toMatchObject({ code: 'API_UNAUTHENTICATED', detail: 'the Authorization header is not "Bearer <token>" with a token of 16 to 256 characters (A-Z a-z 0-9 . _ ~ + / = -)' });
      const badToken = await server.api('GET', '/v1/things', undefined, { token: 'gh_not-a-real-token-at-all' });
      expect(badToken.body).toMatchObject({ code: 'API_UNAUTHENTICATED', detail: 'unknown or revoked token' });
      // the router's own refusals are problems with a code too
      const badUrl = await fetch(`${server.apiUrl}/v1/webhooks/%ZZ/dead-letters`);
      expect(badUrl.status).toBe(400);
      expect(badUrl.headers.get('content-type')).toContain('application/problem+json');
      expect(((await badUrl.json()) as { code: string }).code).toBe('API_BAD_URL');
      // valid JSON with a __proto__ key is refused, and the message says it may be that
      const proto = await server.api('POST', '/v1/things', undefined, { rawBody: '{"thingName":"p","attributes":{"__proto__":"x"}}' });
      expect(proto.body).toMatchObject({ code: 'API_MALFORMED_JSON', detail: 'the body is not valid JSON, or holds a __proto__ or constructor.prototype key' });
      // a name as long as the API accepts can be read and deleted through its path (it was a 414 past 100 characters)
      const long = 'L'.repeat(128);
      expect((await server.api('POST', '/v1/things', { thingName: long })).status).toBe(201);
      expect((await server.api('GET', `/v1/things/${long}`)).body.thingName).toBe(long);
      expect((await server.api('DELETE', `/v1/things/${long}`)).status).toBe(204);
    });

    it('enforces roles and tenant isolation for every resource', async () => {
      const operator = await server.api('POST', '/v1/tokens', { role: 'operator', name: 'ops' });
      expect(operator.status).toBe(201);
      expect(operator.body.token).toMatch(/^gh_/);
      const installer = await server.api('POST', '/v1/tokens', { role: 'installer', name: 'inst' });
      expect((await server.api('GET', '/v1/things', undefined, { token: installer.body.token })).body.code).toBe('API_FORBIDDEN');
      expect((await server.api('POST', '/v1/tokens', { role: 'admin', name: 'x' }, { token: operator.body.token })).status).toBe(403);

      expect((await server.api('POST', '/v1/tenants', { name: 'acme' })).status).toBe(201);
      const acmeAdmin = await server.api('POST', '/v1/tokens', { role: 'admin', name: 'acme-admin', tenant: 'acme' });
      const t = acmeAdmin.body.token as string;
      // tenant B cannot read or change anything of tenant A
      for (const p of ['/v1/things/dev-1', '/v1/thing-types/sensor', '/v1/thing-groups/floor1', '/v1/policies/connect-only']) {
        expect((await server.api('GET', p, undefined, { token: t })).status).toBe(404);
      }
      expect((await server.api('DELETE', '/v1/things/dev-2', undefined, { token: t })).status).toBe(404);
      expect((await server.api('PATCH', '/v1/things/dev-2', { attributes: { x: 'y' } }, { token: t })).status).toBe(404);
      expect((await server.api('POST', '/v1/policies/connect-only/attach', { target: 'thinggroup/floor1' }, { token: t })).status).toBe(404);
      expect((await server.api('GET', '/v1/things', undefined, { token: t })).body.things).toEqual([]);
      expect((await server.api('GET', '/v1/audit', undefined, { token: t })).body.entries.every((e: { tenantId: string }) => e.tenantId === 'acme')).toBe(true);
      expect((await server.api('GET', '/v1/things', undefined, { token: t, tenant: 'default' })).body.code).toBe('API_TENANT_OVERRIDE_FORBIDDEN');
      // same names live independently in each tenant
      expect((await server.api('POST', '/v1/things', { thingName: 'dev-1' }, { token: t })).status).toBe(201);
      // a default-tenant admin may act on another tenant
      const viaHeader = await server.api('GET', '/v1/things/dev-1', undefined, { tenant: 'acme' });
      expect(viaHeader.body.attributes).toEqual({});
      expect((await server.api('GET', '/v1/things', undefined, { tenant: 'nope' })).body.code).toBe('REGISTRY_TENANT_NOT_FOUND');
      // installation-wide acts and other tenants' records stay with the default tenant's admins
      expect((await server.api('POST', '/v1/maintenance/sweep-unregistered', undefined, { token: t })).body.code).toBe('API_FORBIDDEN');
      expect((await server.api('POST', '/v1/maintenance/sweep-unregistered')).status).toBe(200);
      expect((await server.api('GET', '/v1/tenants/acme', undefined, { token: operator.body.token })).status).toBe(404);
      expect((await server.api('GET', '/v1/tenants/acme')).body.tenantId).toBe('acme');
      expect((await server.api('GET', '/v1/tenants/default', undefined, { token: operator.body.token })).status).toBe(200);
    });

    it("keeps the default tenant's last admin token from being revoked; other tokens are revoked at once", async () => {
      const tokens = JSON.parse((await server.cli(['--json', 'token', 'list'])).stdout) as { tokenId: string; name: string; role: string; revokedAt: string | null }[];
      const live = tokens.filter((x) => x.role === 'admin' && x.revokedAt === null);
      expect(live.map((x) => x.name)).toEqual(['admin']);
      const own = live[0]?.tokenId ?? '';
      const refused = await server.cli(['token', 'revoke', own]);
      expect(refused).toMatchObject({ code: 1, stderr: 'error REGISTRY_TOKEN_LAST_ADMIN: this is the last live admin token of the default tenant: revoking it would lock every caller out; create another admin token first\n' });
      expect((await server.api('GET', '/v1/things')).status).toBe(200);
      const second = await server.api('POST', '/v1/tokens', { role: 'admin', name: 'second-admin' });
      expect((await server.api('GET', '/v1/things', undefined, { token: second.body.token })).status).toBe(200);
      expect((await server.cli(['token', 'revoke', second.body.tokenId])).code).toBe(0);
      expect((await server.api('GET', '/v1/things', undefined, { token: second.body.token })).body.code).toBe('API_UNAUTHENTICATED');
      // another tenant's last admin token may go: a default-tenant admin can make a new one
      const acme = (await server.api('GET', '/v1/tokens', undefined, { tenant: 'acme' })).body.tokens as { tokenId: string; role: string; revokedAt: string | null }[];
      const acmeAdmins = acme.filter((x) => x.role === 'admin' && x.revokedAt === null);
      expect(acmeAdmins.length).toBeGreaterThan(0);
      for (const x of acmeAdmins) expect((await server.api('DELETE', `/v1/tokens/${x.tokenId}`, undefined, { tenant: 'acme' })).status).toBe(204);
    });

    it('keeps concurrent requests consistent: a delete racing attaches leaves no orphan, a twin create is a 409, a twin delete is one 204', async () => {
      const doc = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] };
      const cert = (await server.api('POST', '/v1/certificates/keys-and-certificate', {})).body.certificateId as string;
      for (let round = 0; round < 6; round += 1) {
        const p = `race-p${round}`;
        const t = `race-t${round}`;
        expect((await server.api('POST', '/v1/policies', { policyName: p, policyDocument: doc })).status).toBe(201);
        expect((await server.api('POST', '/v1/things', { thingName: t })).status).toBe(201);
        const answers = await Promise.all([
          server.api('DELETE', `/v1/policies/${p}`),
          server.api('DELETE', `/v1/things/${t}?detachPrincipals=true`),
          ...[1, 2, 3].flatMap(() => [server.api('POST', `/v1/policies/${p}/attach`, { target: cert }), server.api('POST', `/v1/things/${t}/principals`, { certificateId: cert })]),
        ]);
        for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBeLessThan(500);
        // whatever won, nothing points at a policy or thing that is not there
        const policyLeft = (await server.api('GET', `/v1/policies/${p}`)).status === 200;
        const attachments = await selectRows(server, `select target_id from policy_attachments where policy_name = '${p}'`);
        if (!policyLeft) expect(attachments).toEqual([]);
        const thingLeft = (await server.api('GET', `/v1/things/${t}`)).status === 200;
        const principals = await selectRows(server, `select certificate_id from thing_principals where thing_name = '${t}'`);
        if (!thingLeft) expect(principals).toEqual([]);
        // and a new policy of the name starts with no targets
        if (!policyLeft) {
          expect((await server.api('POST', '/v1/policies', { policyName: p, policyDocument: doc })).status).toBe(201);
          expect((await server.api('GET', `/v1/policies/${p}`)).body.targets).toEqual([]);
        }
      }
      // ten creates of one group or policy at once: one 201, the rest 409 (some were 500 on PostgreSQL)
      for (const [url, body] of [['/v1/thing-groups', { thingGroupName: 'twin-group' }], ['/v1/policies', { policyName: 'twin-policy', policyDocument: doc }]] as const) {
        const statuses = (await Promise.all(Array.from({ length: 10 }, () => server.api('POST', url, body)))).map((r) => r.status);
        expect(statuses.filter((s) => s === 201), url).toHaveLength(1);
        expect(statuses.filter((s) => s !== 201).every((s) => s === 409), `${url}: ${statuses.join(',')}`).toBe(true);
      }
      // five deletes of one thing at once: one 204 and one audit entry
      expect((await server.api('POST', '/v1/things', { thingName: 'twin-delete' })).status).toBe(201);
      const deletes = (await Promise.all(Array.from({ length: 5 }, () => server.api('DELETE', '/v1/things/twin-delete')))).map((r) => r.status);
      expect(deletes.filter((s) => s === 204)).toHaveLength(1);
      expect(deletes.filter((s) => s !== 204).every((s) => s === 404)).toBe(true);
      const audit = (await server.api('GET', '/v1/audit?maxResults=100')).body.entries as { action: string; target: string }[];
      expect(audit.filter((e) => e.action === 'thing.delete' && e.target === 'thing/twin-delete')).toHaveLength(1);
    });

    it('keeps up to 5 policy versions from the CLI: create-version --set-as-default as the AWS CLI names it, delete-version makes room', async () => {
      expect((await server.api('POST', '/v1/policies', { policyName: 'cli-versions', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } })).status).toBe(201);
      const policyDoc = '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "iot:Connect", "Resource": "*" }] }';
      for (const v of [2, 3, 4]) expect((await server.api('POST', '/v1/policies/cli-versions/versions', { policyDocument: policyDoc })).body.versionId).toBe(v);
      expect(JSON.parse((await server.cli(['--json', 'policy', 'create-version', 'cli-versions', policyDoc, '--set-as-default'])).stdout)).toMatchObject({ versionId: 5, isDefaultVersion: true });
      expect((await server.cli(['policy', 'create-version', 'cli-versions', policyDoc])).stderr).toBe('error REGISTRY_POLICY_VERSION_LIMIT: policy "cli-versions" already has 5 versions\n');
      expect((await server.cli(['policy', 'delete-version', 'cli-versions', '5'])).stderr).toBe('error REGISTRY_POLICY_VERSION_IS_DEFAULT: version 5 is the default of "cli-versions"\n');
      expect((await server.cli(['policy', 'delete-version', 'cli-versions', 'one'])).stderr).toBe('error CLI_USAGE_INVALID: <versionId> must be a whole number from 1, got "one"\n');
      expect((await server.cli(['policy', 'delete-version', 'cli-versions', '1'])).code).toBe(0);
      expect(JSON.parse((await server.cli(['--json', 'policy', 'create-version', 'cli-versions', policyDoc])).stdout)).toMatchObject({ versionId: 6, isDefaultVersion: false });
    });

    it('refuses a second process on the same data directory', async () => {
      const r = await execFileAsync(process.execPath, [BIN, 'serve'], { env: { ...server.env }, cwd: REPO, timeout: 30_000 }).catch((e: { code: number; stderr: string }) => e);
      expect((r as { code: number }).code).toBe(1);
      expect((r as { stderr: string }).stderr).toContain('APP_DATA_DIR_LOCKED');
    });

    it('drives the registry from the CLI with --json', async () => {
      const c = await server.cli(['--json', 'thing', 'create', 'cli-thing', '-a', 'room=12']);
      expect(c.code).toBe(0);
      expect(JSON.parse(c.stdout)).toMatchObject({ thingName: 'cli-thing', attributes: { room: '12' } });
      const list = await server.cli(['--json', 'thing', 'list', '--prefix', 'cli-']);
      expect(JSON.parse(list.stdout).things.map((x: { thingName: string }) => x.thingName)).toEqual(['cli-thing']);
      // an argument is one path segment: `cert get ../things` is a malformed id, not the list of things
      const traversal = await server.cli(['cert', 'get', '../things']);
      expect(traversal.code).toBe(1);
      expect(traversal.stderr).toBe('error API_VALIDATION_FAILED: params.certificateId must match pattern "^[0-9a-f]{64}$"\n');
      expect((await server.cli(['thing', 'update', 'cli-thing'])).stderr).toBe('error CLI_USAGE_INVALID: nothing to change: give --attribute k=v (k= removes it) and/or --type\n');
      expect((await server.api('GET', '/v1/things/cli-thing')).body.version).toBe(1);
      // commander's own refusals carry the CLI's code too, and point at the command's help
      const noArg = await server.cli(['thing', 'create']);
      expect(noArg).toMatchObject({ code: 1, stdout: '', stderr: "error CLI_USAGE_INVALID: missing required argument 'thingName'\n(run 'gatehouse thing create --help' for usage)\n" });
      expect((await server.cli(['thing', 'list', '--colour', 'red'])).stderr).toBe("error CLI_USAGE_INVALID: unknown option '--colour'\n(run 'gatehouse thing list --help' for usage)\n");
      expect((await server.cli(['device', 'provision', '--endpoint', 'localhost:8883'])).stderr).toMatch(/^error CLI_USAGE_INVALID: required option '--claim-cert <file>' not specified\n/);
      expect((await server.cli(['thing', 'nonsense'])).stderr).toMatch(/^error CLI_USAGE_INVALID: unknown command 'nonsense'\n/);
      // a GATEHOUSE_URL without its scheme (fetch said "Failed to parse URL from 127.0.0.1:…/v1/things?")
      const noScheme = await server.cli(['thing', 'list'], { GATEHOUSE_URL: server.apiUrl.replace(/^http:\/\//, '') });
      expect(noScheme.code).toBe(1);
      expect(noScheme.stderr).toBe(`error CONFIG_INVALID: GATEHOUSE_URL must be the server's http:// or https:// URL, e.g. http://127.0.0.1:8080 (got "${server.apiUrl.replace(/^http:\/\//, '')}")\n`);
      expect((await server.cli(['ca', 'update', 'ab'.repeat(32)])).stderr).toBe('error CLI_USAGE_INVALID: nothing to change: give --status, --auto-register / --no-auto-register, --jitp-template or --first-connect\n');
      const missing = await server.cli(['thing', 'get', 'nope']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('REGISTRY_THING_NOT_FOUND');
      // a policy document goes to the server as text: its JSON errors come back with a code and a path
      const badDoc = await server.cli(['policy', 'create', 'cli-bad', '{not json']);
      expect(badDoc.code).toBe(1);
      expect(badDoc.stderr).toBe('error POLICY_DOCUMENT_MALFORMED_JSON: The policy document is not valid JSON. at $\n');
      const noResource = await server.cli(['policy', 'create', 'cli-bad', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect"}]}']);
      expect(noResource.stderr).toBe('error POLICY_RESOURCE_INVALID: A statement needs Resource (or NotResource). at $.Statement[0]\n');
      const good = await server.cli(['--json', 'policy', 'create', 'cli-good', '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "iot:Connect", "Resource": "*" }] }']);
      expect(good.code, good.stderr).toBe(0);
      expect(JSON.parse(JSON.parse(good.stdout).policyDocument)).toEqual({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] });
      // a document file is passed as @file; a bare file name (as `template create` takes one) gets a hint, not a JSON error
      const docFile = path.join(server.dataDir, 'cli-file-policy.json');
      writeFileSync(docFile, '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "iot:Publish", "Resource": "*" }] }');
      const bareName = await server.cli(['policy', 'create', 'cli-file', docFile]);
      expect(bareName.code).toBe(1);
      expect(bareName.stderr).toBe(`error CLI_USAGE_INVALID: the document argument is JSON text or @file; "${docFile}" is a file: pass it as @${docFile}\n`);
      expect((await server.api('GET', '/v1/policies/cli-file')).status).toBe(404);
      const fromFile = await server.cli(['--json', 'policy', 'create', 'cli-file', `@${docFile}`]);
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(JSON.parse(JSON.parse(fromFile.stdout).policyDocument).Statement[0].Action).toBe('iot:Publish');
      const help = await server.cli(['thing', 'create', '--help']);
      expect(help.stdout).toContain('--with-certificate');
      expect((await server.cli(['serve', '--help'])).stdout).toContain('GATEHOUSE_V8_INTERRUPT_BUDGET');
      const badBudget = await server.cli(['serve'], { GATEHOUSE_V8_INTERRUPT_BUDGET: 'fast' });
      expect(badBudget.code).toBe(2);
      expect(badBudget.stderr).toContain('CONFIG_INVALID: GATEHOUSE_V8_INTERRUPT_BUDGET');
      const v = await server.cli(['--json', 'audit', 'verify']);
      expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
      // lists print nested values as JSON (they were dropped: a thing's attributes, an audit entry's details)
      expect((await server.cli(['thing', 'list', '--prefix', 'cli-'])).stdout).toContain('  attributes={"room":"12"}  ');
      expect((await server.cli(['audit', 'list', '--max', '1'])).stdout).toMatch(/^seq=\d+ .* details=\{.*\}  prevHash=/);
      // audit list reads past the API's page of 250 entries, newest first, each once
      for (let i = 0; i < 270; i += 30) await Promise.all(Array.from({ length: 30 }, (_, j) => server.api('POST', '/v1/things', { thingName: `audit-fill-${i + j}` })));
      const total = (await server.api('GET', '/v1/audit/verify')).body.entries as number;
      const many = await server.cli(['--json', 'audit', 'list', '--max', '1000']);
      const seqs = (JSON.parse(many.stdout) as { seq: number }[]).map((e) => e.seq);
      expect(seqs.length).toBeGreaterThan(270);
      expect(seqs.length).toBeLessThanOrEqual(total);
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => b - a));
      expect(seqs.at(-1)).toBe(1);
      expect(JSON.parse((await server.cli(['--json', 'audit', 'list', '--max', '260'])).stdout)).toHaveLength(260);
      // list commands show the whole list, past the API's pages (they printed its first page of 50 and said nothing)
      for (let i = 0; i < 260; i += 52) await Promise.all(Array.from({ length: 52 }, (_, j) => server.api('POST', '/v1/thing-groups', { thingGroupName: `fill-${String(i + j).padStart(3, '0')}` })));
      const groups = (JSON.parse((await server.cli(['--json', 'thing-group', 'list'])).stdout) as { thingGroupName: string }[]).map((g) => g.thingGroupName).filter((n) => n.startsWith('fill-'));
      expect(groups).toEqual(Array.from({ length: 260 }, (_, i) => `fill-${String(i).padStart(3, '0')}`));
      expect((await server.cli(['thing-group', 'list'])).stdout.split('\n').filter((l) => l.startsWith('thingGroupName=fill-'))).toHaveLength(260);
      const things = JSON.parse((await server.cli(['--json', 'thing', 'list', '--prefix', 'audit-fill-'])).stdout) as { things: unknown[]; nextToken?: string };
      expect(things.things).toHaveLength(270);
      expect(things.nextToken).toBeUndefined();
      const page = JSON.parse((await server.cli(['--json', 'thing', 'list', '--prefix', 'audit-fill-', '--max', '100'])).stdout) as { things: unknown[]; nextToken?: string };
      expect(page.things).toHaveLength(100);
      expect((await server.cli(['thing', 'list', '--prefix', 'audit-fill-', '--max', '100', '--next', page.nextToken ?? ''])).stdout).toMatch(/^(thingName=audit-fill-.*\n){100}next page: --next \S+\n$/);
    }, 120_000); // one CLI process per step, about a second each

    it('keeps all state across a restart, stops cleanly on SIGTERM, and audit verify detects tampering', async () => {
      // A request admitted before SIGTERM finishes; one that arrives while the API closes (pipelined behind it on the
      // same connection) gets a 503 problem with its code, not Fastify's own body.
      const sock = net.connect(Number(new URL(server.apiUrl).port), '127.0.0.1');
      await once(sock, 'connect');
      let raw = '';
      sock.on('data', (d: Buffer) => (raw += d.toString('latin1')));
      const socketClosed = once(sock, 'close');
      const body = JSON.stringify({ thingName: 'during-shutdown' });
      sock.write(`POST /v1/things HTTP/1.1\r\nHost: gh\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
      // "100 Continue": Node has read its headers and handed the request to Fastify, which admitted it; its body is pending
      await expect.poll(() => raw, { timeout: 10_000, interval: 20 }).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
      const stopped = server.stop('SIGTERM');
      // the API stops listening once it has begun to close (after the device listeners)
      await expect.poll(() => new Promise<boolean>((resolve) => {
        const probe = net.connect(Number(new URL(server.apiUrl).port), '127.0.0.1');
        probe.once('connect', () => { probe.destroy(); resolve(false); });
        probe.once('error', () => resolve(true));
      }), { timeout: 15_000, interval: 50 }).toBe(true);
      sock.write(`${body.slice(5)}GET /v1/things HTTP/1.1\r\nHost: gh\r\nAuthorization: Bearer ${server.token}\r\n\r\n`);
      await socketClosed;
      const answers = raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '').split(/(?=HTTP\/1\.1 \d{3} )/);
      expect(answers).toHaveLength(2);
      expect(answers[0]).toMatch(/^HTTP\/1\.1 201 /);
      expect(answers[1]).toMatch(/^HTTP\/1\.1 503 /);
      expect(answers[1]).toMatch(/\r\nconnection: close\r\n/i);
      expect(JSON.parse(answers[1]?.split('\r\n\r\n')[1] ?? '')).toMatchObject({ status: 503, code: 'API_SHUTTING_DOWN' });
      expect(await stopped).toBe(0);
      const again = await startServer({ dialect, dataDir: server.dataDir, databaseUrl: server.databaseUrl, keepDatabase: true });
      try {
        expect(again.token).toBe(server.token);
        expect(again.output()).not.toContain('shown once');
        expect((await again.api('GET', '/v1/things/dev-1')).body.attributes).toEqual({ fw: '1.2' });
        expect((await again.api('GET', '/v1/things/during-shutdown')).status).toBe(200);
        expect((await again.api('GET', '/v1/tenants')).body.tenants.map((x: { name: string }) => x.name)).toEqual(['acme', 'default']);
      } finally {
        await again.stop();
      }
      const offline = (args: string[]) =>
        execFileAsync(process.execPath, [BIN, '--json', 'audit', 'verify', '--offline', ...args], { env: server.env, cwd: REPO }).then(
          (r) => ({ code: 0, out: r.stdout }),
          (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
        );
      expect((await offline([])).code).toBe(0);
      // edit one entry behind Gatehouse's back
      const tamper = "update audit_log set actor = 'someone-else' where seq = 3";
      if (dialect.name === 'sqlite') {
        const db = new BetterSqlite3(path.join(server.dataDir, 'gatehouse.db'));
        db.exec(tamper);
        db.close();
      } else {
        const client = new pg.Client({ connectionString: server.databaseUrl });
        await client.connect();
        await client.query(tamper);
        await client.end();
      }
      const broken = await offline([]);
      expect(broken.code).toBe(1);
      expect(JSON.parse(broken.out)).toMatchObject({ ok: false, problem: { seq: 3, reason: 'hash_mismatch' } });
      // a data directory with no database: an error, and nothing is created there (it said "ok", 0 entries)
      if (dialect.name === 'sqlite') {
        const empty = mkdtempSync(path.join(tmpdir(), 'gh-verify-'));
        const r = await execFileAsync(process.execPath, [BIN, 'audit', 'verify', '--offline'], { env: { ...server.env, GATEHOUSE_DATA_DIR: empty }, cwd: REPO }).then(() => ({ code: 0, err: '' }), (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }));
        expect(r).toEqual({ code: 1, err: `error CLI_FILE_UNREADABLE: no Gatehouse database at ${path.join(empty, 'gatehouse.db')}: set GATEHOUSE_DATA_DIR to the server's data directory (or GATEHOUSE_DATABASE_URL)\n` });
        expect(readdirSync(empty)).toEqual([]);
        rmSync(empty, { recursive: true });
      }
    });
  });
}

describe('configuration errors', () => {
  it('fails at start with a clear message for a bad setting', async () => {
    const proc = spawn(process.execPath, [BIN, 'serve'], { env: { ...process.env, GATEHOUSE_API_PORT: 'eighty', GATEHOUSE_DATA_DIR: '/tmp/gh-never' }, cwd: REPO });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => proc.on('exit', r));
    expect(code).toBe(1);
    expect(err).toContain('CONFIG_INVALID');
    expect(err).toContain('GATEHOUSE_API_PORT');
  });
});
