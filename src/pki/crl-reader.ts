import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { ParsedCertificate } from './certificate.ts';
import { PkiErrors } from './errors.ts';

/** What Gatehouse reads from a CRL someone else published (the JITR "CRL" hook). */
export interface ReadCrl {
  /** Serial numbers of the revoked certificates: lower-case hex without leading zeros. */
  readonly revokedSerials: ReadonlySet<string>;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
}

const normaliseSerial = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, '');

/**
 * Reads a CRL (PEM `X509 CRL` or DER, RFC 5280 §5) and verifies it is signed by `issuer` with a matching issuer
 * name; throws `PKI_CRL_INVALID` otherwise. Not a hot path: @peculiar/x509 parses, WebCrypto verifies.
 */
export async function readCrl(input: string | Uint8Array, issuer: ParsedCertificate): Promise<ReadCrl> {
  let crl: x509.X509Crl;
  try {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    crl = typeof input === 'string' ? new x509.X509Crl(input.replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----')) : new x509.X509Crl(Buffer.from(input));
  } catch (cause) {
    throw PkiErrors.error('PKI_CRL_INVALID', 'the CRL cannot be parsed', { cause });
  }
  const issuerCert = new x509.X509Certificate(Buffer.from(issuer.der));
  if (crl.issuerName.toString() !== issuerCert.subjectName.toString()) throw PkiErrors.error('PKI_CRL_INVALID', 'the CRL is not issued by this CA (issuer name differs)');
  let ok = false;
  try {
    ok = await crl.verify({ publicKey: issuerCert });
  } catch (cause) {
    throw PkiErrors.error('PKI_CRL_INVALID', 'the CRL signature cannot be verified', { cause });
  }
  if (!ok) throw PkiErrors.error('PKI_CRL_INVALID', 'the CRL signature does not verify with the CA key');
  return {
    revokedSerials: new Set(crl.entries.map((e) => normaliseSerial(e.serialNumber))),
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
  };
}

/** Normalises a certificate serial (hex) as {@link ReadCrl.revokedSerials} holds them. */
export function crlSerialKey(serialHex: string): string {
  return normaliseSerial(serialHex);
}
