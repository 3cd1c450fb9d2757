import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError, StatusObject } from '@grpc/grpc-js';

/**
 * Stable error codes. Each crosses service boundaries in the `aese-error-code` trailer, so a
 * caller can react to the exact cause (an OAuth error code, say) without parsing messages.
 */
export const ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_CLIENT',
  'INVALID_GRANT',
  'INVALID_SCOPE',
  'UNSUPPORTED_GRANT_TYPE',
  'INVALID_TOKEN',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'CALLER_NOT_ALLOWED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'NOT_IMPLEMENTED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The one table from error code to gRPC status. */
export const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, GrpcStatus>> = {
  INVALID_INPUT: GrpcStatus.INVALID_ARGUMENT,
  INVALID_CLIENT: GrpcStatus.UNAUTHENTICATED,
  INVALID_GRANT: GrpcStatus.PERMISSION_DENIED,
  INVALID_SCOPE: GrpcStatus.PERMISSION_DENIED,
  UNSUPPORTED_GRANT_TYPE: GrpcStatus.INVALID_ARGUMENT,
  INVALID_TOKEN: GrpcStatus.UNAUTHENTICATED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  CALLER_NOT_ALLOWED: GrpcStatus.PERMISSION_DENIED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  NOT_IMPLEMENTED: GrpcStatus.UNIMPLEMENTED,
  INTERNAL: GrpcStatus.INTERNAL,
};

/** Trailer that carries the stable {@link ErrorCode} next to the gRPC status. */
export const ERROR_CODE_METADATA_KEY = 'aese-error-code';

/** Message sent for errors that are not {@link AeseError}s: the cause is logged, never sent. */
export const GENERIC_INTERNAL_MESSAGE = 'internal error';

/** An error with a stable code. Its message is safe to send to the caller. */
export class AeseError extends Error {
  override readonly name: string = 'AeseError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True for a string that is one of the {@link ERROR_CODES}. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * Turns anything thrown by a handler into the status sent to the caller. Unknown errors become
 * INTERNAL with a generic message; their detail stays in the server's log.
 */
export function toGrpcStatus(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof AeseError) {
    metadata.set(ERROR_CODE_METADATA_KEY, err.code);
    return { code: GRPC_STATUS_BY_CODE[err.code], details: err.message, metadata };
  }
  metadata.set(ERROR_CODE_METADATA_KEY, 'INTERNAL');
  return { code: GrpcStatus.INTERNAL, details: GENERIC_INTERNAL_MESSAGE, metadata };
}

const CODE_BY_GRPC_STATUS: Partial<Record<GrpcStatus, ErrorCode>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_INPUT',
  [GrpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [GrpcStatus.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [GrpcStatus.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [GrpcStatus.UNAVAILABLE]: 'UNAVAILABLE',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [GrpcStatus.UNIMPLEMENTED]: 'NOT_IMPLEMENTED',
};

/** Rebuilds an {@link AeseError} from a failed call, keeping the stable code when one was sent. */
export function fromServiceError(err: ServiceError): AeseError {
  const sent = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  const code = isErrorCode(sent) ? sent : (CODE_BY_GRPC_STATUS[err.code] ?? 'INTERNAL');
  return new AeseError(code, err.details || GENERIC_INTERNAL_MESSAGE, { cause: err });
}
