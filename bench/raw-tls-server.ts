/**
 * The bare TLS server of the raw handshake baseline (started by bench/support.ts in its own process):
 * `tls.createServer` on 127.0.0.1, an ephemeral port, `requestCert: true, rejectUnauthorized: true`, and no stateless
 * session tickets (`SSL_OP_NO_TICKET`), as Gatehouse's device listener (src/gateway/device-tls.ts); it answers one
 * byte to every verified client and closes. Reads its material from the JSON file given as argv[2] and prints
 * `{"port":N}`. Exits on SIGTERM, or after 10 minutes at most.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:crypto';
import { createServer } from 'node:tls';
import { Aedes } from 'aedes';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: raw-tls-server.ts <material.json> [--aedes]');
const material = JSON.parse(readFileSync(file, 'utf8')) as { cert: string; key: string; ca: string[] };
// `--aedes`: every verified connection goes to a bare aedes broker (defaults: no authentication, no authorization,
// in-memory persistence): the cost of MQTT over node:tls with aedes alone (bench/aedes-floor.ts).
const broker = process.argv.includes('--aedes') ? await Aedes.createBroker({}) : undefined;
// The same TLS work as Gatehouse's device listener: Node's default stateless tickets cost this server 15–20% more CPU
// per handshake (OpenSSL 3.0 encodes the session, peer certificate included, and decodes it again for each of the two
// TLS 1.3 tickets), work the listener does not do (2026-11-29: 3.0–3.05 ms with tickets, 2.37–2.57 ms without).
const server = createServer({ cert: material.cert, key: material.key, ca: material.ca, requestCert: true, rejectUnauthorized: true, secureOptions: constants.SSL_OP_NO_TICKET }, (socket) => {
  socket.on('error', () => socket.destroy());
  if (broker !== undefined) {
    socket.setNoDelay(true);
    broker.handle(socket);
    return;
  }
  socket.end('k');
});
server.on('tlsClientError', () => undefined);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
const stop = (): void => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, 600_000).unref();
