import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as pki from '../../pki/index.ts';
import type { ManifestEntry } from './manifest-entry.ts';

const PEM_FILE = /\.(pem|crt|cer)$/i;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else if (PEM_FILE.test(name)) out.push(p);
  }
  return out;
}

/**
 * Converts a directory (searched recursively, in name order) of PEM certificate files into manifest entries; every
 * certificate of every file is one device and its thing name is the certificate CN (issue 7 §4).
 */
export function* convertPemDirectory(dir: string): Generator<ManifestEntry> {
  let index = 0;
  for (const file of listFiles(dir)) {
    let blocks: string[];
    try {
      blocks = pki.splitPemChain(readFileSync(file, 'utf8'));
    } catch {
      blocks = [];
    }
    if (blocks.length === 0) {
      index += 1;
      yield { kind: 'refused', index, code: 'PROVISIONING_MANIFEST_MALFORMED', message: `${path.basename(file)} holds no PEM certificate` };
    }
    for (const pem of blocks) {
      index += 1;
      try {
        const cert = pki.parseCertificate(pem);
        const cn = cert.subject.CN?.[0];
        if (cn === undefined) {
          yield { kind: 'refused', index, code: 'PROVISIONING_MANIFEST_MALFORMED', message: `${path.basename(file)}: the certificate has no CN` };
          continue;
        }
        if (cert.isCa) continue; // issuer certificates that ship beside the device certificates
        yield { kind: 'device', index, thingName: cn, certificatePem: cert.pem };
      } catch {
        yield { kind: 'refused', index, code: 'PROVISIONING_MANIFEST_MALFORMED', message: `${path.basename(file)}: not a readable certificate` };
      }
    }
  }
}
