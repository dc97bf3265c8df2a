/**
 * The one error base of Gatehouse (style.md rule 6).
 *
 * Every error a caller can see carries a stable string `code` (e.g. `PKI_CSR_SIGNATURE_INVALID`) and a
 * protocol-neutral `kind`. Edges map the kind to their own protocol: the API to an HTTP status inside an
 * RFC 9457 problem document, the gateway to CONNACK codes or `/rejected` payloads, DPS to its `errorCode`.
 * This module knows nothing of HTTP or MQTT.
 */

/** Protocol-neutral category of an error; each edge maps it to its own status. */
export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

/** What a domain declares about one of its codes: the kind and a one-line description for docs/errors.md. */
export interface ErrorSpec {
  readonly kind: ErrorKind;
  readonly description: string;
}

/** Options when raising an error. */
export interface GatehouseErrorOptions {
  readonly cause?: unknown;
  /** Safe, structured context for the caller (never secrets): e.g. a JSON path or a line number. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Base class of every error with a stable code. `message` must be safe to show to the caller. */
export class GatehouseError extends Error {
  override readonly name = 'GatehouseError';
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, kind: ErrorKind, message: string, options: GatehouseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.kind = kind;
    this.details = options.details;
  }
}

/** A domain's registry of error codes: the specs (for docs and tests) and a typed factory. */
export interface ErrorRegistry<C extends string> {
  readonly specs: Readonly<Record<C, ErrorSpec>>;
  /** Builds the error for `code`; `message` defaults to the spec's description. */
  error(code: C, message?: string, options?: GatehouseErrorOptions): GatehouseError;
}

/** Declares a domain's error codes in one place (style.md: one registry per domain). */
export function defineErrors<C extends string>(specs: Record<C, ErrorSpec>): ErrorRegistry<C> {
  const frozen = Object.freeze({ ...specs });
  return {
    specs: frozen,
    error(code, message, options) {
      const spec = frozen[code];
      return new GatehouseError(code, spec.kind, message ?? spec.description, options);
    },
  };
}

/** True when `value` is a GatehouseError (also across module copies). */
export function isGatehouseError(value: unknown): value is GatehouseError {
  return value instanceof GatehouseError;
}

/** Why a file could not be read, in words for an error message ("no such file", "permission denied", …). */
export function fileErrorReason(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return cause instanceof Error ? cause.message : String(cause);
}
