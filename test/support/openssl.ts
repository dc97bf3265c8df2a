import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A scratch directory with helpers that drive Debian's `openssl` (the independent reference for every check). */
export class OpensslWorkspace {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'gh-ossl-'));

  /** Path of a file in the workspace. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Writes a file and returns its path. */
  write(name: string, content: string): string {
    writeFileSync(this.file(name), content);
    return this.file(name);
  }

  /** Reads a file. */
  read(name: string): string {
    return readFileSync(this.file(name), 'utf8');
  }

  /** Runs openssl; returns stdout (throws with stderr on failure). */
  run(args: string[], input?: string): string {
    return execFileSync('openssl', args, { cwd: this.dir, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) });
  }

  /** Runs openssl and reports success instead of throwing. */
  ok(args: string[]): { ok: boolean; out: string } {
    try {
      return { ok: true, out: this.run(args) };
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  /** An EC P-256 key (or RSA with `rsa:<bits>`). */
  key(name: string, kind = 'ec'): string {
    if (kind.startsWith('rsa:')) this.run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${kind.slice(4)}`, '-out', `${name}.key`]);
    else this.run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
    return this.file(`${name}.key`);
  }

  /** A CSR for key `name` with subject `subj`. */
  csr(name: string, subj: string): string {
    this.run(['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
    return this.read(`${name}.csr`);
  }

  /** A self-signed CA certificate (with `-days` validity, CA:true unless `ca` is false). */
  selfSignedCa(name: string, subj: string, options: { days?: number; ca?: boolean; startDate?: string } = {}): string {
    this.key(name);
    const ext = options.ca === false ? 'basicConstraints=critical,CA:FALSE' : 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash';
    this.write(`${name}.ext`, `${ext}\n`);
    this.run(['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
    this.run(['x509', '-req', '-in', `${name}.csr`, '-signkey', `${name}.key`, '-days', String(options.days ?? 365), '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
    return this.read(`${name}.pem`);
  }

  /** Signs CSR `name` with CA `ca` (CA:false leaf unless `extfile` content is given). */
  sign(name: string, ca: string, options: { days?: number; ext?: string } = {}): string {
    this.write(`${name}.leaf.ext`, `${options.ext ?? 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'}\n`);
    this.run(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', String(options.days ?? 30), '-extfile', `${name}.leaf.ext`, '-out', `${name}.pem`]);
    return this.read(`${name}.pem`);
  }
}
