import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { WEBHOOK_EVENT_TYPES } from '../../registry/index.ts';
import type { CliContext } from '../cli-context.ts';
import { collect, readInputFile } from '../output.ts';

/**
 * `gatehouse webhook …`: HMAC-signed deliveries of lifecycle and provisioning events (POST /v1/webhooks). The secret
 * is generated here unless `--secret-file` gives one, and printed once: the server keeps it sealed and never shows it.
 */
export function webhookCommands(c: CliContext): Command[] {
  const webhook = new Command('webhook').description('webhooks: signed deliveries of lifecycle and provisioning events');
  webhook
    .command('create <url>')
    .description('deliver events to <url> (http or https), signed gatehouse-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>')
    .option('--event <type>', `event type (repeatable; none = every type): ${WEBHOOK_EVENT_TYPES.join(', ')}`, collect, [])
    .option('--secret-file <file>', 'the signing secret (16-256 characters) from this file; default: a new random one, printed once')
    .action((url: string, o: { event: string[]; secretFile?: string }, cmd: Command) =>
      c.run(async () => {
        const secret = o.secretFile === undefined ? randomBytes(32).toString('base64url') : readInputFile(o.secretFile, 'secret file').trim();
        const created = await c.client(cmd).call<Record<string, unknown>>('POST', '/v1/webhooks', { url, secret, ...(o.event.length === 0 ? {} : { events: o.event }) });
        c.print(cmd, o.secretFile === undefined ? { ...created, secret } : created);
      }),
    );
  webhook.command('list').description('list webhooks (never their secrets)').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ webhooks: unknown[] }>('GET', '/v1/webhooks')).webhooks)));
  webhook.command('delete <webhookId>').description('delete a webhook').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`))));
  webhook
    .command('dead-letters <webhookId>')
    .description('deliveries that failed after every retry')
    .action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ deadLetters: unknown[] }>('GET', `/v1/webhooks/${encodeURIComponent(id)}/dead-letters`)).deadLetters)));
  return [webhook];
}
