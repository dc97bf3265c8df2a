import { createPrivateKey } from 'node:crypto';
import * as pki from '../../pki/index.ts';

/** What each generated line carries (issue 7 §5). */
export type GeneratedMaterial =
  /** A CSR per device (Gatehouse signs it). */
  | { readonly kind: 'csr' }
  /** A certificate per device, signed locally by a CA whose key the caller holds (register with or without that CA). */
  | { readonly kind: 'certificate'; readonly caCertificatePem: string; readonly caKeyPem: string }
  /** Only the thing name: Gatehouse generates the keys (development only). */
  | { readonly kind: 'none' };

/** Options of {@link generateDeviceLines}. */
export interface GenerateDevicesOptions {
  readonly count: number;
  readonly material: GeneratedMaterial;
  /** Thing names are `<prefix><index>`, zero-padded (default `device-`). */
  readonly prefix?: string;
  readonly startIndex?: number;
  /** Digits of the zero-padded index (default: those of the last index), so that parallel parts agree. */
  readonly nameWidth?: number;
  /** Validity of locally signed certificates (default 365 days). */
  readonly validityDays?: number;
}

/** One generated device: its bulk line (JSON) and, when generated here, its private key. */
export interface GeneratedDevice {
  readonly thingName: string;
  readonly line: string;
  readonly privateKeyPem: string | undefined;
}

/**
 * Generates devices for tests and benchmarks: EC P-256 keys with a CSR or a locally signed certificate, as bulk
 * JSON lines `{"ThingName": …, "CSR" | "CertificatePem": …}`. Lazy, so any count streams to a file.
 */
export function* generateDeviceLines(options: GenerateDevicesOptions): Generator<GeneratedDevice> {
  const prefix = options.prefix ?? 'device-';
  const start = options.startIndex ?? 1;
  const width = options.nameWidth ?? String(start + options.count - 1).length;
  const m = options.material;
  const issuer =
    m.kind === 'certificate'
      ? pki.createCertificateIssuer({ caCertificate: pki.parseCertificate(m.caCertificatePem), signer: pki.createKeyObjectSigner(createPrivateKey(m.caKeyPem)), chainPem: [m.caCertificatePem] })
      : undefined;
  for (let i = start; i < start + options.count; i += 1) {
    const thingName = `${prefix}${String(i).padStart(width, '0')}`;
    if (m.kind === 'none') {
      yield { thingName, line: JSON.stringify({ ThingName: thingName }), privateKeyPem: undefined };
      continue;
    }
    const keys = pki.generateKeyPair('EC_P256');
    if (issuer === undefined) {
      const csr = pki.createCsr({ subject: { CN: [thingName] }, privateKeyPem: keys.privateKeyPem, spkiDer: keys.spkiDer });
      yield { thingName, line: JSON.stringify({ ThingName: thingName, CSR: csr }), privateKeyPem: keys.privateKeyPem };
    } else {
      const cert = issuer.issue({ publicKey: keys.spkiDer, subject: { CN: [thingName] }, validityDays: options.validityDays ?? 365, extendedKeyUsage: 'clientAuth' });
      yield { thingName, line: JSON.stringify({ ThingName: thingName, CertificatePem: cert.pem }), privateKeyPem: keys.privateKeyPem };
    }
  }
}
