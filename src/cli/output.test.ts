import { describe, expect, it } from 'vitest';
import { countOption, parseKeyValues, wholeNumberOption } from './output.ts';

describe('numeric options', () => {
  it('takes whole numbers from the minimum, and "none" only where allowed; anything else is CLI_USAGE_INVALID', () => {
    expect(wholeNumberOption('--max-devices', '5000', true)).toBe(5000);
    expect(wholeNumberOption('--max-devices', 'none', true)).toBeNull();
    expect(countOption('--path-length', '0', 0)).toBe(0);
    for (const bad of ['abc', '', '-3', '1.5', '1e3', ' 7', '0', '0x10', '9999999999']) {
      expect(() => countOption('--count', bad)).toThrow(expect.objectContaining({ code: 'CLI_USAGE_INVALID' }));
    }
    expect(() => countOption('--count', 'none')).toThrow(/--count must be a whole number from 1, got "none"/);
  });
  it('parses key=value pairs and refuses a pair without =', () => {
    expect(parseKeyValues(['a=1', 'b=x=y'])).toEqual({ a: '1', b: 'x=y' });
    expect(() => parseKeyValues(['SerialNumber'])).toThrow(expect.objectContaining({ code: 'CLI_USAGE_INVALID' }));
    expect(() => parseKeyValues(['SerialNumber=1', 'SerialNumber=2'])).toThrow('SerialNumber is given twice ("SerialNumber=1" and "SerialNumber=2")');
    expect(parseKeyValues(['__proto__=x'])).toEqual(JSON.parse('{"__proto__":"x"}'));
  });
});
