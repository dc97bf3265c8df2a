import type { ParsedCertificate } from '../../pki/index.ts';
import type { RegistryContext } from '../../registry/index.ts';
import type { ProvisioningTemplate, ResourcePlan } from '../../templates/index.ts';
import type { ReadyIssuer } from '../certificate-authority-service.ts';
import type { InsertStatements } from './insert-rows.ts';

/** A line's certificate, verified or issued before the transaction. */
export interface CertificateMaterial {
  readonly certificateId: string;
  readonly pem: string;
  readonly caCertificateId: string | null;
  readonly serialNumber: string;
  readonly subjectCommonName: string | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly createdBy: string;
  /** Already registered in the tenant and attached to this line's thing (re-run of a CSR or generated line). */
  readonly reused: boolean;
  /** Returned in the results: the certificate Gatehouse signed or generated. */
  readonly issued: boolean;
  readonly privateKeyPem: string | null;
}

/** A line after the checks that need no transaction. */
export type PreparedLine =
  | { readonly kind: 'ok'; readonly lineNo: number; readonly thingName: string | null; readonly plan: ResourcePlan; readonly cert: CertificateMaterial | undefined }
  | { readonly kind: 'fail'; readonly lineNo: number; readonly thingName: string | null; readonly code: string; readonly message: string };

/** What a line's result row records. */
export interface LineOutcome {
  readonly lineNo: number;
  readonly outcome: 'created' | 'present' | 'failed';
  readonly thingName: string | null;
  readonly certificateId: string | null;
  readonly certificatePem: string | null;
  readonly privateKeyPem: string | null;
  readonly code: string | null;
  readonly message: string | null;
}

/** What every line of a running task shares. */
export interface TaskContext {
  readonly ctx: RegistryContext;
  readonly taskId: string;
  readonly template: ProvisioningTemplate;
  readonly declared: ReadonlySet<string>;
  readonly hasCertificate: boolean;
  readonly anchors: readonly ParsedCertificate[];
  /** ACTIVE CAs by subject Name DER (hex), for the fast path. */
  readonly anchorsByIssuer: ReadonlyMap<string, readonly ParsedCertificate[]>;
  readonly revokedCaIds: ReadonlySet<string>;
  issuer: Promise<ReadyIssuer> | undefined;
  /** Multi-row INSERTs compiled once for the task's store. */
  readonly inserts: InsertStatements;
  /**
   * The highest line that had a result when this run started (0 for a new task). Only batches at or below it can
   * hold lines done by an earlier run, so only they query for them.
   */
  readonly lastResultLineAtStart: number;
}

