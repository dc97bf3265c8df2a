import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { fileErrorReason } from './gatehouse-error.ts';

const readError = (file: string): unknown => {
  try {
    readFileSync(file);
  } catch (error) {
    return error;
  }
  throw new Error(`${file} was readable`);
};

describe('fileErrorReason', () => {
  it('says in words why a real read failed, and falls back to the message', () => {
    expect(fileErrorReason(readError('/no/such/file/here.pem'))).toBe('no such file');
    expect(fileErrorReason(readError(tmpdir()))).toBe('it is a directory');
    expect(fileErrorReason(new Error('disk on fire'))).toBe('disk on fire');
    expect(fileErrorReason('odd')).toBe('odd');
  });
});
