import { describe, expect, it } from 'vitest';
import { TemplateCache } from './template-cache.ts';

const body = (name: string): string => JSON.stringify({ Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: name } } } });

describe('TemplateCache', () => {
  it('parses a template version once and tells versions, names and types apart', () => {
    const cache = new TemplateCache(2);
    const a = cache.parse(body('a'), { type: 'FLEET_PROVISIONING', name: 't' });
    expect(cache.parse(body('a'), { type: 'FLEET_PROVISIONING', name: 't' })).toBe(a);
    expect(cache.parse(body('b'), { type: 'FLEET_PROVISIONING', name: 't' })).not.toBe(a);
    expect(cache.parse(body('a'), { type: 'JITP', name: 't' }).type).toBe('JITP');
    expect(cache.size).toBe(2);
  });

  it('does not keep a body that fails to parse', () => {
    const cache = new TemplateCache();
    expect(() => cache.parse('{"Resources": 1}', { type: 'JITP', name: 't' })).toThrow(expect.objectContaining({ code: 'TEMPLATE_SECTION_INVALID' }) as Error);
    expect(cache.size).toBe(0);
  });
});
