import type { Readable } from 'node:stream';
import { readDeviceRecords } from './input-readers.ts';
import type { ManifestEntry } from './manifest-entry.ts';

/**
 * Converts an Espressif manifest — CSV with header `MAC,cn,cert` (the PEM quoted over several lines) — into
 * manifest entries; thing name = MAC (issue 7 §4). Streams: the CSV is never held whole.
 */
export async function* convertEspressifManifest(input: Readable): AsyncGenerator<ManifestEntry> {
  for await (const rec of readDeviceRecords(input, 'csv')) {
    if (rec.kind === 'error') {
      yield { kind: 'refused', index: rec.lineNo, code: 'PROVISIONING_MANIFEST_MALFORMED', message: rec.message };
      continue;
    }
    const mac = rec.fields['MAC']?.trim();
    const cert = rec.fields['cert'];
    if (mac === undefined || mac === '' || cert === undefined || !cert.includes('-----BEGIN CERTIFICATE-----')) {
      yield { kind: 'refused', index: rec.lineNo, ...(mac === undefined ? {} : { thingName: mac }), code: 'PROVISIONING_MANIFEST_MALFORMED', message: `record ${rec.lineNo} lacks MAC or cert` };
      continue;
    }
    yield { kind: 'device', index: rec.lineNo, thingName: mac, certificatePem: cert.endsWith('\n') ? cert : `${cert}\n` };
  }
}
