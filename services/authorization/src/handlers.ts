import type { AuthorizationServiceService } from '@aese/protos/authorization/v1';
import type { HandlersOf } from '@aese/grpc-server';
import type { PolicyAdministration } from './domain/policy-administration.js';
import type { PolicyDecisionPoint } from './domain/policy-decision-point.js';

/** Proto <-> domain for the authorization service. */
export function authorizationHandlers(pdp: PolicyDecisionPoint, admin: PolicyAdministration): HandlersOf<typeof AuthorizationServiceService> {
  return {
    decide: async req => {
      const d = pdp.decide({
        scsAsId: req.scsAsId,
        api: req.api,
        operation: req.operation,
        dataCategories: req.dataCategories,
        targets: req.targets,
        pathScsAsId: req.pathScsAsId,
      });
      return {
        allowed: d.allowed,
        determiningPolicies: [...d.determiningPolicies],
        obligations: d.obligations.map(o => ({ type: o.type, parameters: { ...o.parameters } })),
        policyVersion: d.policyVersion,
        denyCause: d.denyCause,
      };
    },
    applyPolicies: async (req, ctx) => ({ version: await admin.apply(req.policies, req.entitiesJson, req.expectedVersion, ctx.caller) }),
    getPolicies: async () => admin.snapshot(),
  };
}
