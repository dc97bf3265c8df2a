import { DerTag, contextTag, encodeInteger, encodeOid, encodeSequence, encodeTlv } from './der.ts';
import { encodePem } from './pem.ts';

const SIGNED_DATA = encodeOid('1.2.840.113549.1.7.2');
const DATA = encodeOid('1.2.840.113549.1.7.1');

/**
 * Builds a degenerate "certs-only" CMS SignedData (RFC 5652 §5; RFC 7030 §4.1.3 and §4.2.3 use it for EST
 * `/cacerts` and enrollment responses): no content, no signers, the given certificates. Returns DER and PEM
 * (`PKCS7` label, as OpenSSL prints it).
 */
export function buildCertsOnlyPkcs7(certificatesDer: readonly Uint8Array[]): { der: Buffer; pem: string } {
  const signedData = encodeSequence(
    encodeInteger(1),
    encodeTlv(DerTag.SET),
    encodeSequence(DATA),
    encodeTlv(contextTag(0, true), ...certificatesDer),
    encodeTlv(DerTag.SET),
  );
  const der = encodeSequence(SIGNED_DATA, encodeTlv(contextTag(0, true), signedData));
  return { der, pem: encodePem('PKCS7', der) };
}
