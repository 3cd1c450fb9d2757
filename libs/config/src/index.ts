import { AeseError } from '@aese/errors';

/** A source of raw settings; `process.env` in production, a plain object in tests. */
export type Env = Readonly<Record<string, string | undefined>>;

/** How one setting is read: its variable, whether it is required, and how it is parsed. */
export interface Setting<T> {
  readonly env: string;
  readonly parse: (raw: string, name: string) => T;
  readonly default?: T;
}

type Spec = Readonly<Record<string, Setting<unknown>>>;
type ConfigOf<S extends Spec> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

/** Thrown at start-up when a setting is missing or malformed; the message names the variable. */
export class ConfigError extends AeseError {
  override readonly name = 'ConfigError';
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/**
 * Reads every setting of a spec once and fails fast on the first missing or malformed one,
 * naming its variable. Nothing else in the code base reads the environment.
 */
export function loadConfig<S extends Spec>(spec: S, env: Env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(spec)) {
    const raw = env[setting.env];
    if (raw === undefined || raw === '') {
      if (!('default' in setting)) throw new ConfigError(`missing required setting ${setting.env}`);
      out[key] = setting.default;
      continue;
    }
    out[key] = setting.parse(raw, setting.env);
  }
  return Object.freeze(out) as ConfigOf<S>;
}

/** A string setting. */
export function str(envName: string, defaultValue?: string): Setting<string> {
  return withDefault({ env: envName, parse: raw => raw }, defaultValue);
}

/** An optional string: undefined when the variable is unset. */
export function optionalStr(envName: string): Setting<string | undefined> {
  return { env: envName, parse: raw => raw, default: undefined };
}

/** An integer setting within bounds. */
export function int(envName: string, defaultValue?: number, min = 0, max = Number.MAX_SAFE_INTEGER): Setting<number> {
  return withDefault(
    {
      env: envName,
      parse: (raw, name) => {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < min || n > max) {
          throw new ConfigError(`setting ${name} must be an integer in [${min}, ${max}]`);
        }
        return n;
      },
    },
    defaultValue,
  );
}

/** An optional integer within bounds: undefined when the variable is unset. */
export function optionalInt(envName: string, min = 0, max = Number.MAX_SAFE_INTEGER): Setting<number | undefined> {
  return { ...int(envName, undefined, min, max), default: undefined };
}

/** A comma-separated list setting. */
export function list(envName: string, defaultValue?: readonly string[]): Setting<readonly string[]> {
  return withDefault(
    {
      env: envName,
      parse: raw =>
        raw
          .split(',')
          .map(s => s.trim())
          .filter(s => s.length > 0),
    },
    defaultValue,
  );
}

/** A setting restricted to a set of values. */
export function oneOf<const T extends string>(envName: string, values: readonly T[], defaultValue?: T): Setting<T> {
  return withDefault(
    {
      env: envName,
      parse: (raw, name) => {
        if (!(values as readonly string[]).includes(raw)) {
          throw new ConfigError(`setting ${name} must be one of ${values.join(', ')}`);
        }
        return raw as T;
      },
    },
    defaultValue,
  );
}

/** A base64 secret of an exact decoded length (a key-encryption key, say). */
export function secretBytes(envName: string, length: number): Setting<Buffer> {
  return {
    env: envName,
    parse: (raw, name) => {
      const bytes = Buffer.from(raw, 'base64');
      if (bytes.length !== length) throw new ConfigError(`setting ${name} must be ${length} bytes, base64-encoded`);
      return bytes;
    },
  };
}

function withDefault<T>(setting: Setting<T>, defaultValue: T | undefined): Setting<T> {
  return defaultValue === undefined ? setting : { ...setting, default: defaultValue };
}
