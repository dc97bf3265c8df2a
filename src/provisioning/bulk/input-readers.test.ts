import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { countRecords, readDeviceFile, readDeviceRecords, readRawRecords, splitCsvRecord } from './input-readers.ts';
import type { BulkInputFormat } from './input-readers.ts';
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
    expect(splitCsvRecord('a,"b,c",')).toEqual({ kind: 'fields', fields: ['a', 'b,c', ''] });
  });

  /** Each record as `lineNo:ThingName` or `lineNo:CODE`, checked to be the same at every chunk size. */
  async function summary(text: string, format: BulkInputFormat = 'csv'): Promise<string[]> {
    const runs: string[][] = [];
    for (const size of [1, 2, 3, 7, 4096]) {
      const recs = await all(readDeviceRecords(chunked(text, size), format));
      runs.push(recs.map((r) => (r.kind === 'error' ? `${r.lineNo}:${r.code}` : `${r.lineNo}:${Object.values(r.fields).join('|')}`)));
    }
    for (const run of runs) expect(run).toEqual(runs[0]);
    return runs[0] ?? [];
  }

  it('CSV: a quote inside an unquoted field is an ordinary character, the following lines stay records', async () => {
    // it flipped the quote state, and every following line was merged into one record
    expect(await summary('ThingName,Serial\nmq1,12"panel\nmq2,B2\nmq3,B3\nmq4,B4\n')).toEqual(['1:mq1|12"panel', '2:mq2|B2', '3:mq3|B3', '4:mq4|B4']);
    expect(splitCsvRecord('a,b"c""d,"e""f"')).toEqual({ kind: 'fields', fields: ['a', 'b"c""d', 'e"f'] });
  });

  it('CSV: a quoted field not closed on its line fails that line alone, the following lines are read', async () => {
    // ... at the end of the input
    expect(await summary('ThingName,Serial\ncq1,A1\ncq2,"unterminated\ncq3,C3\ncq4,C4\n')).toEqual([
      '1:cq1|A1',
      '2:PROVISIONING_BULK_LINE_MALFORMED',
      '3:cq3|C3',
      '4:cq4|C4',
    ]);
    // ... at the next quote, which is followed by text rather than a comma or the line end
    expect(await summary('ThingName,Serial\r\ncq2,"unterminated\r\ncq3,C3\r\ncq4,"C4"\r\ncq5,C5')).toEqual([
      '1:PROVISIONING_BULK_LINE_MALFORMED',
      '2:cq3|C3',
      '3:cq4|C4',
      '4:cq5|C5',
    ]);
    // ... and on one line: text after a closing quote, a quote never closed on the last line
    expect(await summary('ThingName,Serial\nq1,"ab"cd\nq2,B2\nq3,"open')).toEqual(['1:PROVISIONING_BULK_LINE_MALFORMED', '2:q2|B2', '3:PROVISIONING_BULK_LINE_MALFORMED']);
    const [error] = await all(readDeviceRecords(chunked('ThingName,Serial\ncq2,"unterminated\ncq3,C3\n', 5), 'csv'));
    expect(error).toMatchObject({ kind: 'error', lineNo: 1, message: expect.stringContaining('record 1: quoted field 2 is not closed on its line') as unknown });
    expect(splitCsvRecord('a,"b')).toEqual({ kind: 'malformed', reason: 'quoted field 2 is not closed on its line' });
    expect(splitCsvRecord('"a"b,c')).toEqual({ kind: 'malformed', reason: 'text follows the closing quote of field 1' });
  });

  it('CSV: a quoted field spanning lines is one record up to the size limit, past it its first line fails alone', async () => {
    const text = 'a,b\nk1,"l1\nl2"\nk2,"m1\nm2\nm3\nm4"\nk3,x\n';
    const raw = async (max: number): Promise<string[]> => {
      const runs: string[][] = [];
      for (const size of [1, 3, 4096]) runs.push((await all(readRawRecords(chunked(text, size), { format: 'csv', maxRecordBytes: max }))).map((r) => (r.kind === 'text' ? `${r.lineNo}:${r.text}` : `${r.lineNo}:oversized`)));
      for (const run of runs) expect(run).toEqual(runs[0]);
      return runs[0] ?? [];
    };
    expect(await raw(1024)).toEqual(['0:a,b', '1:k1,"l1\nl2"', '2:k2,"m1\nm2\nm3\nm4"', '3:k3,x']);
    expect(await raw(12)).toEqual(['0:a,b', '1:k1,"l1\nl2"', '2:k2,"m1', '3:m2', '4:m3', '5:m4"', '6:k3,x']);
    // a single line past the limit is oversized and ends at its line break, whatever its quotes
    expect(await raw(5)).toEqual(['0:a,b', '1:oversized', '2:l2"', '3:oversized', '4:m2', '5:m3', '6:m4"', '7:k3,x']);
  });

  it('skips blank lines before the CSV header and anywhere else, and countRecords agrees with the reader', async () => {
    expect(await summary('\nThingName\nlb1\nlb2\n')).toEqual(['2:lb1', '3:lb2']);
    expect(await summary('\r\n  \n\nThingName,Serial\n\na,1\n\n\nb,2\n\n')).toEqual(['5:a|1', '8:b|2']);
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-readers-'));
    try {
      const inputs: [string, BulkInputFormat, number][] = [
        ['\nThingName\nlb1\nlb2\n', 'csv', 2], // the header was counted as a device: total 3
        ['\n\n\uFEFFThingName\nx\n', 'csv', 1],
        ['\uFEFFThingName\n\nlb1\n\n', 'csv', 1],
        ['ThingName,Serial\nmq1,12"panel\nmq2,B2\nmq3,B3\nmq4,B4\n', 'csv', 4], // total 1
        ['ThingName,Serial\ncq1,A1\ncq2,"unterminated\ncq3,C3\ncq4,C4\n', 'csv', 4],
        ['\n{"ThingName":"a"}\n\n{"ThingName":"b"}\n', 'jsonl', 2],
      ];
      for (const [i, [text, format, expected]] of inputs.entries()) {
        const file = path.join(dir, `${i}.input`);
        writeFileSync(file, text);
        const { total } = await countRecords(file, format);
        expect(total, JSON.stringify(text)).toBe(expected);
        expect(await all(readDeviceFile(file, format)), JSON.stringify(text)).toHaveLength(expected);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('strips one leading UTF-8 byte order mark from JSON lines and CSV', async () => {
    // line 1 was "not valid JSON", and the first CSV column was named "\uFEFFThingName"
    expect(await summary('\uFEFF{"ThingName":"a"}\n{"ThingName":"b"}\n', 'jsonl')).toEqual(['1:a', '2:b']);
    expect(await summary('\uFEFFThingName,Serial\na,1\n')).toEqual(['1:a|1']);
    const [rec] = await all(readDeviceRecords(chunked('\uFEFFThingName\na\n', 1), 'csv'));
    expect(rec).toEqual({ kind: 'record', lineNo: 1, fields: { ThingName: 'a' } });
    // only one, and only at the start
    expect(await summary('\uFEFF\uFEFF{"ThingName":"a"}\n', 'jsonl')).toEqual(['1:PROVISIONING_BULK_LINE_MALFORMED']);
    expect(await summary('{}', 'jsonl')).toEqual(['1:']);
    expect(await summary('\uFEFF', 'jsonl')).toEqual([]);
  });
});
