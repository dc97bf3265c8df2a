import { prepare } from '../store/index.ts';
import type { Executor } from '../store/index.ts';
import { nowIso } from './context.ts';

const settingByKey = prepare('system setting', (db, p: { key: string }) => db.selectFrom('system_settings').select('value').where('key', '=', p.key));

/**
 * SQL persistence of encrypted CA key blobs. It matches the pki's `KeyBlobRepository` interface structurally
 * (the pki owns that interface); the blobs are ciphertext, never clear keys.
 */
export function createKeyBlobRepository(db: Executor): {
  getKeyBlob(ref: string): Promise<Uint8Array | undefined>;
  putKeyBlob(ref: string, blob: Uint8Array): Promise<void>;
  deleteKeyBlob(ref: string): Promise<void>;
} {
  return {
    async getKeyBlob(ref) {
      const r = await db.selectFrom('key_blobs').select('blob').where('key_ref', '=', ref).executeTakeFirst();
      return r === undefined ? undefined : Buffer.from(r.blob, 'base64');
    },
    async putKeyBlob(ref, blob) {
      await db.insertInto('key_blobs').values({ key_ref: ref, blob: Buffer.from(blob).toString('base64'), created_at: nowIso() }).execute();
    },
    async deleteKeyBlob(ref) {
      await db.deleteFrom('key_blobs').where('key_ref', '=', ref).execute();
    },
  };
}

/** Reads a system setting (installation-wide values such as the bootstrap CA ids). */
export async function getSystemSetting(db: Executor, key: string): Promise<string | undefined> {
  const r = await settingByKey.first(db, { key });
  return r?.value;
}

/** Writes a system setting. */
export async function setSystemSetting(db: Executor, key: string, value: string): Promise<void> {
  const r = await db.updateTable('system_settings').set({ value }).where('key', '=', key).executeTakeFirst();
  if (r.numUpdatedRows === 0n) await db.insertInto('system_settings').values({ key, value }).execute();
}

/**
 * Sets a system setting only if it has no value yet (insert, or nothing on conflict), in one statement, so that of
 * several processes racing to set it exactly one wins; returns the value the setting holds afterwards.
 */
export async function claimSystemSetting(db: Executor, key: string, value: string): Promise<string> {
  await db.insertInto('system_settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
  const stored = await getSystemSetting(db, key);
  if (stored === undefined) throw new Error(`system setting ${key} vanished while it was being set`);
  return stored;
}
