import { createReadStream, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertEspressifManifest } from './manifest-espressif.ts';
import { manifestEntryToBulkLine } from './manifest-entry.ts';
import type { ManifestEntry } from './manifest-entry.ts';
import { convertMicrochipManifest } from './manifest-microchip.ts';

const MANIFESTS = path.resolve(import.meta.dirname, '../../../../shared/data/manifests');
const signers = readdirSync(MANIFESTS).filter((f) => f.startsWith('MCHP_manifest_signer_')).map((f) => readFileSync(path.join(MANIFESTS, f), 'utf8'));
const trustAndGo = readFileSync(path.join(MANIFESTS, 'microchip-ECC608C-TNGTLSU-B.json'), 'utf8');

function tamper(text: string, index: number, field: 'payload' | 'signature'): string {
  const entries = JSON.parse(text) as Record<string, string>[];
  const e = entries[index];
  if (e === undefined) throw new Error('no entry');
  const bytes = Buffer.from(e[field] ?? '', 'base64url');
  const i = field === 'payload' ? bytes.indexOf(Buffer.from('uniqueId')) + 12 : 10;
  bytes[i] = (bytes[i] ?? 0) ^ 0x01;
  e[field] = bytes.toString('base64url');
  return JSON.stringify(entries);
}

describe('Microchip manifest (real Trust&GO / TrustMANAGER samples)', () => {
  it('verifies every Trust&GO entry against the signer named by x5t#S256 and takes the thing name from the CN', () => {
    const entries = convertMicrochipManifest(trustAndGo, { verifiers: signers });
    expect(entries).toHaveLength(10);
    expect(entries.every((e) => e.kind === 'device')).toBe(true);
    const first = entries[0] as Extract<ManifestEntry, { kind: 'device' }>;
    expect(first.thingName).toBe('sn0123F2408EA1FCF201');
    expect(first.uniqueId).toBe('0123f2408ea1fcf201');
    expect(first.certificatePem).toContain('BEGIN CERTIFICATE');
    expect(JSON.parse(manifestEntryToBulkLine(first))).toEqual({ ThingName: first.thingName, CertificatePem: first.certificatePem });
    const byId = convertMicrochipManifest(trustAndGo, { verifiers: signers, thingName: 'uniqueId' });
    expect((byId[0] as Extract<ManifestEntry, { kind: 'device' }>).thingName).toBe('0123f2408ea1fcf201');
  });

  it('refuses a tampered payload, a tampered signature and an unknown signer, entry by entry', () => {
    const bad = tamper(tamper(trustAndGo, 1, 'payload'), 2, 'signature');
    const entries = convertMicrochipManifest(bad, { verifiers: signers });
    expect(entries.map((e) => (e.kind === 'device' ? 'ok' : e.code))).toEqual([
      'ok', 'PROVISIONING_MANIFEST_SIGNATURE_INVALID', 'PROVISIONING_MANIFEST_SIGNATURE_INVALID', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok',
    ]);
    const refused = entries[1];
    expect(refused?.kind === 'refused' && refused.uniqueId).toBeTruthy();
    const line = JSON.parse(manifestEntryToBulkLine(entries[1] as ManifestEntry)) as Record<string, unknown>;
    expect(line['$refused']).toMatchObject({ code: 'PROVISIONING_MANIFEST_SIGNATURE_INVALID' });
    const wrongSigner = convertMicrochipManifest(trustAndGo, { verifiers: signers.slice(0, 2) });
    expect(wrongSigner.every((e) => e.kind === 'refused' && e.code === 'PROVISIONING_MANIFEST_SIGNER_UNKNOWN')).toBe(true);
    expect(convertMicrochipManifest('{"not":"an array"}', { verifiers: signers })[0]).toMatchObject({ kind: 'refused', code: 'PROVISIONING_MANIFEST_MALFORMED' });
  });

  it('verifies TrustMANAGER entries and reports them as ids without a certificate, without crashing', () => {
    const entries = convertMicrochipManifest(readFileSync(path.join(MANIFESTS, 'microchip-ECC608-TMNGTLSS-B.json'), 'utf8'), { verifiers: signers });
    expect(entries).toHaveLength(10);
    for (const e of entries) expect(e).toMatchObject({ kind: 'refused', code: 'PROVISIONING_MANIFEST_NO_CERTIFICATE' });
  });
});

describe('Espressif manifest (real sample)', () => {
  it('reads MAC,cn,cert with multi-line quoted PEMs; thing name = MAC', async () => {
    const entries: ManifestEntry[] = [];
    for await (const e of convertEspressifManifest(createReadStream(path.join(MANIFESTS, 'espressif.csv')))) entries.push(e);
    expect(entries).toHaveLength(7);
    expect(entries[0]).toMatchObject({ kind: 'device', thingName: '4BA2BB8764BD' });
    for (const e of entries) if (e.kind === 'device') expect(e.certificatePem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  });
});
