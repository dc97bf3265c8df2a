import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { ProvisioningErrors } from '../errors.ts';

/** Input formats of a bulk task (issue 7 §1): JSON lines, or CSV with a header. */
export type BulkInputFormat = 'jsonl' | 'csv';

/** Longest accepted input record (issue 7 "Bad input": an oversized line fails alone). */
export const MAX_BULK_LINE_BYTES = 64 * 1024;

/** One raw record of an input: its text, or the fact that it was longer than the limit. */
export type RawRecord =
  | { readonly kind: 'text'; readonly lineNo: number; readonly text: string }
  | { readonly kind: 'oversized'; readonly lineNo: number; readonly bytes: number };

/** One parsed device record: template parameters (strings), or the per-line error to report. */
export type DeviceRecord =
  | { readonly kind: 'record'; readonly lineNo: number; readonly fields: Readonly<Record<string, string>> }
  | { readonly kind: 'error'; readonly lineNo: number; readonly code: 'PROVISIONING_BULK_LINE_MALFORMED' | 'PROVISIONING_BULK_LINE_TOO_LARGE'; readonly message: string };

/** Options of {@link readRawRecords}. */
export interface ReadRawRecordsOptions {
  readonly format: BulkInputFormat;
  readonly maxRecordBytes?: number;
}

const LF = 0x0a;
const QUOTE = 0x22;

/**
 * Splits a byte stream into records without ever holding more than one record (plus one chunk) in memory. JSON
 * lines end at LF; CSV records end at an LF outside double quotes (RFC 4180 fields may hold line breaks, as the
 * Espressif manifest's PEM column does). Blank records are skipped but counted, so `lineNo` is stable: for JSON
 * lines it is the physical line number, for CSV the record number (the header is record 0).
 */
export async function* readRawRecords(input: Readable, options: ReadRawRecordsOptions): AsyncGenerator<RawRecord> {
  const max = options.maxRecordBytes ?? MAX_BULK_LINE_BYTES;
  const csv = options.format === 'csv';
  let parts: Buffer[] = [];
  let size = 0;
  let oversized = false;
  let inQuotes = false;
  let lineNo = csv ? -1 : 0;
  const finish = (): RawRecord | undefined => {
    lineNo += 1;
    const bytes = size;
    const text = oversized ? '' : Buffer.concat(parts, size).toString('utf8').replace(/\r$/, '');
    const wasOversized = oversized;
    parts = [];
    size = 0;
    oversized = false;
    inQuotes = false;
    if (wasOversized) return { kind: 'oversized', lineNo, bytes };
    if (text.trim() === '') return undefined;
    return { kind: 'text', lineNo, text };
  };
  const append = (chunk: Buffer, from: number, to: number): void => {
    if (to <= from) return;
    size += to - from;
    if (oversized) return;
    if (size > max) {
      oversized = true;
      parts = [];
      return;
    }
    parts.push(chunk.subarray(from, to));
  };
  for await (const value of input) {
    const chunk = typeof value === 'string' ? Buffer.from(value) : (value as Buffer);
    let start = 0;
    if (!csv) {
      // JSON lines: native search for line ends.
      for (let i = chunk.indexOf(LF, start); i !== -1; i = chunk.indexOf(LF, start)) {
        append(chunk, start, i);
        const rec = finish();
        if (rec !== undefined) yield rec;
        start = i + 1;
      }
    } else {
      for (let i = 0; i < chunk.length; i += 1) {
        const b = chunk[i];
        if (b === QUOTE) inQuotes = !inQuotes;
        else if (b === LF && !inQuotes) {
          append(chunk, start, i);
          const rec = finish();
          if (rec !== undefined) yield rec;
          start = i + 1;
        }
      }
    }
    if (start < chunk.length) append(chunk, start, chunk.length);
  }
  if (size > 0 || oversized) {
    const rec = finish();
    if (rec !== undefined) yield rec;
  }
}

/** Splits one CSV record (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes). */
export function splitCsvRecord(text: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch !== '\r') field += ch;
  }
  fields.push(field);
  return fields;
}

function malformed(lineNo: number, message: string): DeviceRecord {
  return { kind: 'error', lineNo, code: 'PROVISIONING_BULK_LINE_MALFORMED', message };
}

/** Parses one JSON line into string fields (numbers and booleans are accepted and turned into text). */
export function parseJsonLine(lineNo: number, text: string): DeviceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return malformed(lineNo, `line ${lineNo} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return malformed(lineNo, `line ${lineNo} is not a JSON object`);
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string') fields[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') fields[k] = String(v);
    else if (k === '$refused' && typeof v === 'object' && v !== null) fields[k] = JSON.stringify(v);
    else return malformed(lineNo, `line ${lineNo}: "${k.slice(0, 64)}" must be a string`);
  }
  return { kind: 'record', lineNo, fields };
}

/** Parses a stream into device records (JSON lines, or CSV whose first record is the header). */
export async function* readDeviceRecords(input: Readable, format: BulkInputFormat, maxRecordBytes = MAX_BULK_LINE_BYTES): AsyncGenerator<DeviceRecord> {
  let header: string[] | undefined;
  for await (const raw of readRawRecords(input, { format, maxRecordBytes })) {
    if (raw.kind === 'oversized') {
      if (format === 'csv' && header === undefined) throw ProvisioningErrors.error('PROVISIONING_BULK_LINE_TOO_LARGE', 'the CSV header is longer than 64 KiB');
      yield { kind: 'error', lineNo: raw.lineNo, code: 'PROVISIONING_BULK_LINE_TOO_LARGE', message: `line ${raw.lineNo} is ${raw.bytes} bytes, more than ${maxRecordBytes}` };
      continue;
    }
    if (format === 'jsonl') {
      yield parseJsonLine(raw.lineNo, raw.text);
      continue;
    }
    if (header === undefined) {
      header = splitCsvRecord(raw.text).map((h) => h.trim());
      if (header.some((h) => h === '') || new Set(header).size !== header.length) throw ProvisioningErrors.error('PROVISIONING_BULK_LINE_MALFORMED', 'the CSV header has an empty or repeated column name');
      continue;
    }
    const values = splitCsvRecord(raw.text);
    if (values.length !== header.length) {
      yield malformed(raw.lineNo, `record ${raw.lineNo} has ${values.length} fields, the header has ${header.length}`);
      continue;
    }
    const fields: Record<string, string> = {};
    header.forEach((h, i) => {
      const v = values[i] ?? '';
      if (v !== '') fields[h] = v;
    });
    yield { kind: 'record', lineNo: raw.lineNo, fields };
  }
}

/** Reads device records from a file. */
export function readDeviceFile(filePath: string, format: BulkInputFormat): AsyncGenerator<DeviceRecord> {
  return readDeviceRecords(createReadStream(filePath, { highWaterMark: 256 * 1024 }), format);
}

/** Counts the records of an input file (the task's `total`), streaming. */
export async function countRecords(filePath: string, format: BulkInputFormat): Promise<{ total: number; lastLineNo: number }> {
  let total = 0;
  let lastLineNo = 0;
  for await (const raw of readRawRecords(createReadStream(filePath, { highWaterMark: 256 * 1024 }), { format })) {
    if (format === 'csv' && raw.lineNo === 0) continue;
    total += 1;
    lastLineNo = raw.lineNo;
  }
  return { total, lastLineNo };
}
