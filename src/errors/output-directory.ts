import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { fileErrorReason } from './gatehouse-error.ts';

/**
 * Why `dir` cannot receive new files, in words for an error message, or undefined when it can: the directory itself or,
 * when it does not exist yet, its nearest existing parent must be a writable directory (`mustExist`: the directory
 * itself, for a file about to be written into it without creating directories). Creates nothing. The CLI and
 * the device SDK ask before they make key material that exists nowhere else (a claim, a device identity): a key
 * issued and then not saved would be lost.
 */
export function unwritableDirectoryReason(dir: string, options: { readonly mustExist?: boolean } = {}): string | undefined {
  for (let p = path.resolve(dir); ; ) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(p).isDirectory();
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      const parent = path.dirname(p);
      if (options.mustExist === true && code === 'ENOENT') return `the directory ${p} does not exist`;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== p) {
        p = parent;
        continue;
      }
      return fileErrorReason(cause);
    }
    if (!isDirectory) return `${p} is not a directory`;
    try {
      accessSync(p, constants.W_OK);
    } catch (cause) {
      return `${p} is not writable (${fileErrorReason(cause)})`;
    }
    return undefined;
  }
}
