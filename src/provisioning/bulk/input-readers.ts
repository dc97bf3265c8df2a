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
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Where a CSV scanner stands (RFC 4180): at the start of a field, inside an unquoted field (where a `"` is a
 * literal character), inside a quoted field, just after a quote inside a quoted field (a closing quote, or the first
 * half of a doubled one), or past a quoted field closed by something else than a comma or the line end (malformed).
 */
type CsvState = 0 | 1 | 2 | 3 | 4;
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3;
const MALFORMED = 4;

/** The state after one character (`c`, a UTF-16 code unit or a byte: the characters that matter are ASCII). */
function stepCsv(state: CsvState, c: number): CsvState {
  switch (state) {
    case FIELD_START:
      return c === QUOTE ? QUOTED : c === COMMA ? FIELD_START : UNQUOTED;
    case UNQUOTED:
      return c === COMMA ? FIELD_START : UNQUOTED;
    case QUOTED:
      return c === QUOTE ? QUOTE_IN_QUOTED : QUOTED;
    case QUOTE_IN_QUOTED:
      return c === QUOTE ? QUOTED : c === COMMA ? FIELD_START : c === CR ? QUOTE_IN_QUOTED : MALFORMED;
    case MALFORMED:
      return MALFORMED;
  }
}

/**
 * Splits a byte stream into records without ever holding more than one record (plus one chunk) in memory, and
 * strips one leading UTF-8 byte order mark. JSON lines end at LF. CSV records end at an LF outside a quoted field
 * (RFC 4180: a quoted field may hold line breaks, as the PEM column of a bulk CSV or of the Espressif manifest
 * does); a `"` inside an unquoted field is an ordinary character. A record whose quoted field spans lines but is
 * never properly closed (end of input, text after the closing quote, or past the size limit) does not swallow the
 * lines that follow: its first line becomes a record of its own (which {@link splitCsvRecord} reports as
 * malformed) and the rest is read again from there. A line longer than the limit is oversized and ends at its line
 * break, whatever its quotes. Blank records are skipped but counted, so `lineNo` is stable:
 * for JSON lines it is the physical line number, for CSV the record number (counting from 0; the first non-blank
 * record is the header).
 */
export async function* readRawRecords(input: Readable, options: ReadRawRecordsOptions): AsyncGenerator<RawRecord> {
  const max = options.maxRecordBytes ?? MAX_BULK_LINE_BYTES;
  const csv = options.format === 'csv';
  let parts: Buffer[] = [];
  let size = 0;
  let oversized = false;
  let lineNo = csv ? -1 : 0;
  // CSV only: the scanner state, and the offset in the record of its first line break (inside quotes), or -1.
  let state = FIELD_START as CsvState; // (a plain annotation would be narrowed to FIELD_START: closures change it)
  let crossedAt = -1;
  const finish = (): RawRecord | undefined => {
    lineNo += 1;
    const bytes = size;
    const text = oversized ? '' : Buffer.concat(parts, size).toString('utf8').replace(/\r$/, '');
    const wasOversized = oversized;
    parts = [];
    size = 0;
    oversized = false;
    state = FIELD_START;
    crossedAt = -1;
    if (wasOversized) return { kind: 'oversized', lineNo, bytes };
    if (text.trim() === '') return undefined;
    return { kind: 'text', lineNo, text };
  };
  const append = (chunk: Buffer, from: number, to: number): void => {
    if (to <= from) return;
    size += to - from;
    if (oversized) return;
    // A record spanning lines is kept whole past the limit, to be split at its first line break (see below).
    if (size > max && crossedAt === -1) {
      oversized = true;
      parts = [];
      return;
    }
    parts.push(chunk.subarray(from, to));
  };
  /** The record's first line as a record of its own; returns the bytes after it, to be read again. */
  const splitFirstLine = (): { first: RawRecord | undefined; rest: Buffer } => {
    const whole = Buffer.concat(parts, size);
    const rest = whole.subarray(crossedAt + 1);
    parts = [whole.subarray(0, crossedAt)];
    size = crossedAt;
    return { first: finish(), rest };
  };
  let head: Buffer | undefined = Buffer.alloc(0);
  const chunks = async function* (): AsyncGenerator<Buffer> {
    for await (const value of input) {
      let chunk = typeof value === 'string' ? Buffer.from(value) : (value as Buffer);
      if (head !== undefined) {
        // Strip one leading byte order mark, even when the first chunks are shorter than it.
        head = Buffer.concat([head, chunk]);
        if (head.length < BOM.length) continue;
        chunk = head.subarray(0, BOM.length).equals(BOM) ? head.subarray(BOM.length) : head;
        head = undefined;
      }
      yield chunk;
    }
    if (head !== undefined && head.length > 0) yield head;
  };
  if (!csv) {
    for await (const chunk of chunks()) {
      let start = 0;
      // JSON lines: native search for line ends.
      for (let i = chunk.indexOf(LF, start); i !== -1; i = chunk.indexOf(LF, start)) {
        append(chunk, start, i);
        const rec = finish();
        if (rec !== undefined) yield rec;
        start = i + 1;
      }
      if (start < chunk.length) append(chunk, start, chunk.length);
    }
    if (size > 0 || oversized) {
      const rec = finish();
      if (rec !== undefined) yield rec;
    }
    return;
  }
  // CSV: bytes still to scan, first to last (a record split at its first line break puts its rest in front).
  const pending: Buffer[] = [];
  const scan = function* (): Generator<RawRecord> {
    for (let chunk = pending.shift(); chunk !== undefined; chunk = pending.shift()) {
      let start = 0;
      let i = 0;
      for (; i < chunk.length; i += 1) {
        const b = chunk[i] ?? 0;
        if (oversized) {
          // An oversized line ends at its line break, whatever its quotes.
          if (b !== LF) continue;
        } else if (b !== LF || state === QUOTED) {
          if (b === LF) {
            // A line break inside a quoted field: the record goes on, unless this first line is already too long.
            if (crossedAt === -1 && size + (i - start) > max) {
              oversized = true;
              parts = [];
            } else {
              if (crossedAt === -1) crossedAt = size + (i - start);
              continue;
            }
          } else {
            state = stepCsv(state, b);
            if (!(state === MALFORMED && crossedAt !== -1)) continue;
          }
        }
        append(chunk, start, i);
        start = i + 1;
        if (crossedAt !== -1 && (state === MALFORMED || size > max)) {
          // The quoted field that spans lines is not closed properly: its first line fails alone.
          const { first, rest } = splitFirstLine();
          pending.unshift(rest, chunk.subarray(i));
          if (first !== undefined) yield first;
          break;
        }
        const rec = finish();
        if (rec !== undefined) yield rec;
      }
      if (i === chunk.length) {
        append(chunk, start, chunk.length);
        if (crossedAt !== -1 && size > max) {
          const { first, rest } = splitFirstLine();
          pending.unshift(rest);
          if (first !== undefined) yield first;
        }
      }
    }
  };
  for await (const chunk of chunks()) {
    pending.push(chunk);
    yield* scan();
  }
  while (size > 0 || oversized) {
    if (crossedAt !== -1 && state === QUOTED) {
      // The input ends inside a quoted field that spans lines.
      const { first, rest } = splitFirstLine();
      if (first !== undefined) yield first;
      pending.push(rest);
      yield* scan();
      continue;
    }
    const rec = finish();
    if (rec !== undefined) yield rec;
  }
}

/** The fields of one CSV record, or why it is not one. */
export type CsvSplit = { readonly kind: 'fields'; readonly fields: string[] } | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Splits one CSV record (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes; a `"` inside an
 * unquoted field is kept as is). A quoted field that is not closed, or is followed by anything but a comma or the
 * record end, makes the record malformed.
 */
export function splitCsvRecord(text: string): CsvSplit {
  const fields: string[] = [];
  let field = '';
  let state: CsvState = FIELD_START;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    const before = state;
    state = stepCsv(state, c);
    if (state === MALFORMED) return { kind: 'malformed', reason: `text follows the closing quote of field ${fields.length + 1}` };
    if (state === FIELD_START) {
      fields.push(field);
      field = '';
    } else if (state === UNQUOTED) {
      if (c !== CR) field += text[i];
    } else if (state === QUOTED) {
      // The opening quote and the first quote of a doubled pair are not part of the value.
      if (before === QUOTED || (before === QUOTE_IN_QUOTED && c === QUOTE)) field += text[i];
    }
  }
  if (state === QUOTED) return { kind: 'malformed', reason: `quoted field ${fields.length + 1} is not closed on its line` };
  fields.push(field);
  return { kind: 'fields', fields };
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

/** Parses a stream into device records (JSON lines, or CSV whose first non-blank record is the header). */
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
    const split = splitCsvRecord(raw.text);
    if (header === undefined) {
      if (split.kind === 'malformed') throw ProvisioningErrors.error('PROVISIONING_BULK_LINE_MALFORMED', `the CSV header is malformed: ${split.reason}`);
      header = split.fields.map((h) => h.trim());
      if (header.some((h) => h === '') || new Set(header).size !== header.length) throw ProvisioningErrors.error('PROVISIONING_BULK_LINE_MALFORMED', 'the CSV header has an empty or repeated column name');
      continue;
    }
    if (split.kind === 'malformed') {
      yield malformed(raw.lineNo, `record ${raw.lineNo}: ${split.reason} (a quoted field ends with " then a comma or the line end)`);
      continue;
    }
    const values = split.fields;
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
  // The CSV header is the first record that is not blank (as in readDeviceRecords), not always record 0.
  let headerPending = format === 'csv';
  for await (const raw of readRawRecords(createReadStream(filePath, { highWaterMark: 256 * 1024 }), { format })) {
    if (headerPending) {
      headerPending = false;
      continue;
    }
    total += 1;
    lastLineNo = raw.lineNo;
  }
  return { total, lastLineNo };
}
