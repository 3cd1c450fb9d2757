import { context, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { Logger, DestinationStream, LoggerOptions } from 'pino';

export type { Logger };

/**
 * Field names whose values never reach a log: credentials, key material and UE identifiers.
 * Matched case-insensitively at any depth, so a nested request body is covered too.
 */
export const REDACTED_FIELDS: readonly string[] = [
  'authorization',
  'token',
  'access_token',
  'accessToken',
  'refresh_token',
  'id_token',
  'client_secret',
  'password',
  'secret',
  'kek',
  'privateKey',
  'private_key',
  'keyPem',
  'key_pem',
  'd',
  'signature',
  'imsi',
  'msisdn',
  'externalId',
  'external_id',
  'externalGroupId',
  'external_group_id',
  'gpsi',
  'supi',
  'ipv4Addr',
  'ipv6Addr',
  'macAddr',
];

const REDACTED = '[redacted]';
const MAX_DEPTH = 8;
const redactedSet = new Set(REDACTED_FIELDS.map(f => f.toLowerCase()));
// Bearer tokens, JWTs and PEM blocks inside free text (an error message, say).
const SECRET_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\bBearer\s+[A-Za-z0-9._~+/-]+=*/gi,
  /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g,
];

/** Returns a copy of a log value with sensitive fields and embedded secrets replaced. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[depth]';
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.length} bytes]`;
  if (Array.isArray(value)) return value.map(v => redact(v, depth + 1));
  if (value instanceof Error) {
    return { type: value.name, message: scrubText(value.message), code: (value as { code?: unknown }).code };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = redactedSet.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

function scrubText(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, REDACTED);
  return out;
}

export interface LoggerSettings {
  readonly service: string;
  readonly level?: string;
  /** Where lines go; stdout when absent. Tests pass a stream to scan what was logged. */
  readonly destination?: DestinationStream;
}

/**
 * The active trace's id, on every line written inside a span (a request's, a hop's, a consumed
 * event's), so logs and traces join up. A line's own `traceId` field wins; the two agree
 * wherever the code sets one from the active span.
 */
function traceMixin(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const ctx = span.spanContext();
  return trace.isSpanContextValid(ctx) ? { traceId: ctx.traceId } : {};
}

/**
 * The one way to make a logger: JSON lines, service name bound, sensitive data redacted, the
 * active trace id added.
 */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { service: settings.service },
    mixin: traceMixin,
    formatters: { log: obj => redact(obj) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map(a => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}
