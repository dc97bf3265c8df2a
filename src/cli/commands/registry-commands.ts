import { lookup } from 'node:dns/promises';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import * as pki from '../../pki/index.ts';
import type { CliContext } from '../cli-context.ts';
import { isGatehouseError } from '../../errors/index.ts';
import { ApiCallError } from '../client.ts';
import type { ApiClient } from '../client.ts';
import { CliErrors } from '../errors.ts';
import { collect, countOption, parseKeyValues, readDocument, refuseExistingOutput } from '../output.ts';

/**
 * Removes what a failed `thing create --with-certificate` made (its certificate, and the thing unless it existed
 * before). Returns the error to report: the original one, or, when something could not be removed, one that names it;
 * `certificateLeft` then says whether the certificate is still there (its key must not be thrown away).
 */
async function undoThingBundle(api: ApiClient, thingPath: string, thingExisted: boolean, certificateId: string | undefined, error: unknown): Promise<{ error: unknown; certificateLeft: boolean }> {
  const left: string[] = [];
  let certificateLeft = false;
  if (certificateId !== undefined) {
    await api.call('DELETE', `/v1/certificates/${certificateId}?forceDelete=true`).catch(() => {
      certificateLeft = true;
      left.push(`certificate ${certificateId}`);
    });
  }
  if (!thingExisted) await api.call('DELETE', `${thingPath}?detachPrincipals=true`).catch(() => left.push(`thing ${decodeURIComponent(thingPath.slice('/v1/things/'.length))}`));
  if (left.length === 0 || !(error instanceof ApiCallError || isGatehouseError(error))) return { error, certificateLeft };
  return { error: new ApiCallError(error.code, 0, `${error.message}; could not remove ${left.join(' and ')} again: delete ${left.length === 1 ? 'it' : 'them'} by hand`, error.details), certificateLeft };
}

/** Whether the thing at `thingPath` exists (any other failure is thrown). */
async function thingExists(api: ApiClient, thingPath: string): Promise<boolean> {
  try {
    await api.call('GET', thingPath);
    return true;
  } catch (error) {
    if (error instanceof ApiCallError && error.code === 'REGISTRY_THING_NOT_FOUND') return false;
    throw error;
  }
}

/** Writes a device's certificate and private key (0600, never over an existing file) into `dir`. */
function writeIdentity(dir: string, certificatePem: string, privateKeyPem: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'certificate.pem'), certificatePem);
  writeFileSync(path.join(dir, 'private.key'), privateKeyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(path.join(dir, 'private.key'), 0o600);
}

/** `gatehouse thing …`, `thing-type …`, `thing-group …`, `policy …`. */
export function registryCommands(c: CliContext): Command[] {
  const thing = new Command('thing').description('things (devices): create, get, list, update, delete, attach certificates');
  thing
    .command('create <thingName>')
    .description('create a thing; with --with-certificate also a key (made here, never sent), a certificate and a device bundle in --out')
    .option('-a, --attribute <k=v>', 'attribute (repeatable)', collect, [])
    .option('--type <thingTypeName>', 'thing type')
    .option('-g, --group <thingGroupName>', 'thing group (repeatable)', collect, [])
    .option('--with-certificate', 'generate a key locally, have Gatehouse sign its CSR, activate and attach it')
    .option('--policy <policyName>', 'policy to attach to the certificate (with --with-certificate)')
    .option('--out <dir>', 'bundle directory (with --with-certificate)', '.')
    .action((thingName: string, o: { attribute: string[]; type?: string; group: string[]; withCertificate?: boolean; policy?: string; out: string }, cmd: Command) =>
      c.run(async () => {
        const api = c.client(cmd);
        // without a certificate there is nothing to attach a policy to nor to write a bundle of: not silently ignored
        if (o.withCertificate !== true && (o.policy !== undefined || cmd.getOptionValueSource('out') === 'cli')) throw CliErrors.error('CLI_USAGE_INVALID', '--policy and --out go with --with-certificate');
        if (o.withCertificate === true) refuseExistingOutput(o.out, ['certificate.pem', 'private.key']);
        const thingPath = `/v1/things/${encodeURIComponent(thingName)}`;
        // Everything a later step needs is checked before anything is made: a missing policy used to leave the thing
        // and an ACTIVE certificate behind, with the key (which exists nowhere else) discarded.
        if (o.withCertificate === true && o.policy !== undefined) await api.call('GET', `/v1/policies/${encodeURIComponent(o.policy)}`);
        const existed = o.withCertificate === true && (await thingExists(api, thingPath));
        const created = await api.call('POST', '/v1/things', { thingName, attributes: parseKeyValues(o.attribute), ...(o.type === undefined ? {} : { thingTypeName: o.type }), ...(o.group.length === 0 ? {} : { thingGroups: o.group }) });
        if (o.withCertificate !== true) {
          c.print(cmd, created);
          return;
        }
        const keys = pki.generateKeyPair('EC_P256');
        const csr = pki.createCsr({ privateKey: keys.privateKey, spkiDer: keys.spkiDer, subject: { CN: [thingName] } });
        let cert: { certificateId: string; certificatePem: string } | undefined;
        let ep: { endpoint: string; mqttPort: number; rootCaPem: string };
        try {
          // INACTIVE until attached: if a step fails, what was made is removed again
          cert = await api.call<{ certificateId: string; certificatePem: string }>('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csr, setAsActive: false });
          await api.call('POST', `${thingPath}/principals`, { certificateId: cert.certificateId });
          if (o.policy !== undefined) await api.call('POST', `/v1/policies/${encodeURIComponent(o.policy)}/attach`, { target: cert.certificateId });
          ep = await api.call<{ endpoint: string; mqttPort: number; rootCaPem: string }>('GET', '/v1/endpoint');
          await api.call('PATCH', `/v1/certificates/${cert.certificateId}`, { status: 'ACTIVE' });
        } catch (error) {
          const undone = await undoThingBundle(api, thingPath, existed, cert?.certificateId, error);
          // a certificate that could not be removed keeps its key: written, as it would have been
          if (undone.certificateLeft && cert !== undefined) writeIdentity(o.out, cert.certificatePem, keys.privateKeyPem);
          throw undone.error;
        }
        writeIdentity(o.out, cert.certificatePem, keys.privateKeyPem);
        writeFileSync(path.join(o.out, 'root-ca.pem'), ep.rootCaPem);
        writeFileSync(path.join(o.out, 'endpoint.txt'), `${ep.endpoint}:${ep.mqttPort}\n`);
        // as `device provision` writes it: `device connect --creds` then connects as the thing (its client id)
        writeFileSync(path.join(o.out, 'provisioning.json'), JSON.stringify({ thingName, certificateId: cert.certificateId, deviceConfiguration: {}, servername: null }, null, 2));
        const dir = o.out;
        // mosquitto_pub sends -h as the TLS server name, which picks the tenant: a tenant's endpoint must resolve
        const resolves = await lookup(ep.endpoint).then(() => true, () => false);
        c.print(cmd, {
          thingName,
          certificateId: cert.certificateId,
          bundle: dir,
          connect: `mosquitto_pub --cafile ${dir}/root-ca.pem --cert ${dir}/certificate.pem --key ${dir}/private.key -h ${ep.endpoint} -p ${ep.mqttPort} -i ${thingName} -t things/${thingName}/hello -m hi`,
          ...(resolves ? {} : { note: `${ep.endpoint} does not resolve on this machine, and mosquitto_pub sends it as the TLS server name that selects the tenant: map it first (e.g. "127.0.0.1 ${ep.endpoint}" in /etc/hosts). gatehouse device connect --creds ${dir} needs no DNS.` }),
        });
      }),
    );
  thing.command('get <thingName>').description('describe a thing').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/things/${encodeURIComponent(n)}`))));
  thing
    .command('list')
    .description('list things')
    .option('--prefix <namePrefix>', 'name prefix')
    .option('--type <thingTypeName>', 'thing type')
    .option('--group <thingGroupName>', 'thing group')
    .option('--max <n>', 'one page of this size (1-250) instead of the whole list')
    .option('--next <token>', 'the page after the one that printed this token')
    .action((o: { prefix?: string; type?: string; group?: string; max?: string; next?: string }, cmd: Command) =>
      c.run(async () => {
        const q = new URLSearchParams();
        if (o.prefix !== undefined) q.set('namePrefix', o.prefix);
        if (o.type !== undefined) q.set('thingTypeName', o.type);
        if (o.group !== undefined) q.set('thingGroupName', o.group);
        if (o.max === undefined && o.next === undefined) {
          const things = await c.client(cmd).listAll('/v1/things', 'things', q);
          c.print(cmd, c.globals(cmd).json === true ? { things } : things);
          return;
        }
        if (o.max !== undefined) q.set('maxResults', o.max);
        if (o.next !== undefined) q.set('nextToken', o.next);
        const r = await c.client(cmd).call<{ things: unknown[]; nextToken?: string }>('GET', `/v1/things?${q.toString()}`);
        c.print(cmd, c.globals(cmd).json === true ? r : r.things);
        if (c.globals(cmd).json !== true && r.nextToken !== undefined) c.io.stdout(`next page: --next ${r.nextToken}\n`);
      }),
    );
  thing
    .command('update <thingName>')
    .description('merge attributes (k= removes one) or change the type')
    .option('-a, --attribute <k=v>', 'attribute (repeatable; empty value removes it)', collect, [])
    .option('--type <thingTypeName>', 'new thing type')
    .action((n: string, o: { attribute: string[]; type?: string }, cmd: Command) =>
      c.run(async () => {
        if (o.attribute.length === 0 && o.type === undefined) throw CliErrors.error('CLI_USAGE_INVALID', 'nothing to change: give --attribute k=v (k= removes it) and/or --type');
        const attributes = Object.fromEntries(Object.entries(parseKeyValues(o.attribute)).map(([k, v]) => [k, v === '' ? null : v]));
        c.print(cmd, await c.client(cmd).call('PATCH', `/v1/things/${encodeURIComponent(n)}`, { attributes, ...(o.type === undefined ? {} : { thingTypeName: o.type }) }));
      }),
    );
  thing.command('delete <thingName>')
    .description('delete a thing; refused while certificates are attached to it, unless --detach-principals')
    .option('--detach-principals', 'detach its certificates in the same transaction (they stay ACTIVE; their devices lose the thing)')
    .action((n: string, o: { detachPrincipals?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/things/${encodeURIComponent(n)}${o.detachPrincipals === true ? '?detachPrincipals=true' : ''}`))));
  thing.command('attach-certificate <thingName> <certificateId>').description('attach a certificate (principal) to a thing').action((n: string, id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/things/${encodeURIComponent(n)}/principals`, { certificateId: id }))));
  thing.command('detach-certificate <thingName> <certificateId>').description('detach a certificate from a thing').action((n: string, id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/things/${encodeURIComponent(n)}/principals/${encodeURIComponent(id)}`))));

  const type = new Command('thing-type').description('thing types');
  type.command('create <name>').description('create a thing type').option('--description <text>').action((n: string, o: { description?: string }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/thing-types', { thingTypeName: n, ...(o.description === undefined ? {} : { description: o.description }) }))));
  type.command('get <name>').description('describe a thing type').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/thing-types/${encodeURIComponent(n)}`))));
  type.command('list').description('list thing types').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).listAll('/v1/thing-types', 'thingTypes'))));
  type.command('deprecate <name>').description('deprecate (--undo to undeprecate)').option('--undo').action((n: string, o: { undo?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('PATCH', `/v1/thing-types/${encodeURIComponent(n)}`, { deprecated: o.undo !== true }))));
  type.command('delete <name>').description('delete an unused thing type').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/thing-types/${encodeURIComponent(n)}`))));

  const group = new Command('thing-group').description('thing groups and membership');
  group.command('create <name>').description('create a thing group').option('-a, --attribute <k=v>', 'attribute (repeatable)', collect, []).action((n: string, o: { attribute: string[] }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/thing-groups', { thingGroupName: n, attributes: parseKeyValues(o.attribute) }))));
  group.command('get <name>').description('describe a thing group').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/thing-groups/${encodeURIComponent(n)}`))));
  group.command('list').description('list thing groups').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).listAll('/v1/thing-groups', 'thingGroups'))));
  group.command('delete <name>').description('delete a thing group').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/thing-groups/${encodeURIComponent(n)}`))));
  group.command('add-thing <name> <thingName>').description('add a thing to the group').action((n: string, t: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/thing-groups/${encodeURIComponent(n)}/things`, { thingName: t }))));
  group.command('remove-thing <name> <thingName>').description('remove a thing from the group').action((n: string, t: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/thing-groups/${encodeURIComponent(n)}/things/${encodeURIComponent(t)}`))));

  const policy = new Command('policy').description('IoT policies, versions and attachments');
  policy.command('create <name> <document>').description('create a policy; document is JSON or @file.json').action((n: string, d: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/policies', { policyName: n, policyDocument: readDocument(d) }))));
  policy.command('get <name>').description('describe a policy and its targets').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/policies/${encodeURIComponent(n)}`))));
  policy.command('list').description('list policies').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).listAll('/v1/policies', 'policies'))));
  policy.command('delete <name>').description('delete a detached policy').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/policies/${encodeURIComponent(n)}`))));
  policy.command('attach <name> <target>').description('attach to a certificate id or thinggroup/<name>').action((n: string, t: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/policies/${encodeURIComponent(n)}/attach`, { target: t }))));
  policy.command('detach <name> <target>').description('detach from a certificate id or thinggroup/<name>').action((n: string, t: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/policies/${encodeURIComponent(n)}/detach`, { target: t }))));
  policy.command('create-version <name> <document>')
    .description('add a version (JSON or @file); a policy keeps at most 5 (delete-version makes room)')
    .option('--default', 'make it the default')
    .option('--set-as-default', 'the same as --default (the AWS CLI\'s name)')
    .action((n: string, d: string, o: { default?: boolean; setAsDefault?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/policies/${encodeURIComponent(n)}/versions`, { policyDocument: readDocument(d), setAsDefault: o.default === true || o.setAsDefault === true }))));
  policy.command('versions <name>').description('list versions').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ policyVersions: unknown[] }>('GET', `/v1/policies/${encodeURIComponent(n)}/versions`)).policyVersions)));
  policy.command('set-default-version <name> <versionId>').description('make a version the default').action((n: string, v: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/policies/${encodeURIComponent(n)}/versions/${countOption('<versionId>', v)}/default`))));
  policy.command('delete-version <name> <versionId>').description('delete a version that is not the default').action((n: string, v: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/policies/${encodeURIComponent(n)}/versions/${countOption('<versionId>', v)}`))));
  return [thing, type, group, policy];
}
