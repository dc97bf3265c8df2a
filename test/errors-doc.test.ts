import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOMAINS, renderErrorsDoc } from '../scripts/error-catalog.ts';

describe('docs/errors.md', () => {
  it('lists exactly the codes the code defines', () => {
    const doc = readFileSync(path.resolve(import.meta.dirname, '../docs/errors.md'), 'utf8');
    expect(doc).toBe(renderErrorsDoc());
  });
  it('has unique, prefixed, UPPER_SNAKE codes', () => {
    const seen = new Set<string>();
    for (const d of DOMAINS) {
      for (const code of Object.keys(d.registry.specs)) {
        expect(code).toMatch(/^[A-Z]+_[A-Z0-9_]+$/);
        expect(seen.has(code)).toBe(false);
        seen.add(code);
      }
    }
    expect(seen.size).toBeGreaterThan(50);
  });
  it('lists no code that nothing raises', () => {
    // every code is named, quoted, somewhere in the sources other than its own definition and the tests
    const src = path.resolve(import.meta.dirname, '../src');
    const sources = readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => readFileSync(path.join(src, f), 'utf8'))
      .join('\n');
    const unused = DOMAINS.flatMap((d) => Object.keys(d.registry.specs)).filter((code) => {
      const uses = sources.split(`'${code}'`).length - 1 + (sources.split(`"${code}"`).length - 1);
      return uses === 0;
    });
    expect(unused).toEqual([]);
  });
});

