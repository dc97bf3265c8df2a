import { createHash, verify as cryptoVerify } from 'node:crypto';
import * as pki from '../../pki/index.ts';
import type { ParsedCertificate } from '../../pki/index.ts';
import type { ManifestEntry, ManifestRefusalCode } from './manifest-entry.ts';

/** Options of {@link convertMicrochipManifest}. */
export interface MicrochipManifestOptions {
  /** Manifest signer certificates (PEM), e.g. Microchip's `MCHP_manifest_signer_*.crt`. */
  readonly verifiers: readonly string[];
  /** Where the thing name comes from: the device certificate CN (default) or the secure element's `uniqueId`. */
  readonly thingName?: 'cn' | 'uniqueId';
}

interface Signer {
  readonly certificate: ParsedCertificate;
  readonly x5tS256: string;
  readonly kids: readonly string[];
}

class Refusal extends Error {
  readonly code: ManifestRefusalCode;
  constructor(code: ManifestRefusalCode, message: string) {
    super(message);
    this.code = code;
  }
}

const b64url = (b: Buffer): string => b.toString('base64url');

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new Refusal('PROVISIONING_MANIFEST_MALFORMED', `the ${what} is not base64url JSON`);
}

function signerOf(pem: string): Signer {
  const certificate = pki.parseCertificate(pem);
  const kids = [b64url(createHash('sha1').update(certificate.der).digest())];
  if (certificate.subjectKeyIdentifier !== undefined) kids.push(b64url(Buffer.from(certificate.subjectKeyIdentifier, 'hex')));
  return { certificate, x5tS256: b64url(createHash('sha256').update(certificate.der).digest()), kids };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Verifies one entry (a flattened JWS, RFC 7515 §7.2.2): ES256 only, signed by the verifier named by `x5t#S256`
 * (or `kid`); then the device chain `publicKeySet.keys[0].x5c` must verify link by link up to the signer CA it
 * ends with, and the leaf must carry the entry's public key.
 */
function verifyEntry(entry: unknown, signers: readonly Signer[], thingNameFrom: 'cn' | 'uniqueId'): { thingName: string; certificatePem: string; uniqueId: string } {
  if (typeof entry !== 'object' || entry === null) throw new Refusal('PROVISIONING_MANIFEST_MALFORMED', 'the entry is not a JWS object');
  const e = entry as Record<string, unknown>;
  const protectedB64 = str(e['protected']);
  const payloadB64 = str(e['payload']);
  const signatureB64 = str(e['signature']);
  if (protectedB64 === undefined || payloadB64 === undefined || signatureB64 === undefined) throw new Refusal('PROVISIONING_MANIFEST_MALFORMED', 'the entry lacks protected, payload or signature');
  const header = decodeJson(protectedB64, 'protected header');
  if (header['alg'] !== 'ES256') throw new Refusal('PROVISIONING_MANIFEST_SIGNATURE_INVALID', `the entry is signed with ${String(header['alg']).slice(0, 16)}, not ES256`);
  const x5t = str(header['x5t#S256']);
  const kid = str(header['kid']);
  const signer = x5t !== undefined ? signers.find((s) => s.x5tS256 === x5t) : kid !== undefined ? signers.find((s) => s.kids.includes(kid)) : undefined;
  if (signer === undefined) throw new Refusal('PROVISIONING_MANIFEST_SIGNER_UNKNOWN', `no verifier certificate matches x5t#S256 ${x5t ?? '-'} / kid ${kid ?? '-'}`);
  if (kid !== undefined && x5t !== undefined && !signer.kids.includes(kid)) throw new Refusal('PROVISIONING_MANIFEST_SIGNER_UNKNOWN', 'kid and x5t#S256 name different signers');
  const signature = Buffer.from(signatureB64, 'base64url');
  const ok = signature.length === 64 && cryptoVerify('sha256', Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii'), { key: signer.certificate.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  if (!ok) throw new Refusal('PROVISIONING_MANIFEST_SIGNATURE_INVALID', 'the entry signature does not verify with its signer');
  const payload = decodeJson(payloadB64, 'payload');
  const uniqueId = str(payload['uniqueId']);
  if (uniqueId === undefined) throw new Refusal('PROVISIONING_MANIFEST_MALFORMED', 'the payload has no uniqueId');
  const keySet = payload['publicKeySet'] as { keys?: unknown } | undefined;
  const key = Array.isArray(keySet?.keys) ? (keySet.keys[0] as Record<string, unknown> | undefined) : undefined;
  const x5c = key === undefined ? undefined : key['x5c'];
  if (!Array.isArray(x5c) || x5c.length === 0) {
    throw new Refusal('PROVISIONING_MANIFEST_NO_CERTIFICATE', `device ${uniqueId} is verified but carries no certificate (pre-authorized id; issue its certificate later)`);
  }
  let chain: ParsedCertificate[];
  try {
    chain = x5c.map((c) => pki.parseCertificate(Buffer.from(String(c), 'base64')));
  } catch {
    throw new Refusal('PROVISIONING_MANIFEST_CHAIN_INVALID', `the x5c of device ${uniqueId} is not a list of certificates`);
  }
  const leaf = chain[0];
  if (leaf === undefined || chain.length < 2) throw new Refusal('PROVISIONING_MANIFEST_CHAIN_INVALID', `the x5c of device ${uniqueId} does not reach a signer CA`);
  for (let i = 0; i + 1 < chain.length; i += 1) {
    const child = chain[i];
    const parent = chain[i + 1];
    if (child === undefined || parent === undefined || !parent.isCa || !child.issuerNameDer.equals(parent.subjectNameDer) || !child.x509.verify(parent.publicKey)) {
      throw new Refusal('PROVISIONING_MANIFEST_CHAIN_INVALID', `certificate ${i} of the x5c of device ${uniqueId} is not signed by the next one`);
    }
  }
  const jwk = leaf.publicKey.export({ format: 'jwk' });
  if (key === undefined || (key['x'] !== undefined && (key['x'] !== jwk.x || key['y'] !== jwk.y))) {
    throw new Refusal('PROVISIONING_MANIFEST_CHAIN_INVALID', `the certificate of device ${uniqueId} is not for the entry's public key`);
  }
  const cn = leaf.subject.CN?.[0];
  const pems = [leaf.pem];
  return { thingName: thingNameFrom === 'uniqueId' || cn === undefined ? uniqueId : cn, certificatePem: pems.join(''), uniqueId };
}

/**
 * Converts a Microchip Trust&GO / TrustFLEX / TrustMANAGER manifest (a JSON array of per-device JWS) into manifest
 * entries (issue 7 §4). Each entry is verified alone; a refused entry is reported and the others proceed.
 */
export function convertMicrochipManifest(text: string, options: MicrochipManifestOptions): ManifestEntry[] {
  const signers = options.verifiers.flatMap((pem) => pki.splitPemChain(pem)).map(signerOf);
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    entries = undefined;
  }
  if (!Array.isArray(entries)) return [{ kind: 'refused', index: 0, code: 'PROVISIONING_MANIFEST_MALFORMED', message: 'the manifest is not a JSON array of JWS entries' }];
  return entries.map((entry: unknown, i): ManifestEntry => {
    const hint = typeof entry === 'object' && entry !== null ? str((entry as { header?: { uniqueId?: unknown } }).header?.uniqueId) : undefined;
    try {
      const d = verifyEntry(entry, signers, options.thingName ?? 'cn');
      return { kind: 'device', index: i + 1, thingName: d.thingName, certificatePem: d.certificatePem, uniqueId: d.uniqueId };
    } catch (error) {
      if (error instanceof Refusal) return { kind: 'refused', index: i + 1, uniqueId: hint, code: error.code, message: `entry ${i + 1}${hint === undefined ? '' : ` (${hint.slice(0, 64)})`}: ${error.message}` };
      return { kind: 'refused', index: i + 1, uniqueId: hint, code: 'PROVISIONING_MANIFEST_MALFORMED', message: `entry ${i + 1} cannot be read` };
    }
  });
}
