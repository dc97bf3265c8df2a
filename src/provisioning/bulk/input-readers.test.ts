import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readDeviceRecords, readRawRecords, splitCsvRecord } from './input-readers.ts';
import type { DeviceRecord } from './input-readers.ts';

/** A stream that delivers `text` in chunks of `size` bytes, to cut records at every possible place. */
function chunked(text: string, size: number): Readable {
  const buf = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

async function all<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

describe('bulk input readers', () => {
  it('splits JSON lines at any chunk boundary, keeps physical line numbers and skips blank lines', async () => {
    const text = '{"ThingName":"a"}\n\n{"ThingName":"b","n":3}\r\n{"ThingName":"é"}';
    for (const size of [1, 2, 3, 7, 1000]) {
      const recs = await all(readDeviceRecords(chunked(text, size), 'jsonl'));
      expect(recs).toEqual([
        { kind: 'record', lineNo: 1, fields: { ThingName: 'a' } },
        { kind: 'record', lineNo: 3, fields: { ThingName: 'b', n: '3' } },
        { kind: 'record', lineNo: 4, fields: { ThingName: 'é' } },
      ]);
    }
  });

  it('reports malformed and oversized lines alone and goes on', async () => {
    const big = `{"ThingName":"${'x'.repeat(70 * 1024)}"}`;
    const text = ['not json', '[1,2]', '{"a":{"nested":true}}', big, '{"ThingName":"ok"}'].join('\n');
    const recs: DeviceRecord[] = await all(readDeviceRecords(chunked(text, 4096), 'jsonl'));
    expect(recs.map((r) => (r.kind === 'error' ? `${r.lineNo}:${r.code}` : `${r.lineNo}:ok`))).toEqual([
      '1:PROVISIONING_BULK_LINE_MALFORMED',
      '2:PROVISIONING_BULK_LINE_MALFORMED',
      '3:PROVISIONING_BULK_LINE_MALFORMED',
      '4:PROVISIONING_BULK_LINE_TOO_LARGE',
      '5:ok',
    ]);
  });

  it('never buffers an oversized line whole', async () => {
    const raw = await all(readRawRecords(chunked(`${'y'.repeat(1024 * 1024)}\nz\n`, 65536), { format: 'jsonl', maxRecordBytes: 1024 }));
    expect(raw).toEqual([{ kind: 'oversized', lineNo: 1, bytes: 1024 * 1024 }, { kind: 'text', lineNo: 2, text: 'z' }]);
  });

  it('reads CSV with a header, quoted fields holding commas, quotes and line breaks', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const text = `MAC,cn,cert\r\nAA11,"x, ""y""","${pem}"\r\nBB22,z,\r\nCC33,only-two\n`;
    for (const size of [1, 5, 4096]) {
      const recs = await all(readDeviceRecords(chunked(text, size), 'csv'));
      expect(recs[0]).toEqual({ kind: 'record', lineNo: 1, fields: { MAC: 'AA11', cn: 'x, "y"', cert: pem } });
      expect(recs[1]).toEqual({ kind: 'record', lineNo: 2, fields: { MAC: 'BB22', cn: 'z' } });
      expect(recs[2]).toMatchObject({ kind: 'error', lineNo: 3, code: 'PROVISIONING_BULK_LINE_MALFORMED' });
    }
    expect(splitCsvRecord('a,"b,c",')).toEqual(['a', 'b,c', '']);
  });
});
