import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { CliContext } from '../cli-context.ts';
import { CliErrors } from '../errors.ts';
import { collect, countOption, parseKeyValues, readInputFile, refuseExistingOutput, wholeNumberOption } from '../output.ts';

function hookOf(o: { hookUrl?: string; hookTimeoutMs?: string; allowParameter?: string; allowFile?: string }): Record<string, unknown> | undefined {
  if (o.hookUrl !== undefined && o.allowParameter !== undefined) throw CliErrors.error('CLI_USAGE_INVALID', 'a template has one hook: give --hook-url or --allow-parameter, not both');
  if (o.hookTimeoutMs !== undefined && o.hookUrl === undefined) throw CliErrors.error('CLI_USAGE_INVALID', '--hook-timeout-ms goes with --hook-url');
  if (o.allowFile !== undefined && o.allowParameter === undefined) throw CliErrors.error('CLI_USAGE_INVALID', '--allow-file goes with --allow-parameter (the parameter to check)');
  if (o.hookUrl !== undefined) return { type: 'webhook', url: o.hookUrl, ...(o.hookTimeoutMs === undefined ? {} : { timeoutMs: countOption('--hook-timeout-ms', o.hookTimeoutMs) }) };
  if (o.allowParameter !== undefined) {
    if (o.allowFile === undefined) throw CliErrors.error('CLI_USAGE_INVALID', '--allow-parameter needs --allow-file (one value per line)');
    const values = readInputFile(o.allowFile, 'allow list').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    return { type: 'allow-list', parameter: o.allowParameter, values };
  }
  return undefined;
}

/** `gatehouse template …`: provisioning templates (fleet provisioning and JITP). */
export function templateCommands(c: CliContext): Command[] {
  const t = new Command('template').description('provisioning templates (AWS template language): validate, create, update, versions, dry-run');
  t.command('validate <file>')
    .description('check a template body; errors carry the JSON path')
    .option('--type <type>', 'FLEET_PROVISIONING | JITP', 'FLEET_PROVISIONING')
    .action((f: string, o: { type: string }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/provisioning-templates/validate', { templateBody: readInputFile(f, 'template body'), type: o.type }))));
  t.command('create <name> <file>')
    .description('create a template from a JSON file')
    .option('--type <type>', 'FLEET_PROVISIONING | JITP', 'FLEET_PROVISIONING')
    .option('--disabled', 'create it disabled')
    .option('--description <text>')
    .option('--hook-url <url>', 'pre-provisioning webhook (HMAC-signed; the secret is printed once)')
    .option('--hook-timeout-ms <ms>', 'webhook timeout, 100-10000 ms (default 5000)')
    .option('--allow-parameter <name>', 'built-in allow-list hook: the parameter to check (e.g. SerialNumber)')
    .option('--allow-file <file>', 'allowed values, one per line')
    .action((n: string, f: string, o: { type: string; disabled?: boolean; description?: string; hookUrl?: string; hookTimeoutMs?: string; allowParameter?: string; allowFile?: string }, cmd: Command) =>
      c.run(async () => {
        const hook = hookOf(o);
        c.print(cmd, await c.client(cmd).call('POST', '/v1/provisioning-templates', {
          templateName: n, templateBody: readInputFile(f, 'template body'), type: o.type, enabled: o.disabled !== true,
          ...(o.description === undefined ? {} : { description: o.description }), ...(hook === undefined ? {} : { preProvisioningHook: hook }),
        }));
      }),
    );
  t.command('update <name>')
    .description('enable/disable, change the default version or the hook')
    .option('--enable', 'let devices provision with it again')
    .option('--disable', 'refuse every provisioning request that names it (PROVISIONING_TEMPLATE_DISABLED)')
    .option('--default-version <n>', 'the version RegisterThing and JITP use')
    .option('--hook-url <url>', 'set a pre-provisioning webhook (HMAC-signed; the new secret is printed once)')
    .option('--hook-timeout-ms <ms>', 'webhook timeout, 100-10000 ms (default 5000)')
    .option('--allow-parameter <name>', 'set the built-in allow-list hook: the parameter to check (e.g. SerialNumber)')
    .option('--allow-file <file>', 'allowed values, one per line')
    .option('--no-hook', 'remove the pre-provisioning hook')
    .action((n: string, o: { enable?: boolean; disable?: boolean; defaultVersion?: string; hookUrl?: string; hookTimeoutMs?: string; allowParameter?: string; allowFile?: string; hook?: boolean }, cmd: Command) =>
      c.run(async () => {
        if (o.enable === true && o.disable === true) throw CliErrors.error('CLI_USAGE_INVALID', '--enable and --disable exclude each other');
        const hook = hookOf(o);
        if (hook !== undefined && o.hook === false) throw CliErrors.error('CLI_USAGE_INVALID', '--no-hook removes the hook: it excludes --hook-url and --allow-parameter');
        if (o.enable !== true && o.disable !== true && o.defaultVersion === undefined && hook === undefined && o.hook !== false) {
          throw CliErrors.error('CLI_USAGE_INVALID', 'nothing to change: give --enable, --disable, --default-version, --hook-url, --allow-parameter or --no-hook');
        }
        c.print(cmd, await c.client(cmd).call('PATCH', `/v1/provisioning-templates/${encodeURIComponent(n)}`, {
          ...(o.enable === true ? { enabled: true } : o.disable === true ? { enabled: false } : {}),
          ...(o.defaultVersion === undefined ? {} : { defaultVersionId: countOption('--default-version', o.defaultVersion) }),
          ...(hook !== undefined ? { preProvisioningHook: hook } : o.hook === false ? { preProvisioningHook: null } : {}),
        }));
      }),
    );
  t.command('list').description('list templates').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).listAll('/v1/provisioning-templates', 'templates'))));
  t.command('describe <name>')
    .description('describe a template (with the body of its default version), or one version of it')
    .option('--version-id <versionId>', 'that version: its body, whether it is the default, when it was made')
    .action((n: string, o: { versionId?: string }, cmd: Command) =>
      c.run(async () => {
        const base = `/v1/provisioning-templates/${encodeURIComponent(n)}`;
        c.print(cmd, await c.client(cmd).call('GET', o.versionId === undefined ? base : `${base}/versions/${countOption('--version-id', o.versionId)}`));
      }),
    );
  t.command('delete <name>')
    .description("delete a template and its versions; refused while a CA uses it for JITP, or while it has live claims (neither revoked nor expired) unless --revoke-claims or --keep-claims says what becomes of them")
    .option('--revoke-claims', 'revoke the live claims in the same transaction (their devices can no longer connect nor provision)')
    .option('--keep-claims', 'keep the live claims: they provision again under a later template of the same name')
    .action((n: string, o: { revokeClaims?: boolean; keepClaims?: boolean }, cmd: Command) =>
      c.run(async () => {
        if (o.revokeClaims === true && o.keepClaims === true) throw CliErrors.error('CLI_USAGE_INVALID', '--revoke-claims and --keep-claims exclude each other');
        const claims = o.revokeClaims === true ? '?claims=revoke' : o.keepClaims === true ? '?claims=keep' : '';
        c.print(cmd, await c.client(cmd).call('DELETE', `/v1/provisioning-templates/${encodeURIComponent(n)}${claims}`));
      }),
    );
  t.command('versions <name>').description('list versions').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ versions: unknown[] }>('GET', `/v1/provisioning-templates/${encodeURIComponent(n)}/versions`)).versions)));
  t.command('create-version <name> <file>')
    .description('add a version; a template keeps at most 5 (delete-version makes room)')
    .option('--default', 'make it the default')
    .option('--set-as-default', 'the same as --default (the AWS CLI\'s name)')
    .action((n: string, f: string, o: { default?: boolean; setAsDefault?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/provisioning-templates/${encodeURIComponent(n)}/versions`, { templateBody: readInputFile(f, 'template body'), setAsDefault: o.default === true || o.setAsDefault === true }))));
  t.command('delete-version <name> <versionId>')
    .description('delete a version that is not the default (template update --default-version changes the default)')
    .action((n: string, v: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/provisioning-templates/${encodeURIComponent(n)}/versions/${countOption('<versionId>', v)}`))));
  t.command('dry-run <name>')
    .description('evaluate the template with parameters, print the resource plan and whether it would apply now (checked in a rolled-back transaction: missing policies, groups, types, OverrideSettings FAIL, the built-in allow list); writes nothing, calls no webhook, exits 1 when the plan would not apply')
    .option('-p, --parameters <k=v>', 'parameter (repeatable)', collect, [])
    .option('--parameter <k=v>', 'the same (the name `device provision` uses)', collect, [])
    .option('--certificate-id <id>', 'value of AWS::IoT::Certificate::Id (also checks that certificate; without it the certificate part is not checked)')
    .action((n: string, o: { parameters: string[]; parameter: string[]; certificateId?: string }, cmd: Command) =>
      c.run(async () => {
        const r = await c.client(cmd).call<{ plan: Record<string, unknown>; check: { ok: boolean; code?: string; message?: string } }>('POST', `/v1/provisioning-templates/${encodeURIComponent(n)}/dry-run`, { parameters: parseKeyValues([...o.parameters, ...o.parameter]), ...(o.certificateId === undefined ? {} : { certificateId: o.certificateId }) });
        c.print(cmd, { ...r.plan, check: r.check });
        if (!r.check.ok) throw CliErrors.error('CLI_DRY_RUN_WOULD_FAIL', `the plan would not apply now: ${r.check.code ?? '?'}: ${r.check.message ?? ''}`);
      }),
    );

  /** What `--out` of a claim holds; an existing one is never overwritten. */
  const CLAIM_FILES = ['claim.pem', 'claim.key'];
  const claim = new Command('claim').description('fleet-provisioning claims: batch claim certificates and trusted-user claims');
  const writeCreds = (dir: string, r: { certificatePem: string; keyPair: { PrivateKey: string } }, rootCaPem: string | undefined): void => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'claim.pem'), r.certificatePem);
    writeFileSync(path.join(dir, 'claim.key'), r.keyPair.PrivateKey, { mode: 0o600, flag: 'wx' });
    chmodSync(path.join(dir, 'claim.key'), 0o600);
    if (rootCaPem !== undefined) writeFileSync(path.join(dir, 'root-ca.pem'), rootCaPem);
  };
  claim.command('create')
    .description('issue the claim certificate of a manufacturing batch (least-privilege policy: that template only)')
    .requiredOption('--template <name>', 'fleet provisioning template')
    .requiredOption('--batch <id>', 'manufacturing batch id')
    .option('--max-devices <n>', 'maximum devices this claim may provision')
    .option('--rate-per-minute <n>', 'maximum devices this claim may provision per minute (beyond it: PROVISIONING_RATE_LIMITED)')
    .option('--validity-days <n>', 'claim certificate validity')
    .option('--out <dir>', 'write claim.pem, claim.key (0600) and root-ca.pem here')
    .action((o: { template: string; batch: string; maxDevices?: string; ratePerMinute?: string; validityDays?: string; out?: string }, cmd: Command) =>
      c.run(async () => {
        const api = c.client(cmd);
        if (o.out !== undefined) refuseExistingOutput(o.out, CLAIM_FILES);
        const r = await api.call<{ certificateId: string; certificatePem: string; keyPair: { PrivateKey: string; PublicKey: string } }>('POST', `/v1/provisioning-templates/${encodeURIComponent(o.template)}/claim-certificates`, {
          batch: o.batch,
          ...(o.maxDevices === undefined ? {} : { maxDevices: countOption('--max-devices', o.maxDevices) }),
          ...(o.ratePerMinute === undefined ? {} : { ratePerMinute: countOption('--rate-per-minute', o.ratePerMinute) }),
          ...(o.validityDays === undefined ? {} : { validityDays: countOption('--validity-days', o.validityDays) }),
        });
        if (o.out !== undefined) {
          const ep = await api.call<{ rootCaPem: string }>('GET', '/v1/endpoint');
          writeCreds(o.out, r, ep.rootCaPem);
          c.print(cmd, { certificateId: r.certificateId, out: o.out });
        } else {
          c.print(cmd, r);
        }
      }),
    );
  claim.command('trusted-user')
    .description('a 5-minute provisioning claim for an installer to hand to a device (installer role)')
    .requiredOption('--template <name>', 'fleet provisioning template')
    .option('--out <dir>', 'write claim.pem, claim.key (0600) and root-ca.pem here')
    .action((o: { template: string; out?: string }, cmd: Command) =>
      c.run(async () => {
        const api = c.client(cmd);
        if (o.out !== undefined) refuseExistingOutput(o.out, CLAIM_FILES);
        const r = await api.call<{ certificateId: string; certificatePem: string; keyPair: { PrivateKey: string; PublicKey: string }; expiration: string }>('POST', `/v1/provisioning-templates/${encodeURIComponent(o.template)}/provisioning-claim`);
        if (o.out !== undefined) {
          const ep = await api.call<{ rootCaPem: string }>('GET', '/v1/endpoint');
          writeCreds(o.out, r, ep.rootCaPem);
          c.print(cmd, { certificateId: r.certificateId, expiration: r.expiration, out: o.out });
        } else {
          c.print(cmd, r);
        }
      }),
    );

  claim.command('update <certificateId>')
    .description('change the limits of a batch claim; they apply to the next device call')
    .option('--max-devices <n|none>', 'maximum devices this claim may provision ("none": no maximum)')
    .option('--rate-per-minute <n|none>', 'maximum devices per minute ("none": no rate limit)')
    .action((id: string, o: { maxDevices?: string; ratePerMinute?: string }, cmd: Command) =>
      c.run(async () => {
        if (o.maxDevices === undefined && o.ratePerMinute === undefined) throw CliErrors.error('CLI_USAGE_INVALID', 'nothing to change: give --max-devices and/or --rate-per-minute');
        const maxDevices = o.maxDevices === undefined ? undefined : wholeNumberOption('--max-devices', o.maxDevices, true);
        const ratePerMinute = o.ratePerMinute === undefined ? undefined : wholeNumberOption('--rate-per-minute', o.ratePerMinute, true);
        c.print(cmd, await c.client(cmd).call('PATCH', `/v1/claim-certificates/${encodeURIComponent(id)}`, { ...(maxDevices === undefined ? {} : { maxDevices }), ...(ratePerMinute === undefined ? {} : { ratePerMinute }) }));
      }),
    );
  claim.command('list').description('claims of a template').requiredOption('--template <name>').action((o: { template: string }, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ claims: unknown[] }>('GET', `/v1/provisioning-templates/${encodeURIComponent(o.template)}/claim-certificates`)).claims)));
  claim.command('revoke <certificateId>').description('revoke a claim: it can no longer connect or provision').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/claim-certificates/${encodeURIComponent(id)}/revoke`))));
  return [t, claim];
}
