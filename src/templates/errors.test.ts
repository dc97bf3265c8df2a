import { describe, expect, it } from 'vitest';
import { TemplateErrors } from './index.ts';

describe('TemplateErrors', () => {
  const codes = Object.keys(TemplateErrors.specs) as (keyof typeof TemplateErrors.specs)[];

  it('declares TEMPLATE_-prefixed UPPER_SNAKE codes, each with a description', () => {
    for (const code of codes) {
      expect(code).toMatch(/^TEMPLATE_[A-Z0-9]+(_[A-Z0-9]+)*$/);
      expect(TemplateErrors.specs[code].description.length).toBeGreaterThan(10);
    }
  });

  it('builds errors that carry the code, the kind and the path', () => {
    const error = TemplateErrors.error('TEMPLATE_REF_UNKNOWN', 'Ref must name a parameter', { details: { path: '$.Resources.thing' } });
    expect(error).toMatchObject({ code: 'TEMPLATE_REF_UNKNOWN', kind: 'invalid', details: { path: '$.Resources.thing' } });
    expect(TemplateErrors.specs.TEMPLATE_TOO_LARGE.kind).toBe('too_large');
  });
});
