/**
 * `aese network list`: the identifiers of the UEs and groups behind the T8 APIs, as the running
 * capability-exposure service has them (the simulated network is seeded by its SIM_* settings),
 * so grants and requests name UEs that exist.
 */
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { OPERATOR_NAME, pkiLayout, readMeshTlsMaterial, spiffeId } from '@aese/pki';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import type { ListNetworkIdentitiesRequest, ListNetworkIdentitiesResponse } from '@aese/protos/capability-exposure/v1';
import { noPositionals, parseCommandArgs } from './args.js';
import { EXIT_OK } from './errors.js';
import { formatTable } from './output.js';
import { existingPkiTrustDomain } from './settings.js';
import type { CliConfig } from './settings.js';

export const NETWORK_USAGE = `  aese network list [--json]
      The UEs (externalId, msisdn, IPv4 and IPv6 addresses, groups) and external groups the
      network behind the T8 APIs knows, for grants (--target) and requests. Never an IMSI.
`;

/** A capability-exposure client over mTLS as the operator (ListApis, ListNetworkIdentities). */
export function operatorCapabilityExposureClient(config: CliConfig): MeshClient<CapabilityExposureServiceClient> {
  return createMeshClient(CapabilityExposureServiceClient, {
    address: config.capabilityExposureAddr,
    tls: readMeshTlsMaterial(pkiLayout(config.stateDir), OPERATOR_NAME),
    serverId: spiffeId(existingPkiTrustDomain(config), 'svc', 'capability-exposure'),
  });
}

function table(ids: ListNetworkIdentitiesResponse): string {
  const ues = formatTable(
    ['EXTERNAL_ID', 'MSISDN', 'IPV4', 'IPV6', 'GROUPS'],
    ids.ues.map(u => [u.externalId, u.msisdn, u.ipv4Addr, u.ipv6Addr, u.groups.join(',') || '-']),
  );
  const groups = formatTable(
    ['EXTERNAL_GROUP_ID', 'MEMBERS'],
    ids.groups.map(g => [g.externalGroupId, String(g.memberCount)]),
  );
  return `${ids.ues.length} UEs\n${ues}\n${ids.groups.length} groups\n${groups}`;
}

/** The capability-exposure RPC `network list` uses. */
export interface NetworkAdminClient {
  listNetworkIdentities(request: ListNetworkIdentitiesRequest): Promise<ListNetworkIdentitiesResponse>;
}

export async function networkList(args: readonly string[], client: NetworkAdminClient, stdout: (t: string) => void): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } });
  noPositionals(positionals, 'network list');
  const ids = await client.listNetworkIdentities({});
  if (values.json) {
    const json = {
      ues: ids.ues.map(u => ({ externalId: u.externalId, msisdn: u.msisdn, ipv4Addr: u.ipv4Addr, ipv6Addr: u.ipv6Addr, groups: u.groups })),
      groups: ids.groups.map(g => ({ externalGroupId: g.externalGroupId, memberCount: g.memberCount })),
    };
    stdout(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    stdout(table(ids));
  }
  return EXIT_OK;
}
