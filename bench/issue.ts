/**
 * Issuing throughput on one core: parse + verify a PEM CSR and issue a certificate from it, N times, against the
 * raw `node:crypto` limit 1 / (t_sign + t_verify) of ECDSA P-256 measured in the same process.
 *
 *   npx tsx bench/issue.ts [N]      (default N = 5000)
 *
 * Prints one JSON line (machine-readable) and one human line. Not part of the test run.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import {
  EncryptedKeyStore,
  InMemoryKeyBlobRepository,
  createCertificateIssuer,
  createCsrDer,
  createIntermediateCa,
  createRootCa,
  encodePem,
  generateKek,
  parseCsr,
} from '../src/pki/index.ts';

const n = Number.parseInt(process.argv[2] ?? '5000', 10);
if (!Number.isInteger(n) || n <= 0) throw new Error('usage: tsx bench/issue.ts [N]');

function microsPerOp(count: number, run: (i: number) => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) run(i);
  return Number(process.hrtime.bigint() - start) / 1000 / count;
}

/** Raw ECDSA P-256 sign and verify of a certificate-sized payload with node:crypto. */
function measureRaw(count: number): { signMicros: number; verifyMicros: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const payloads = Array.from({ length: 64 }, () => randomBytes(420));
  const signatures = payloads.map((p) => sign('sha256', p, privateKey));
  microsPerOp(200, (i) => sign('sha256', payloads[i % 64] as Buffer, privateKey));
  microsPerOp(200, (i) => verify('sha256', payloads[i % 64] as Buffer, publicKey, signatures[i % 64] as Buffer));
  const signMicros = microsPerOp(count, (i) => sign('sha256', payloads[i % 64] as Buffer, privateKey));
  const verifyMicros = microsPerOp(count, (i) =>
    verify('sha256', payloads[i % 64] as Buffer, publicKey, signatures[i % 64] as Buffer),
  );
  return { signMicros, verifyMicros };
}

// --- CA hierarchy (in-memory encrypted key store) ------------------------------------------------------------------
const keyStore = new EncryptedKeyStore({ kek: generateKek(), blobs: new InMemoryKeyBlobRepository() });
const root = await createRootCa({ keyStore, commonName: 'Bench Root' });
const rootSigner = await keyStore.getSigner(root.keyRef);
const intermediate = await createIntermediateCa({
  keyStore,
  issuerCertificate: root.certificate,
  issuerSigner: rootSigner,
  commonName: 'Bench Issuing CA',
});
const issuer = createCertificateIssuer({
  caCertificate: intermediate.certificate,
  signer: await keyStore.getSigner(intermediate.keyRef),
  chainPem: [intermediate.certificate.pem, root.certificate.pem],
  crlDistributionPointUrl: 'http://localhost:8080/crl/bench.crl',
});

// --- N device CSRs (not timed) -----------------------------------------------------------------------------------
const csrs: string[] = [];
for (let i = 0; i < n; i++) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = createCsrDer({
    privateKey,
    spkiDer: publicKey.export({ type: 'spki', format: 'der' }),
    subject: { CN: [`device-${i.toString().padStart(6, '0')}`], O: ['Bench Devices'] },
  });
  csrs.push(encodePem('CERTIFICATE REQUEST', der));
}

const rawBefore = measureRaw(Math.max(2000, Math.min(n, 10000)));

// --- timed: parse + verify + issue ---------------------------------------------------------------------------------
const issueOne = (pem: string): number => {
  const csr = parseCsr(pem);
  const issued = issuer.issue({
    publicKey: csr.spkiDer,
    subject: csr.subject,
    validityDays: 365,
    extendedKeyUsage: 'clientAuth',
  });
  return issued.der.length;
};
for (let i = 0; i < Math.min(200, n); i++) issueOne(csrs[i] as string); // warm-up
let bytes = 0;
const start = process.hrtime.bigint();
for (const pem of csrs) bytes += issueOne(pem);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
if (bytes === 0) throw new Error('nothing issued');

const rawAfter = measureRaw(Math.max(2000, Math.min(n, 10000)));
const signMicros = (rawBefore.signMicros + rawAfter.signMicros) / 2;
const verifyMicros = (rawBefore.verifyMicros + rawAfter.verifyMicros) / 2;
const certsPerSecond = n / seconds;
const rawLimitPerSecond = 1e6 / (signMicros + verifyMicros);
const ratio = certsPerSecond / rawLimitPerSecond;
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

process.stdout.write(
  `${JSON.stringify({
    bench: 'issue',
    n,
    certsPerSecond: round(certsPerSecond, 0),
    rawLimitPerSecond: round(rawLimitPerSecond, 0),
    ratio: round(ratio, 3),
    signMicros: round(signMicros, 1),
    verifyMicros: round(verifyMicros, 1),
  })}\n`,
);
process.stdout.write(
  `issued ${n} certificates from PEM CSRs in ${seconds.toFixed(2)} s: ${certsPerSecond.toFixed(0)}/s ` +
    `(${((seconds * 1e6) / n).toFixed(0)} µs each); raw ECDSA P-256 sign ${signMicros.toFixed(1)} µs + verify ` +
    `${verifyMicros.toFixed(1)} µs → limit ${rawLimitPerSecond.toFixed(0)}/s; ratio ${(ratio * 100).toFixed(1)} %\n`,
);
