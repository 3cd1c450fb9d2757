import { AeseError, GENERIC_INTERNAL_MESSAGE } from '@aese/errors';
import type { ErrorCode } from '@aese/errors';

/** An error as it travels inside a stream message: a stable code and a message safe to send. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * The stream-message twin of `toGrpcStatus`: an {@link AeseError} keeps its code and message;
 * anything else becomes INTERNAL with the generic message (its detail stays in the server log).
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof AeseError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: GENERIC_INTERNAL_MESSAGE };
}
