import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { verifyAuditLog } from '../../registry/index.ts';
import { openStore } from '../../store/index.ts';
import type { CliContext } from '../cli-context.ts';
import { CliErrors } from '../errors.ts';
import { countOption } from '../output.ts';

/** Entries per GET /v1/audit (its maxResults limit). */
const AUDIT_PAGE = 250;

/** `gatehouse tenant …`, `token …`, `audit …`. */
export function adminCommands(c: CliContext): Command[] {
  const tenant = new Command('tenant').description('tenants (units of isolation; default-tenant admins only)');
  tenant.command('create <name>').description('create a tenant with endpoint <name>.<domain>').action((n: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/tenants', { name: n }))));
  tenant.command('list').description('list tenants').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ tenants: unknown[] }>('GET', '/v1/tenants')).tenants)));

  const token = new Command('token').description('API tokens (roles: admin, operator, installer, manufacturer, provider)');
  token
    .command('create <name>')
    .description('create a token; it is printed once')
    .requiredOption('--role <role>', 'admin | operator | installer | manufacturer | provider')
    .option('--for-tenant <tenant>', 'tenant of the token (default: the caller tenant)')
    .action((n: string, o: { role: string; forTenant?: string }, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', '/v1/tokens', { name: n, role: o.role, ...(o.forTenant === undefined ? {} : { tenant: o.forTenant }) }))));
  token.command('list').description('list tokens (never their secrets)').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, (await c.client(cmd).call<{ tokens: unknown[] }>('GET', '/v1/tokens')).tokens)));
  token.command('revoke <tokenId>').description('revoke a token').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`))));

  const audit = new Command('audit').description('the hash-chained audit log');
  audit
    .command('list')
    .description('newest entries of the tenant, newest first')
    .option('--max <n>', 'how many (read in pages of 250)', '50')
    .action((o: { max: string }, cmd: Command) =>
      c.run(async () => {
        const max = countOption('--max', o.max);
        const client = c.client(cmd);
        const entries: { seq: number }[] = [];
        // GET /v1/audit answers at most 250 entries; older pages follow with beforeSeq
        while (entries.length < max) {
          const before = entries.at(-1)?.seq;
          const want = Math.min(AUDIT_PAGE, max - entries.length);
          const page = (await client.call<{ entries: { seq: number }[] }>('GET', `/v1/audit?maxResults=${want}${before === undefined ? '' : `&beforeSeq=${before}`}`)).entries;
          entries.push(...page);
          if (page.length < want) break; // the oldest entry is in
        }
        c.print(cmd, entries);
      }),
    );
  audit
    .command('verify')
    .description('recompute the hash chain; detects edited, deleted or truncated entries (exit 1 if broken)')
    .option('--offline', 'open the database directly (GATEHOUSE_DATA_DIR / GATEHOUSE_DATABASE_URL) instead of asking the server')
    .action((o: { offline?: boolean }, cmd: Command) =>
      c.run(async () => {
        let result: { ok: boolean; entries: number; problem?: unknown };
        if (o.offline === true) {
          const config = loadConfig({ env: c.io.env, cwd: c.io.cwd });
          // a verify reads: it never creates or migrates a database (a typo in GATEHOUSE_DATA_DIR gave "ok", 0 entries)
          const file = path.join(config.dataDir, 'gatehouse.db');
          if (config.databaseUrl === undefined && !existsSync(file)) throw CliErrors.error('CLI_FILE_UNREADABLE', `no Gatehouse database at ${file}: set GATEHOUSE_DATA_DIR to the server's data directory (or GATEHOUSE_DATABASE_URL)`);
          const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, migrate: false });
          try {
            result = await verifyAuditLog(store.db);
          } finally {
            await store.close();
          }
        } else {
          result = await c.client(cmd).call('GET', '/v1/audit/verify');
        }
        c.print(cmd, result);
        if (!result.ok) process.exitCode = 1;
      }),
    );
  return [tenant, token, audit];
}
