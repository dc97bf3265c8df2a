import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import type { CliContext } from '../cli-context.ts';
import { CliErrors } from '../errors.ts';
import { countOption, readInputFile, refuseUnwritableFile } from '../output.ts';

const readPem = (file: string): string => readInputFile(file, 'PEM file');

/** `gatehouse cert …` and `gatehouse ca …`. */
export function pkiCommands(c: CliContext): Command[] {
  const cert = new Command('cert').description('device certificates: issue, register, activate, revoke, transfer');
  cert
    .command('create-from-csr <csrFile>')
    .description('issue a certificate for a CSR (the key stays where the CSR was made)')
    .option('--active', 'set ACTIVE at once')
    .option('--ca <caCertificateId>', 'owned CA to issue with (default: the tenant issuing CA)')
    .option('--out <file>', 'write the certificate PEM here')
    .action((f: string, o: { active?: boolean; ca?: string; out?: string }, cmd: Command) =>
      c.run(async () => {
        // checked before the certificate is issued: a bad path failed after it, leaving it issued and unsaved
        if (o.out !== undefined) refuseUnwritableFile(o.out, '--out');
        const r = await c.client(cmd).call<{ certificatePem: string }>('POST', '/v1/certificates/from-csr', { certificateSigningRequest: readPem(f), setAsActive: o.active === true, ...(o.ca === undefined ? {} : { caCertificateId: o.ca }) });
        if (o.out !== undefined) writeFileSync(o.out, r.certificatePem);
        c.print(cmd, r);
      }),
    );
  cert
    .command('create-keys')
    .description('development only: the server makes the key pair and returns the private key once')
    .option('--active', 'set ACTIVE at once')
    .action((o: { active?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/certificates/keys-and-certificate', { setAsActive: o.active === true }))));
  cert
    .command('register <certFile>')
    .description('register a certificate issued by a CA registered in this tenant')
    .option('--ca-cert <caFile>', 'the registered CA the certificate must chain to (default: whichever ACTIVE CA of the tenant it chains to)')
    .option('--status <status>', 'ACTIVE | INACTIVE | PENDING_ACTIVATION')
    .option('--without-ca', 'multi-account registration: pin the certificate by fingerprint, no CA needed')
    .action((f: string, o: { caCert?: string; status?: string; withoutCa?: boolean }, cmd: Command) =>
      c.run(async () => {
        if (o.withoutCa === true && o.caCert !== undefined) throw CliErrors.error('CLI_USAGE_INVALID', '--without-ca registers the certificate with no CA: it excludes --ca-cert');
        const body = { certificatePem: readPem(f), ...(o.status === undefined ? {} : { status: o.status }) };
        if (o.withoutCa === true) c.print(cmd, await c.client(cmd).call('POST', '/v1/certificates/register-without-ca', body));
        else c.print(cmd, await c.client(cmd).call('POST', '/v1/certificates/register', { ...body, ...(o.caCert === undefined ? {} : { caCertificatePem: readPem(o.caCert) }) }));
      }),
    );
  cert.command('get <certificateId>').description('describe a certificate').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/certificates/${encodeURIComponent(id)}`))));
  cert
    .command('list')
    .description('list certificates')
    .option('--status <status>', 'filter by status')
    .option('--ca <caCertificateId>', 'filter by issuing CA')
    .action((o: { status?: string; ca?: string }, cmd: Command) =>
      c.run(async () => {
        const q = new URLSearchParams();
        if (o.status !== undefined) q.set('status', o.status);
        if (o.ca !== undefined) q.set('caCertificateId', o.ca);
        c.print(cmd, await c.client(cmd).listAll('/v1/certificates', 'certificates', q));
      }),
    );
  for (const [name, status] of [['activate', 'ACTIVE'], ['deactivate', 'INACTIVE']] as const) {
    cert.command(`${name} <certificateId>`).description(`set ${status}`).action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('PATCH', `/v1/certificates/${encodeURIComponent(id)}`, { status }))));
  }
  cert.command('revoke <certificateId>').description('revoke (takes effect at once; goes on the CRL)').option('--reason <reason>', 'RFC 5280 reason, e.g. keyCompromise').action((id: string, o: { reason?: string }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/certificates/${encodeURIComponent(id)}/revoke`, o.reason === undefined ? {} : { reason: o.reason }))));
  cert.command('delete <certificateId>').description('delete an inactive, detached certificate (--force detaches); a revoked one of a Gatehouse CA stays until it expires (it is on the CRL)').option('--force').action((id: string, o: { force?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/certificates/${encodeURIComponent(id)}${o.force === true ? '?forceDelete=true' : ''}`))));
  cert.command('transfer <certificateId> <targetTenant>').description('offer an INACTIVE, detached certificate to another tenant').action((id: string, t: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/certificates/${encodeURIComponent(id)}/transfer`, { targetTenant: t }))));
  cert.command('accept-transfer <certificateId>').description('accept a certificate offered to this tenant').option('--active', 'make it ACTIVE on acceptance (default: INACTIVE)').action((id: string, o: { active?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/certificates/${encodeURIComponent(id)}/accept-transfer`, { setAsActive: o.active === true }))));
  cert.command('reject-transfer <certificateId>').description('reject a certificate offered to this tenant').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/certificates/${encodeURIComponent(id)}/reject-transfer`, {}))));
  cert.command('cancel-transfer <certificateId>').description('cancel a transfer this tenant offered').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/certificates/${encodeURIComponent(id)}/cancel-transfer`, {}))));

  const ca = new Command('ca').description('certificate authorities: owned hierarchy and registered (BYO) CAs');
  ca
    .command('create <commonName>')
    .description('create an owned intermediate CA (under the installation root or --parent)')
    .option('--algorithm <alg>', 'EC_P256 | EC_P384 | RSA_2048 | RSA_3072', 'EC_P256')
    .option('--parent <caCertificateId>', 'owned parent CA')
    .option('--validity-days <n>', 'validity in days')
    .option('--path-length <n>', 'basicConstraints pathLen')
    .option('--out <file>', 'write the CA certificate PEM here')
    .action((cn: string, o: { algorithm: string; parent?: string; validityDays?: string; pathLength?: string; out?: string }, cmd: Command) =>
      c.run(async () => {
        if (o.out !== undefined) refuseUnwritableFile(o.out, '--out');
        const r = await c.client(cmd).call<{ caCertificatePem: string }>('POST', '/v1/cas', {
          commonName: cn,
          keyAlgorithm: o.algorithm,
          ...(o.parent === undefined ? {} : { parentCaCertificateId: o.parent }),
          ...(o.validityDays === undefined ? {} : { validityDays: countOption('--validity-days', o.validityDays) }),
          ...(o.pathLength === undefined ? {} : { pathLength: countOption('--path-length', o.pathLength, 0) }),
        });
        if (o.out !== undefined) writeFileSync(o.out, r.caCertificatePem);
        c.print(cmd, r);
      }),
    );
  ca.command('list').description('list CAs').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).listAll('/v1/cas', 'certificates'))));
  ca.command('get <caCertificateId>').description('describe a CA').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/cas/${encodeURIComponent(id)}`))));
  ca.command('registration-code').description('the code to put in the CN of a verification certificate').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', '/v1/cas/registration-code'))));
  ca
    .command('register <caCertFile>')
    .description('register a CA you own elsewhere (DEFAULT mode needs a verification certificate)')
    .option('--verification-cert <file>', 'certificate with CN = registration code, signed by the CA key')
    .option('--sni-only', 'SNI_ONLY mode: no proof of possession; devices must send SNI')
    .option('--inactive', 'register INACTIVE')
    .option('--auto-register', 'allow auto-registration (JITR/JITP)')
    .action((f: string, o: { verificationCert?: string; sniOnly?: boolean; inactive?: boolean; autoRegister?: boolean }, cmd: Command) =>
      c.run(async () =>
        c.print(cmd, await c.client(cmd).call('POST', '/v1/cas/register', {
          caCertificatePem: readPem(f),
          ...(o.verificationCert === undefined ? {} : { verificationCertificatePem: readPem(o.verificationCert) }),
          certificateMode: o.sniOnly === true ? 'SNI_ONLY' : 'DEFAULT',
          setAsActive: o.inactive !== true,
          allowAutoRegistration: o.autoRegister === true,
        })),
      ),
    );
  ca
    .command('update <caCertificateId>')
    .description('change status, auto-registration, JITP template, first-connect mode')
    .option('--status <status>', 'ACTIVE | INACTIVE')
    .option('--auto-register', 'enable auto-registration')
    .option('--no-auto-register', 'disable auto-registration')
    .option('--jitp-template <name>', 'JITP template name: an existing template of type JITP ("" clears it)')
    .option('--first-connect <mode>', 'continue | reconnect')
    .action((id: string, o: { status?: string; autoRegister?: boolean; jitpTemplate?: string; firstConnect?: string }, cmd: Command) =>
      c.run(async () => {
        if (o.status === undefined && o.autoRegister === undefined && o.jitpTemplate === undefined && o.firstConnect === undefined) {
          throw CliErrors.error('CLI_USAGE_INVALID', 'nothing to change: give --status, --auto-register / --no-auto-register, --jitp-template or --first-connect');
        }
        c.print(cmd, await c.client(cmd).call('PATCH', `/v1/cas/${encodeURIComponent(id)}`, {
          ...(o.status === undefined ? {} : { status: o.status }),
          ...(o.autoRegister === undefined ? {} : { autoRegistrationStatus: o.autoRegister ? 'ENABLE' : 'DISABLE' }),
          ...(o.jitpTemplate === undefined ? {} : { registrationConfig: { templateName: o.jitpTemplate === '' ? null : o.jitpTemplate } }),
          ...(o.firstConnect === undefined ? {} : { firstConnect: o.firstConnect }),
        }));
      }),
    );
  ca.command('revoke <caCertificateId>').description('revoke a CA (removed from trust at once; on its parent CRL)').option('--reason <reason>').action((id: string, o: { reason?: string }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/cas/${encodeURIComponent(id)}/revoke`, o.reason === undefined ? {} : { reason: o.reason }))));
  ca.command('crl <caCertificateId>').description('print the CRL (PEM) of a CA Gatehouse owns (one registered from elsewhere publishes its own); with --json, {"crlPem": …}').action((id: string, _o: unknown, cmd: Command) =>
    c.run(async () => {
      const pem = await c.client(cmd).text(`/v1/crl/${encodeURIComponent(id)}.pem`);
      if (c.globals(cmd).json === true) c.print(cmd, { caCertificateId: id, crlPem: pem });
      else c.io.stdout(pem);
    }));
  ca.command('hooks <caCertificateId>')
    .description('built-in JITR registration hooks: activate allow-listed devices, refuse devices on a CRL')
    .option('--allow-list', 'activate a pending certificate whose CN or serial is on the allow list')
    .option('--allow-list-policy <policyName>', 'policy to attach when the allow list activates a device')
    .option('--crl-file <file>', 'a CRL (PEM) of the CA: listed certificates are refused')
    .option('--crl-url <url>', 'fetch the CA CRL from this URL (cached 10 minutes)')
    .option('--show', 'only print the current hooks (each other call replaces them all)')
    .action((id: string, o: { allowList?: boolean; allowListPolicy?: string; crlFile?: string; crlUrl?: string; show?: boolean }, cmd: Command) =>
      c.run(async () => {
        if (o.show === true) {
          c.print(cmd, await c.client(cmd).call('GET', `/v1/cas/${encodeURIComponent(id)}/registration-hooks`));
          return;
        }
        // the call sets every hook at once: with no option it would silently clear them all
        if (o.allowList !== true && o.allowListPolicy === undefined && o.crlFile === undefined && o.crlUrl === undefined) {
          throw CliErrors.error('CLI_USAGE_INVALID', 'give the hooks to set (--allow-list, --allow-list-policy, --crl-file, --crl-url; each call replaces them all), or --show');
        }
        if (o.crlFile !== undefined && o.crlUrl !== undefined) throw CliErrors.error('CLI_USAGE_INVALID', '--crl-file and --crl-url exclude each other (a CRL file would be used and the URL ignored)');
        c.print(cmd, await c.client(cmd).call('PUT', `/v1/cas/${encodeURIComponent(id)}/registration-hooks`, {
          allowList: o.allowList === true || o.allowListPolicy !== undefined ? (o.allowListPolicy === undefined ? {} : { policyName: o.allowListPolicy }) : null,
          crlPem: o.crlFile === undefined ? null : readPem(o.crlFile),
          crlUrl: o.crlUrl ?? null,
        }));
      }),
    );

  const allow = new Command('allowlist').description('the tenant allow list of device CNs / serial numbers (JITR allow-list hook)');
  allow.command('import <file>')
    .description('add one value per line (blank lines and # comments ignored)')
    .action((f: string, _o: unknown, cmd: Command) =>
      c.run(async () => {
        const values = readInputFile(f, 'allow list').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
        let added = 0;
        for (let i = 0; i < values.length; i += 10_000) {
          const r = await c.client(cmd).call<{ added: number }>('POST', '/v1/allow-list', { values: values.slice(i, i + 10_000) });
          added += r.added;
        }
        c.print(cmd, { submitted: values.length, added });
      }),
    );
  allow.command('list').description('list values (all of them, or --max from --after)').option('--after <value>', 'start after this value').option('--max <n>', 'at most this many (default: all)').action((o: { after?: string; max?: string }, cmd: Command) =>
    c.run(async () => {
      // every value, page by page (it stopped at 100 without saying so), unless --max says how many
      const max = o.max === undefined ? Number.POSITIVE_INFINITY : countOption('--max', o.max);
      const values: string[] = [];
      let after = o.after;
      while (values.length < max) {
        const page = Math.min(1000, max - values.length);
        const got = (await c.client(cmd).call<{ values: string[] }>('GET', `/v1/allow-list?maxResults=${page}${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`)).values;
        values.push(...got);
        if (got.length < page) break;
        after = got[got.length - 1];
      }
      c.print(cmd, values);
    }));
  allow.command('remove <value>').description('remove a value').action((v: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/allow-list/${encodeURIComponent(v)}`))));
  return [cert, ca, allow];
}
