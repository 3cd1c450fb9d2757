import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMON_SETTINGS, MESH_ENDPOINTS, REPO_ROOT } from '@aese/runtime';

/**
 * The mesh calls a service makes: the addresses its code hands to a gRPC client
 * (`address: common.addr...` in the top-level files of services/<name>/src: its server and, for
 * the edge, its mesh adapters), as service names, sorted.
 */
export function meshCallsOf(service: string): string[] {
  const dir = join(REPO_ROOT, 'services', service, 'src');
  const source = readdirSync(dir)
    .filter(f => f.endsWith('.ts'))
    .map(f => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  const envOfKey: Record<string, string> = Object.fromEntries(Object.entries(COMMON_SETTINGS).map(([key, setting]) => [key, setting.env]));
  const serviceOfEnv: Record<string, string> = Object.fromEntries(Object.entries(MESH_ENDPOINTS).map(([name, e]) => [e.addressEnv, name]));
  return [...new Set([...source.matchAll(/address: common\.(addr[A-Za-z]+)/g)].map(m => serviceOfEnv[envOfKey[m[1]]]))].sort();
}

/** The callers of each RPC in docs/architecture.md's allow-list table, as caller -> callee pairs. */
export function allowListPairs(): Set<string> {
  const lines = readFileSync(join(REPO_ROOT, 'docs', 'architecture.md'), 'utf8').split('\n');
  const at = lines.indexOf('<!-- checked: allow-lists -->');
  const pairs = new Set<string>();
  for (const line of lines.slice(at + 3)) {
    if (!line.startsWith('|')) break;
    const [service, , callers] = line
      .split('|')
      .slice(1, 4)
      .map(c => c.trim().replace(/`/g, ''));
    for (const caller of callers.split(',').map(c => c.trim())) pairs.add(`${caller} -> ${service}`);
  }
  return pairs;
}
