import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { CliContext } from '../cli-context.ts';
import { collect, parseKeyValues } from '../output.ts';

function hookOf(o: { hookUrl?: string; hookTimeoutMs?: string; allowParameter?: string; allowFile?: string }): Record<string, unknown> | undefined {
  if (o.hookUrl !== undefined) return { type: 'webhook', url: o.hookUrl, ...(o.hookTimeoutMs === undefined ? {} : { timeoutMs: Number(o.hookTimeoutMs) }) };
  if (o.allowParameter !== undefined) {
    if (o.allowFile === undefined) throw new Error('--allow-parameter needs --allow-file (one value per line)');
    const values = readFileSync(o.allowFile, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
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
    .action((f: string, o: { type: string }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/provisioning-templates/validate', { templateBody: readFileSync(f, 'utf8'), type: o.type }))));
  t.command('create <name> <file>')
    .description('create a template from a JSON file')
    .option('--type <type>', 'FLEET_PROVISIONING | JITP', 'FLEET_PROVISIONING')
    .option('--disabled', 'create it disabled')
    .option('--description <text>')
    .option('--hook-url <url>', 'pre-provisioning webhook (HMAC-signed; the secret is printed once)')
    .option('--hook-timeout-ms <ms>', 'webhook timeout (default 5000)')
    .option('--allow-parameter <name>', 'built-in allow-list hook: the parameter to check (e.g. SerialNumber)')
    .option('--allow-file <file>', 'allowed values, one per line')
    .action((n: string, f: string, o: { type: string; disabled?: boolean; description?: string; hookUrl?: string; hookTimeoutMs?: string; allowParameter?: string; allowFile?: string }, cmd: Command) =>
      c.run(async () => {
        const hook = hookOf(o);
        c.print(cmd, await c.client(cmd).call('POST', '/v1/provisioning-templates', {
          templateName: n, templateBody: readFileSync(f, 'utf8'), type: o.type, enabled: o.disabled !== true,
          ...(o.description === undefined ? {} : { description: o.description }), ...(hook === undefined ? {} : { preProvisioningHook: hook }),
        }));
      }),
    );
  t.command('update <name>')
    .description('enable/disable, change the default version or the hook')
    .option('--enable').option('--disable')
    .option('--default-version <n>')
    .option('--hook-url <url>').option('--hook-timeout-ms <ms>').option('--allow-parameter <name>').option('--allow-file <file>')
    .option('--no-hook', 'remove the pre-provisioning hook')
    .action((n: string, o: { enable?: boolean; disable?: boolean; defaultVersion?: string; hookUrl?: string; hookTimeoutMs?: string; allowParameter?: string; allowFile?: string; hook?: boolean }, cmd: Command) =>
      c.run(async () => {
        const hook = hookOf(o);
        c.print(cmd, await c.client(cmd).call('PATCH', `/v1/provisioning-templates/${encodeURIComponent(n)}`, {
          ...(o.enable === true ? { enabled: true } : o.disable === true ? { enabled: false } : {}),
          ...(o.defaultVersion === undefined ? {} : { defaultVersionId: Number(o.defaultVersion) }),
          ...(hook !== undefined ? { preProvisioningHook: hook } : o.hook === false ? { preProvisioningHook: null } : {}),
        }));
      }),
    );
  t.command('list').description('list templates').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ templates: unknown[] }>('GET', '/v1/provisioning-templates')).templates)));
  t.command('describe <name>').description('describe a template (default version body)').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/provisioning-templates/${encodeURIComponent(n)}`))));
  t.command('delete <name>').description('delete a template and its versions').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/provisioning-templates/${encodeURIComponent(n)}`))));
  t.command('versions <name>').description('list versions').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ versions: unknown[] }>('GET', `/v1/provisioning-templates/${encodeURIComponent(n)}/versions`)).versions)));
  t.command('create-version <name> <file>').description('add a version').option('--default', 'make it the default').action((n: string, f: string, o: { default?: boolean }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/provisioning-templates/${encodeURIComponent(n)}/versions`, { templateBody: readFileSync(f, 'utf8'), setAsDefault: o.default === true }))));
  t.command('dry-run <name>')
    .description('evaluate the template with parameters and print the resource plan without applying it')
    .option('-p, --parameters <k=v>', 'parameter (repeatable)', collect, [])
    .option('--certificate-id <id>', 'value of AWS::IoT::Certificate::Id')
    .action((n: string, o: { parameters: string[]; certificateId?: string }, cmd: Command) =>
      c.run(async () => c.print(cmd, (await c.client(cmd).call<{ plan: unknown }>('POST', `/v1/provisioning-templates/${encodeURIComponent(n)}/dry-run`, { parameters: parseKeyValues(o.parameters), ...(o.certificateId === undefined ? {} : { certificateId: o.certificateId }) })).plan)),
    );
  return [t];
}
