import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PkiErrors } from './errors.ts';

const KINDS = ['invalid', 'unauthenticated', 'forbidden', 'not_found', 'conflict', 'too_large', 'rate_limited', 'unavailable', 'internal'];

describe('PkiErrors', () => {
  const codes = Object.keys(PkiErrors.specs);

  it('declares PKI_ UPPER_SNAKE codes with a kind and a description', () => {
    expect(codes.length).toBeGreaterThan(30);
    for (const [code, spec] of Object.entries(PkiErrors.specs)) {
      expect(code).toMatch(/^PKI_[A-Z0-9]+(?:_[A-Z0-9]+)*$/);
      expect(KINDS).toContain(spec.kind);
      expect(spec.description.length).toBeGreaterThan(10);
    }
  });

  it('raises every declared code somewhere in the PKI sources (no dead codes)', () => {
    const dir = import.meta.dirname;
    const sources = readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'errors.ts' && !f.endsWith('.contract.ts'))
      .map((f) => readFileSync(path.join(dir, f), 'utf8'))
      .join('\n');
    for (const code of codes) expect(sources, code).toContain(`'${code}'`);
  });

  it('builds GatehouseErrors with the code, kind and safe message', () => {
    const error = PkiErrors.error('PKI_CSR_MALFORMED');
    expect(error).toMatchObject({ code: 'PKI_CSR_MALFORMED', kind: 'invalid', name: 'GatehouseError' });
  });
});
