/** Longest path segment a T8 route matches; longer ones match nothing. */
export const SEGMENT_MAX_CHARS = 256;

/** A route of a T8 API module: a method and a path template below the module's base path. */
export interface RouteTemplate {
  readonly method: string;
  /** e.g. "/{scsAsId}/subscriptions/{subscriptionId}" */
  readonly path: string;
}

/** What a request target matched: a route with its parameters, only other methods, or nothing. */
export type RouteMatch<R extends RouteTemplate> =
  | { readonly kind: 'match'; readonly route: R; readonly params: Readonly<Record<string, string>> }
  | { readonly kind: 'method-not-allowed'; readonly allowed: readonly string[] }
  | { readonly kind: 'no-route' };

/**
 * Splits a request target (`/<api>/<version>/...?query`) into percent-decoded path segments and
 * the query. Segments are decoded one by one, so an encoded "/" never splits one; an empty, dot,
 * oversized or undecodable segment makes the whole target unroutable (undefined).
 */
export function splitT8Target(target: string): { readonly segments: string[]; readonly query: URLSearchParams } | undefined {
  const q = target.indexOf('?');
  const raw = (q === -1 ? target : target.slice(0, q)).split('/');
  if (raw[0] !== '' || raw.length < 3) return undefined;
  const segments: string[] = [];
  for (let i = 1; i < raw.length; i++) {
    const s = raw[i];
    let decoded = s;
    if (s.includes('%')) {
      try {
        decoded = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    }
    if (decoded.length === 0 || decoded.length > SEGMENT_MAX_CHARS || decoded.includes('/') || decoded === '.' || decoded === '..') {
      return undefined;
    }
    segments.push(decoded);
  }
  // Parsed when asked for: the edge routes on the segments alone, for every request.
  const rawQuery = q === -1 ? '' : target.slice(q + 1);
  let query: URLSearchParams | undefined;
  return {
    segments,
    get query() {
      return (query ??= new URLSearchParams(rawQuery));
    },
  };
}

/** A template's segments: a literal, or the name of a parameter. */
type TemplateSegment = { readonly literal: string } | { readonly param: string };

/** Split once per route template: matching runs on every request. */
const templates = new WeakMap<RouteTemplate, readonly TemplateSegment[]>();

function templateOf(route: RouteTemplate): readonly TemplateSegment[] {
  let template = templates.get(route);
  if (!template) {
    template = route.path
      .split('/')
      .filter(t => t.length > 0)
      .map(t => (t.startsWith('{') && t.endsWith('}') ? { param: t.slice(1, -1) } : { literal: t }));
    templates.set(route, template);
  }
  return template;
}

/** Matches the segments below a module's base path against its routes. */
export function matchRoute<R extends RouteTemplate>(routes: readonly R[], method: string, rest: readonly string[]): RouteMatch<R> {
  const allowed: string[] = [];
  for (const route of routes) {
    const template = templateOf(route);
    if (template.length !== rest.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; ok && i < template.length; i++) {
      const t = template[i];
      if ('param' in t) params[t.param] = rest[i]!;
      else ok = t.literal === rest[i];
    }
    if (!ok) continue;
    if (route.method === method) return { kind: 'match', route, params };
    if (!allowed.includes(route.method)) allowed.push(route.method);
  }
  return allowed.length > 0 ? { kind: 'method-not-allowed', allowed } : { kind: 'no-route' };
}
