import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { connectDevice, DeviceErrors, isGatehouseError, parseEndpoint, provisionByClaim, readCredentialFiles, readDeviceFile } from '../../device/index.ts';
import { describeError } from '../cli-context.ts';
import type { CliContext } from '../cli-context.ts';
import { collect, countOption, parseKeyValues } from '../output.ts';

/** `gatehouse device …`: the device simulator (fleet provisioning from the device's side, connect with an identity). */
export function deviceCommands(c: CliContext): Command[] {
  const device = new Command('device').description('device simulator: provision by claim / trusted user, then connect with the new identity');
  device.command('provision')
    .description('connect with a claim, get a certificate (key made here), RegisterThing, save the new identity')
    .requiredOption('--endpoint <host:port>', 'device MQTT endpoint')
    .requiredOption('--claim-cert <file>', 'claim certificate PEM')
    .requiredOption('--claim-key <file>', 'claim private key PEM')
    .requiredOption('--template <name>', 'fleet provisioning template')
    .option('--ca <file>', 'root CA to trust (default: root-ca.pem beside the claim)')
    .option('--servername <name>', 'TLS SNI, e.g. <tenant>.localhost')
    .option('-p, --parameter <k=v>', 'template parameter (repeatable)', collect, [])
    .option('--client-id <id>', 'MQTT client id')
    .option('--server-keys', 'use CreateKeysAndCertificate (the server makes the key) instead of a local CSR')
    .option('--cbor', 'use the CBOR topics')
    .option('--attempts <n>', 'attempts on transient failures (connection errors, timeouts, throttling), with backoff from 200 ms', '3')
    .option('--timeout <ms>', 'how long each request waits for its answer (default 15000)', '15000')
    .option('--max-retry-wait <seconds>', 'longest wait a throttling service may ask for before a retry; asked for longer, fail at once', '30')
    .requiredOption('--out <dir>', 'where to write certificate.pem, private.key (0600), root-ca.pem, endpoint.txt')
    .action((o: { endpoint: string; claimCert: string; claimKey: string; template: string; ca?: string; servername?: string; parameter: string[]; clientId?: string; serverKeys?: boolean; cbor?: boolean; attempts: string; timeout: string; maxRetryWait: string; out: string }, cmd: Command) =>
      c.run(async () => {
        const attempts = countOption('--attempts', o.attempts);
        const maxRetryWait = countOption('--max-retry-wait', o.maxRetryWait, 0);
        const timeoutMs = countOption('--timeout', o.timeout);
        const claim = readCredentialFiles(o.claimCert, o.claimKey);
        const caPem = readDeviceFile(o.ca ?? path.join(path.dirname(o.claimCert), 'root-ca.pem'), o.ca === undefined ? 'root CA (root-ca.pem beside the claim; give another with --ca)' : 'root CA');
        const endpoint = parseEndpoint(o.endpoint, caPem, o.servername);
        const r = await provisionByClaim({
          endpoint, claim, templateName: o.template, parameters: parseKeyValues(o.parameter),
          keyMode: o.serverKeys === true ? 'server' : 'csr', format: o.cbor === true ? 'cbor' : 'json', outDir: o.out, ...(o.clientId === undefined ? {} : { clientId: o.clientId }),
          attempts,
          maxRetryWaitMs: maxRetryWait * 1000,
          timeoutMs,
          onRetry: (r) => c.io.stderr(`attempt ${r.attempt} of ${r.attempts} failed (${describeError(r.error)}); retrying in ${r.delayMs} ms\n`),
        });
        c.print(cmd, { thingName: r.thingName, certificateId: r.certificateId, deviceConfiguration: r.deviceConfiguration, out: o.out });
      }),
    );
  device.command('connect')
    .description('prove an identity works: connect over mutual TLS and optionally publish one message')
    .requiredOption('--creds <dir>', 'directory with certificate.pem, private.key, root-ca.pem, endpoint.txt')
    .option('--endpoint <host:port>', 'override endpoint.txt')
    .option('--servername <name>', 'TLS SNI')
    .option('--client-id <id>', "MQTT client id (default: the thing name from provisioning.json, else the certificate's CN)")
    .option('--publish <topic>', 'publish one QoS 1 message to this topic')
    .option('--message <text>', 'payload', 'hello')
    .action((o: { creds: string; endpoint?: string; servername?: string; clientId?: string; publish?: string; message: string }, cmd: Command) =>
      c.run(async () => {
        const dir = o.creds;
        let isDir = false;
        try {
          isDir = statSync(dir).isDirectory();
        } catch {
          isDir = false;
        }
        if (!isDir) throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `${dir} is not a credentials directory (gatehouse device provision --out writes one)`);
        const credentials = readCredentialFiles(path.join(dir, 'certificate.pem'), path.join(dir, 'private.key'));
        const caPem = readDeviceFile(path.join(dir, 'root-ca.pem'), 'root CA');
        let info: { thingName?: string; servername?: string | null } = {};
        try {
          info = JSON.parse(readFileSync(path.join(dir, 'provisioning.json'), 'utf8')) as typeof info;
        } catch {
          info = {};
        }
        const endpoint = parseEndpoint(o.endpoint ?? readDeviceFile(path.join(dir, 'endpoint.txt'), 'endpoint (or give --endpoint)'), caPem, o.servername ?? info.servername ?? undefined);
        // a bundle not written by Gatehouse (JITP/JITR devices, certificates of your own CA) has no provisioning.json:
        // its CN is the usual thing name (AWS's JITP templates name the thing after it)
        const cn = /^CN=(.+)$/m.exec(new X509Certificate(credentials.certificatePem).subject)?.[1];
        const clientId = o.clientId ?? info.thingName ?? cn ?? 'gatehouse-device';
        const client = await connectDevice(endpoint, credentials, clientId).catch((error: unknown) => {
          const refused = isGatehouseError(error) && error.details?.['connackCode'] === 5;
          if (!refused || o.clientId !== undefined) throw error;
          const source = info.thingName !== undefined ? 'the thing name from provisioning.json' : cn !== undefined ? "the certificate's CN" : 'the default';
          throw DeviceErrors.error('DEVICE_CONNECT_FAILED', `${error.message}; the client id "${clientId}" is ${source}, give the one the certificate's policies allow with --client-id`, { cause: error, details: error.details });
        });
        try {
          if (o.publish !== undefined) {
            const topic = o.publish;
            await client.publishAsync(topic, o.message, { qos: 1 }).catch((cause: unknown) => {
              throw DeviceErrors.error('DEVICE_PUBLISH_REFUSED', `the endpoint closed the connection instead of acknowledging the publish to ${topic}: most likely the certificate's policies do not allow iot:Publish there (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
            });
          }
        } finally {
          await client.endAsync();
        }
        c.print(cmd, { connected: true, clientId, ...(o.publish === undefined ? {} : { published: o.publish }) });
      }),
    );
  return [device];
}
