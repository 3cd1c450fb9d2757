import type { SchemaViolation } from '@aese/t8-openapi';

/** HTTP reason phrases of the statuses the T8 APIs answer with. */
const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Stable `cause` values this service puts in ProblemDetails (TS 29.122 leaves them open). */
export const PROBLEM_CAUSES = {
  insufficientScope: 'insufficient_scope',
  scsAsIdMismatch: 'SCS_AS_ID_MISMATCH',
  resourceNotFound: 'RESOURCE_NOT_FOUND',
  methodNotAllowed: 'METHOD_NOT_ALLOWED',
  unsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
  invalidJson: 'INVALID_JSON',
  duplicateMember: 'DUPLICATE_JSON_MEMBER',
  forbiddenMember: 'FORBIDDEN_JSON_MEMBER',
  jsonTooDeep: 'JSON_TOO_DEEP',
  invalidParameter: 'INVALID_PARAMETER',
  bodyNotAllowed: 'BODY_NOT_ALLOWED',
  notificationDestination: 'INVALID_NOTIFICATION_DESTINATION',
  idMismatch: 'RESOURCE_ID_MISMATCH',
  ueIdentifierRequired: 'UE_IDENTIFIER_REQUIRED',
  /** An update names another UE or group than the resource was made for. */
  ueIdentifierImmutable: 'UE_IDENTIFIER_IMMUTABLE',
  unknownUe: 'UNKNOWN_UE',
  authorizationUnavailable: 'AUTHORIZATION_UNAVAILABLE',
  networkUnavailable: 'NETWORK_UNAVAILABLE',
  /** This replica's copy of the subscriptions is older than the staleness bound (NATS unreachable). */
  resourcesUnavailable: 'RESOURCES_UNAVAILABLE',
  requestNotAuthorized: 'REQUEST_NOT_AUTHORIZED',
  /** The AS holds the most resources of this collection it may (MAX_RESOURCES_PER_AS). */
  resourceQuotaExceeded: 'RESOURCE_QUOTA_EXCEEDED',
  internal: 'INTERNAL_ERROR',
} as const;

/** A TS 29.122 ProblemDetails body. */
export interface ProblemDetails {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  readonly cause?: string;
  readonly invalidParams?: readonly SchemaViolation[];
}

/**
 * A T8-level failure: it becomes an HTTP status with a ProblemDetails body, not a gRPC error.
 * Messages are fixed text written here; they never carry request values (UE identifiers).
 */
export class T8Problem extends Error {
  override readonly name = 'T8Problem';
  constructor(
    readonly status: number,
    readonly causeCode: string,
    readonly detail: string,
    readonly invalidParams?: readonly SchemaViolation[],
  ) {
    super(detail);
  }

  toBody(): ProblemDetails {
    return problemBody(this.status, this.causeCode, this.detail, this.invalidParams);
  }
}

/** Builds a ProblemDetails body; the title is the status's reason phrase. */
export function problemBody(status: number, cause: string, detail: string, invalidParams?: readonly SchemaViolation[]): ProblemDetails {
  return {
    status,
    title: TITLES[status] ?? 'Error',
    detail,
    cause,
    ...(invalidParams && invalidParams.length > 0 ? { invalidParams } : {}),
  };
}

/**
 * The one 404 of every resource: the same bytes whether the id never existed, was deleted, or
 * belongs to another AS, so a 404 says nothing about other ASes' resources.
 */
export function notFound(): T8Problem {
  return new T8Problem(404, PROBLEM_CAUSES.resourceNotFound, 'the resource does not exist');
}

/** A 400 for a body that breaks a rule, pointing at the member (never echoing its value). */
export function invalidParam(param: string, reason: string, cause: string = PROBLEM_CAUSES.invalidParameter): T8Problem {
  return new T8Problem(400, cause, 'the request body is invalid', [{ param, reason }]);
}

/** The one 500: a fault of this service, logged here, never described to the AS. */
export function internalError(): T8Problem {
  return new T8Problem(500, PROBLEM_CAUSES.internal, 'the request could not be completed');
}

/** The 503 of a replica whose copy of the resources is too stale to answer or act on; nothing was executed. */
export function resourcesUnavailable(): T8Problem {
  return new T8Problem(503, PROBLEM_CAUSES.resourcesUnavailable, 'the subscriptions cannot be confirmed current; the request was not executed');
}
