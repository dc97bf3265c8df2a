import { Command, Option } from 'commander';
import cluster from 'node:cluster';
import { WORKER_INDEX_ENV, createLogger, startCluster, startGatehouse } from '../app/index.ts';
import type { WorkerReady } from '../app/index.ts';
import { SETTINGS, loadConfig } from '../config/index.ts';
import { CliContext } from './cli-context.ts';
import { CliErrors } from './errors.ts';
import type { CliEnvironment } from './cli-context.ts';
import { adminCommands } from './commands/admin-commands.ts';
import { deviceCommands } from './commands/device-commands.ts';
import { bulkCommands } from './commands/bulk-commands.ts';
import { pkiCommands } from './commands/pki-commands.ts';
import { registryCommands } from './commands/registry-commands.ts';
import { templateCommands } from './commands/template-commands.ts';
import { webhookCommands } from './commands/webhook-commands.ts';

function serveCommand(c: CliContext): Command {
  const cmd = new Command('serve').description('start Gatehouse: REST API and device MQTT over mutual TLS');
  cmd.addOption(new Option('--config <file>', 'JSON config file (keys: ' + SETTINGS.map((s) => s.key).join(', ') + ')'));
  for (const s of SETTINGS) cmd.addOption(new Option(`--${s.flag} <value>`, `${s.description} [env ${s.env}]`));
  // Read by bin/gatehouse.js before any module loads, so it is an environment variable only.
  cmd.addHelpText('after', "\nEnvironment only:\n  GATEHOUSE_V8_INTERRUPT_BUDGET  V8's tier-up budget for serve (default 16384; 0 keeps V8's default 67584)");
  cmd.action((opts: Record<string, string | undefined>) =>
    c.run(async () => {
      const flags: Partial<Record<(typeof SETTINGS)[number]['key'], string>> = {};
      for (const s of SETTINGS) {
        const camel = s.flag.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase());
        const v = opts[camel];
        if (v !== undefined) flags[s.key] = v;
      }
      const config = loadConfig({ env: c.io.env, flags, configFile: opts['config'], cwd: c.io.cwd });
      const logger = createLogger(config.logLevel);
      let running: { stop(): Promise<void> };
      if (cluster.isWorker) {
        // A `--workers` process forked by the primary below: serve, then tell the primary where.
        const worker = await startGatehouse(config, logger, { role: 'worker', housekeeping: c.io.env[WORKER_INDEX_ENV] === '0' });
        const ready: WorkerReady = { type: 'gatehouse-worker-ready', apiUrl: worker.apiUrl, ports: worker.ports };
        process.send?.(ready);
        // The primary is gone (killed): a worker never outlives it.
        process.once('disconnect', () => stop('primary gone'));
        running = worker;
      } else if (config.workers > 1) {
        const primary = await startCluster(config, logger, c.io.env['NODE_CLUSTER_SCHED_POLICY'] !== undefined);
        c.io.stdout(`Gatehouse is up: API ${primary.apiUrl} (data ${config.dataDir}, ${config.workers} workers: pids ${primary.workerPids().join(', ')})\n`);
        running = primary;
      } else {
        const single = await startGatehouse(config, logger);
        c.io.stdout(`Gatehouse is up: API ${single.apiUrl} (data ${config.dataDir}, ${single.store.dialect})\n`);
        running = single;
      }
      let signalled = false;
      function stop(signal: string): void {
        if (signalled) return;
        signalled = true;
        logger.info({ signal }, 'stopping');
        running.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'stop failed');
            process.exit(1);
          },
        );
      }
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    }),
  );
  return cmd;
}

/** Builds the `gatehouse` program. */
export function buildProgram(io: CliEnvironment): Command {
  const c = new CliContext(io);
  const program = new Command('gatehouse')
    .description('Gatehouse: self-hosted IoT device provisioning (CA, registry, MQTT/mTLS gateway, every provisioning flow).\nTalks to a running server through GATEHOUSE_URL + GATEHOUSE_TOKEN, or the local data directory (GATEHOUSE_DATA_DIR, default ./gatehouse-data).')
    .version('0.1.0')
    .option('--json', 'print machine-readable JSON')
    .option('--tenant <name>', 'act on this tenant (admins of the default tenant only)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();
  program.addCommand(serveCommand(c));
  for (const cmd of [...registryCommands(c), ...pkiCommands(c), ...templateCommands(c), ...deviceCommands(c), ...adminCommands(c), ...webhookCommands(c), ...bulkCommands(c)]) program.addCommand(cmd);
  configureUsageErrors(program, io);
  return program;
}

/**
 * Commander's own refusals (a missing argument or required option, an unknown option or command, an option without
 * its value) printed like every other CLI error, `error CLI_USAGE_INVALID: <commander's text>`, through `io`, with a
 * pointer to the command's help. `addCommand` does not pass the root's output settings down, so each command of the
 * tree gets them here.
 */
function configureUsageErrors(root: Command, io: CliEnvironment): void {
  const code: keyof typeof CliErrors.specs = 'CLI_USAGE_INVALID';
  const outputError = (text: string, write: (s: string) => void): void => write(text.replace(/^error: /, `error ${code}: `));
  const visit = (cmd: Command, path: readonly string[]): void => {
    cmd.configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError });
    if (cmd !== root) cmd.showHelpAfterError(`(run '${[...path, '--help'].join(' ')}' for usage)`);
    for (const sub of cmd.commands) visit(sub, [...path, sub.name()]);
  };
  visit(root, ['gatehouse']);
}

/** Entry point used by `bin/gatehouse.js`. */
export async function main(argv: readonly string[], io: CliEnvironment): Promise<void> {
  await buildProgram(io).parseAsync([...argv]);
}
