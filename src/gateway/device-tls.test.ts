import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { DeviceTlsListener } from './device-tls.ts';
import type { PeerIdentity, TlsRefusalReason } from './device-tls.ts';
import { DEFAULT_GATEWAY_LIMITS } from './gateway-limits.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const dialect of DIALECTS) {
  describe(`DeviceTlsListener (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    let dir: string;
    let certPem: string;
    let keyPem: string;
    let strangerCertPem: string;
    let strangerKeyPem: string;

    beforeAll(async () => {
      ({ store, dispose } = await dialect.create());
      await registry.createTenant(store.db, registry.DEFAULT_TENANT, 'localhost');
      dir = mkdtempSync(path.join(tmpdir(), 'gh-tls-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/CN=localhost', '-days', '2', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ck.pem', '-out', 'cc.pem', '-subj', '/CN=stranger', '-days', '2'], { cwd: dir, stdio: 'ignore' });
      certPem = readFileSync(path.join(dir, 'c.pem'), 'utf8');
      strangerCertPem = readFileSync(path.join(dir, 'cc.pem'), 'utf8');
      strangerKeyPem = readFileSync(path.join(dir, 'ck.pem'), 'utf8');
      keyPem = readFileSync(path.join(dir, 'k.pem'), 'utf8');
    });
    afterAll(async () => {
      await dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    async function start(maxConnectionsPerIp: number): Promise<{ listener: DeviceTlsListener; port: number; accepted: PeerIdentity[]; refused: TlsRefusalReason[] }> {
      const accepted: PeerIdentity[] = [];
      const refused: TlsRefusalReason[] = [];
      const listener = await DeviceTlsListener.create({
        store, logger: pino({ level: 'silent' }), serverCertificateChainPem: certPem, serverKeyPem: keyPem, rootCaPem: certPem, domain: 'localhost',
        limits: { ...DEFAULT_GATEWAY_LIMITS, maxConnectionsPerIp },
        onConnection: (socket, identity) => {
          accepted.push(identity);
          socket.destroy();
        },
        onRefusal: (reason) => refused.push(reason),
      });
      const port = await listener.listen('127.0.0.1', 0);
      return { listener, port, accepted, refused };
    }

    it('refuses connections beyond the per-IP limit at TCP accept, and counts again once they close', async () => {
      const { listener, port, refused } = await start(2);
      const open = (): Promise<net.Socket> => new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
      });
      const a = await open();
      const b = await open();
      const c = await open();
      const closed = await new Promise<boolean>((resolve) => {
        c.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 2_000);
      });
      expect(closed).toBe(true);
      expect(refused).toEqual(['too_many_connections_from_ip']);
      a.destroy();
      await sleep(100);
      const d = await open();
      await sleep(100);
      expect(d.destroyed).toBe(false);
      expect(refused).toHaveLength(1);
      b.destroy();
      d.destroy();
      await listener.close();
    });

    it('refuses a TLS client without a certificate, and one whose certificate it cannot verify', async () => {
      const { listener, port, accepted, refused } = await start(0);
      const attempt = (options: tls.ConnectionOptions): Promise<void> => new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: certPem, ...options });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 2_000);
      });
      await attempt({});
      // A self-signed certificate the default tenant does not trust and that is not registered.
      await attempt({ cert: strangerCertPem, key: strangerKeyPem });
      await sleep(50);
      expect(accepted).toHaveLength(0);
      expect(refused).toEqual(['no_certificate', 'tls_unverified']);
      await listener.close();
    });
  });
}
