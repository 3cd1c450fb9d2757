import type { ModuleRoute, RouteRequest } from '../registry.js';

/**
 * Thrown by the network side of a provisioning API (PfdManagement, CpProvisioning,
 * RacsParameterProvisioning) that refused everything a request named: TS 29.122 answers such a
 * request 500 with the reports, and nothing is stored.
 */
export class AllRefused extends Error {
  constructor(
    readonly reports: readonly unknown[],
    message: string,
  ) {
    super(message);
  }
}

/** How an API answers a request its network side refused entirely. */
export interface RefusalAnswers {
  /** The schema of the 500 answer per method that has one (a pointer into the API file). */
  readonly schemas: Readonly<Record<string, string>>;
  readonly dataCategories: readonly string[];
  /** The member holding the SCEF's reports: a patch starts from the resource without it, as the network reports afresh. */
  readonly reportsMember?: string;
}

function without(document: unknown, member: string): unknown {
  if (typeof document !== 'object' || document === null) return document;
  const { [member]: _reports, ...rest } = document as Record<string, unknown>;
  return rest;
}

/** The routes, each method with a refusal schema answering {@link AllRefused} with 500 and the reports. */
export function withAllRefused(routes: readonly ModuleRoute[], answers: RefusalAnswers): ModuleRoute[] {
  return routes.map(r => {
    const refusedSchema = answers.schemas[r.method];
    if (refusedSchema === undefined) return r;
    const { document } = r;
    const member = answers.reportsMember;
    return {
      ...r,
      ...(document && member ? { document: (req: RouteRequest) => without(document(req), member) } : {}),
      responses: { ...r.responses, 500: refusedSchema },
      handler: async req => {
        try {
          return await r.handler(req);
        } catch (err) {
          if (err instanceof AllRefused) return { status: 500, body: err.reports, dataCategories: answers.dataCategories };
          throw err;
        }
      },
    };
  });
}
