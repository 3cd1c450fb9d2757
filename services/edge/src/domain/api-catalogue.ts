import { matchRoute, splitT8Target } from '@aese/t8-catalog';

/** How often the edge re-reads the API modules from capability-exposure. */
export const DEFAULT_API_REFRESH_MS = 30_000;

/** A route of a T8 API module, as capability-exposure lists it (ListApis). */
export interface ApiRoute {
  readonly method: string;
  /** Template below the base path, e.g. `/{scsAsId}/subscriptions/{subscriptionId}`. */
  readonly path: string;
}

/** A T8 API module: base path `/<name>/<version>`, the scope it needs, its routes. */
export interface ApiModule {
  readonly name: string;
  readonly version: string;
  readonly scope: string;
  readonly routes: readonly ApiRoute[];
}

/** Where a T8 request goes, or why it goes nowhere. */
export type ApiMatch =
  | { readonly kind: 'match'; readonly module: ApiModule; readonly params: Readonly<Record<string, string>> }
  | { readonly kind: 'no-route' }
  | { readonly kind: 'method-not-allowed'; readonly allowed: readonly string[] };

/** How many matches a catalogue keeps, and the longest target kept. */
const MATCH_MEMO_SIZE = 4096;
const MATCH_MEMO_TARGET_CHARS = 256;
const MATCH_MEMO_METHOD_CHARS = 16;

/** True for a path the edge treats as a T8 API call (TS 29.122 base paths are `/3gpp-<api>/v1/...`). */
export function isT8Path(path: string): boolean {
  return path.startsWith('/3gpp-');
}

/**
 * The T8 APIs the mesh serves, as capability-exposure declares them. The edge has no code per
 * API: it learns base paths, scopes and route templates here, so that a request for an API the
 * token has no scope for, or for another AS's `{scsAsId}`, is refused before any service is
 * called. Matching follows capability-exposure's own: segments are percent-decoded one by one,
 * and empty, dot or oversized segments match nothing.
 */
export class ApiCatalogue {
  private readonly modules: ReadonlyMap<string, ApiModule>;
  /** Matches already made (a catalogue never changes; a new one comes with a refresh). */
  private readonly matches = new Map<string, ApiMatch>();

  constructor(modules: readonly ApiModule[]) {
    this.modules = new Map(modules.map(m => [`${m.name}/${m.version}`, m]));
  }

  get size(): number {
    return this.modules.size;
  }

  /** How many matches are kept now. */
  get keptMatches(): number {
    return this.matches.size;
  }

  /**
   * Matches a method and a request target (`/<name>/<version>/...?query`). An AS reads the same
   * resources again and again: short targets' answers are kept, at most {@link MATCH_MEMO_SIZE}
   * of them (all dropped when full, so a stream of distinct targets costs memory once).
   */
  match(method: string, target: string): ApiMatch {
    // HTTP/2 lets a client name any method: only short ones are kept, as only short targets are.
    if (target.length > MATCH_MEMO_TARGET_CHARS || method.length > MATCH_MEMO_METHOD_CHARS) return this.matchNow(method, target);
    const key = `${method} ${target}`;
    let found = this.matches.get(key);
    if (found === undefined) {
      found = this.matchNow(method, target);
      if (this.matches.size >= MATCH_MEMO_SIZE) this.matches.clear();
      this.matches.set(key, found);
    }
    return found;
  }

  private matchNow(method: string, target: string): ApiMatch {
    const split = splitT8Target(target);
    if (!split) return { kind: 'no-route' };
    const module = this.modules.get(`${split.segments[0]}/${split.segments[1]}`);
    if (!module) return { kind: 'no-route' };
    const found = matchRoute(module.routes, method, split.segments.slice(2));
    return found.kind === 'match' ? { kind: 'match', module, params: found.params } : found;
  }
}

export interface ApiDirectoryOptions {
  /** Reads the modules (capability-exposure ListApis). */
  readonly fetch: () => Promise<readonly ApiModule[]>;
  readonly refreshMs?: number;
  readonly onError?: (err: unknown) => void;
}

/**
 * The current {@link ApiCatalogue}: read at start, re-read periodically, so a module added to
 * capability-exposure is routed without touching the edge. When a refresh fails the last
 * catalogue stays; before the first one arrives T8 requests get 503 (and a read is retried on
 * the next request, at most once a second).
 */
export class ApiDirectory {
  private catalogue: ApiCatalogue | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<ApiCatalogue | undefined> | undefined;
  private lastTryMs = Number.NEGATIVE_INFINITY;
  private readonly refreshMs: number;

  constructor(private readonly options: ApiDirectoryOptions) {
    this.refreshMs = options.refreshMs ?? DEFAULT_API_REFRESH_MS;
  }

  /** Reads the catalogue once (failures are reported, not thrown) and starts the periodic refresh. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The catalogue now, or a fresh attempt to get one when there is none yet. */
  current(): ApiCatalogue | Promise<ApiCatalogue | undefined> | undefined {
    if (this.catalogue) return this.catalogue;
    if (Date.now() - this.lastTryMs < 1_000) return this.inflight;
    return this.refresh();
  }

  refresh(): Promise<ApiCatalogue | undefined> {
    this.inflight ??= (async () => {
      this.lastTryMs = Date.now();
      try {
        this.catalogue = new ApiCatalogue(await this.options.fetch());
      } catch (err) {
        this.options.onError?.(err);
      } finally {
        this.inflight = undefined;
      }
      return this.catalogue;
    })();
    return this.inflight;
  }
}
