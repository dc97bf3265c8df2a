import { describe, expect, it } from 'vitest';
import { PolicyErrors } from './index.ts';

describe('PolicyErrors', () => {
  it('declares stable POLICY_* codes, each with a kind and a description', () => {
    for (const [code, spec] of Object.entries(PolicyErrors.specs)) {
      expect(code).toMatch(/^POLICY_[A-Z]+(?:_[A-Z]+)*$/);
      expect(spec.description.length).toBeGreaterThan(10);
    }
    expect(PolicyErrors.specs.POLICY_DOCUMENT_TOO_LARGE.kind).toBe('too_large');
  });

  it('builds GatehouseErrors carrying the code and details', () => {
    const error = PolicyErrors.error('POLICY_ACTION_INVALID', 'bad', { details: { path: '$.Statement[0].Action' } });
    expect(error.code).toBe('POLICY_ACTION_INVALID');
    expect(error.kind).toBe('invalid');
    expect(error.details).toEqual({ path: '$.Statement[0].Action' });
  });
});
