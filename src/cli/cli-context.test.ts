import { describe, expect, it } from 'vitest';
import { describeDetails } from './cli-context.ts';

describe('describeDetails', () => {
  it('puts the JSON path after the message, then the scalar fields the message does not already say', () => {
    expect(describeDetails({ path: '$.Resources.thing.Properties.ThingName.Ref', name: 'Missing' }, 'Ref must name a parameter')).toBe(' at $.Resources.thing.Properties.ThingName.Ref (name: Missing)');
    expect(describeDetails({ statusCode: 403, errorCode: 'AccessDenied', errorMessage: '[X] no' }, 'AccessDenied: [X] no')).toBe(' (statusCode: 403)');
    expect(describeDetails({ path: '$.a' }, 'bad value at $.a')).toBe('');
    expect(describeDetails({ nested: { a: 1 }, mixed: [1, { a: 1 }], empty: [] }, 'm')).toBe('');
    expect(describeDetails({ claimCertificateIds: ['ab12', 'cd34'], things: ['t1'] }, 'has 2 live claims; attached to t1')).toBe(' (claimCertificateIds: ab12, cd34)');
    expect(describeDetails(undefined, 'm')).toBe('');
    // a value is said only as a word of its own: the CONNACK code 5 is not said by the port 45071
    expect(describeDetails({ connackCode: 5 }, 'cannot connect to localhost:45071: Not authorized')).toBe(' (connackCode: 5)');
    expect(describeDetails({ connackCode: 5 }, 'refused with CONNACK 5')).toBe('');
    expect(describeDetails({ errorMessage: '[X]' }, 'failed:[X]!')).toBe('');
  });
});
