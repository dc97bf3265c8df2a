import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DIALECTS, TEST_PG_URL } from '../../test/support/dialects.ts';
import { openStore } from './open-store.ts';

describe('openStore', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'gh-open-store-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('says STORE_UNAVAILABLE when the database server cannot be reached (not a failed migration)', async () => {
    // a port nothing listens on: 1 is reserved (tcpmux) and closed here
    await expect(openStore({ databaseUrl: 'postgres://root@127.0.0.1:1/test', dataDir })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(/^cannot reach the database: .*ECONNREFUSED 127\.0\.0\.1:1/) });
  });

  it.runIf(DIALECTS.some((d) => d.name === 'postgres'))('says STORE_UNAVAILABLE for a database that does not exist on a reachable server', async () => {
    const url = new URL(TEST_PG_URL);
    url.pathname = '/gatehouse_no_such_database';
    await expect(openStore({ databaseUrl: url.toString(), dataDir })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: 'cannot reach the database: database "gatehouse_no_such_database" does not exist' });
  });
});
