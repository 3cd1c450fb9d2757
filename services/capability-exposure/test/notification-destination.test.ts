import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { expect } from 'chai';
import { checkNotificationDestination, notificationDestinationPolicy, parseAllowList, parsePortList } from '../src/domain/notification-destination.ts';
import type { DestinationPolicy, HostResolver } from '../src/domain/notification-destination.ts';
import { T8Problem } from '../src/domain/problem.ts';

const PUBLIC_V4 = '203.0.114.10';
const DNS: Record<string, string[]> = {
  'as.example.com': [PUBLIC_V4, '2a00:1450:4007:80e::200e'],
  'rebind.example.com': [PUBLIC_V4, '10.0.0.5'],
  'metadata.example.com': ['169.254.169.254'],
  'mapped.example.com': ['::ffff:127.0.0.1'],
  'ula.example.com': ['fd00::1'],
};
const resolve: HostResolver = async host => {
  const a = DNS[host];
  if (!a) throw new Error('ENOTFOUND');
  return a.map(address => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const policy = (allow: string[] = [], ports?: string[]): DestinationPolicy => ({
  allow: parseAllowList(allow),
  ...(ports ? { ports: parsePortList(ports) } : {}),
  meshEndpoints: ['mesh.internal:50052', '203.0.114.20:4222'],
  resolve,
});

async function refused(url: string, p: DestinationPolicy = policy()): Promise<T8Problem> {
  try {
    await checkNotificationDestination(url, p);
  } catch (err) {
    if (err instanceof T8Problem) return err;
    throw err;
  }
  throw new Error(`${url} was accepted`);
}

describe('capability-exposure notificationDestination SSRF checks', () => {
  it('accepts a public https destination whose every address is public (positive control)', async () => {
    await checkNotificationDestination('https://as.example.com/notify', policy());
    await checkNotificationDestination(`https://${PUBLIC_V4}:443/n`, policy());
  });

  it('requires https and refuses user info', async () => {
    for (const url of ['http://as.example.com/n', 'ftp://as.example.com/n', 'file:///etc/passwd', 'gopher://as.example.com', 'not a uri']) {
      const p = await refused(url);
      expect(p.status).to.equal(400);
      expect(p.causeCode).to.equal('INVALID_NOTIFICATION_DESTINATION');
      expect(p.invalidParams![0].param).to.equal('/notificationDestination');
    }
    await refused('https://user:pw@as.example.com/n');
  });

  it('refuses loopback, private, link-local, metadata, unspecified and reserved IPv4', async () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '169.254.1.1',
      '0.0.0.0',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
    ]) {
      await refused(`https://${host}/n`);
    }
    // Just outside the ranges: public (positive controls).
    for (const host of ['172.32.0.1', '11.0.0.1', '192.169.0.1']) await checkNotificationDestination(`https://${host}/n`, policy());
  });

  it('refuses decimal, hex, octal and short IPv4 forms of internal addresses', async () => {
    for (const host of ['2130706433', '0x7f000001', '0x7f.0.0.1', '017700000001', '127.1', '0177.0.0.1', '2852039166', '0xa9fea9fe']) {
      await refused(`https://${host}/n`);
    }
  });

  it('refuses IPv6 loopback, link-local, unique-local, unspecified and IPv4-mapped internal addresses', async () => {
    for (const host of [
      '[::1]',
      '[::]',
      '[fe80::1]',
      '[febf::1]',
      '[fc00::1]',
      '[fd12:3456::1]',
      '[::ffff:127.0.0.1]',
      '[::ffff:7f00:1]',
      '[::ffff:169.254.169.254]',
      '[::ffff:10.0.0.1]',
      '[ff02::1]',
    ]) {
      await refused(`https://${host}/n`);
    }
    await checkNotificationDestination('https://[2a00:1450:4007:80e::200e]/n', policy());
  });

  it('refuses localhost names and names resolving to internal addresses, checking every address', async () => {
    for (const url of [
      'https://localhost/n',
      'https://LOCALHOST./n',
      'https://api.localhost/n',
      'https://rebind.example.com/n',
      'https://metadata.example.com/n',
      'https://mapped.example.com/n',
      'https://ula.example.com/n',
      'https://unknown.example.com/n',
    ]) {
      await refused(url);
    }
  });

  it('uses dns.lookup by default and judges every address it returns (the machine name)', async () => {
    const real: DestinationPolicy = { allow: [], meshEndpoints: [] };
    const name = hostname();
    const answers = await lookup(name, { all: true });
    // Each address judged on its own as an IP literal; the name must get the same verdict.
    const verdicts = await Promise.all(
      answers.map(a =>
        checkNotificationDestination(`https://${a.family === 6 ? `[${a.address}]` : a.address}/n`, real).then(
          () => 'public',
          () => 'internal',
        ),
      ),
    );
    if (verdicts.includes('internal')) {
      const p = await refused(`https://${name}/n`, real);
      expect(p.invalidParams![0].reason).to.equal('must not point at an internal address');
    } else {
      await checkNotificationDestination(`https://${name}/n`, real);
    }
  });

  it('refuses mesh endpoints even on public addresses', async () => {
    const meshPorts = ['443', '4222', '50052'];
    await refused('https://mesh.internal:50052/n', policy([], meshPorts));
    await refused('https://203.0.114.20:4222/n', policy([], meshPorts));
    await checkNotificationDestination('https://203.0.114.20:443/n', policy([], meshPorts));
  });

  it('an operator allow-list of host:port or CIDR lifts the address rules, never the https rule', async () => {
    await refused('https://127.0.0.1:9443/n');
    await checkNotificationDestination('https://127.0.0.1:9443/n', policy(['127.0.0.1:9443']));
    await refused('https://127.0.0.1:9444/n', policy(['127.0.0.1:9443']));
    await checkNotificationDestination('https://localhost:9443/n', policy(['localhost:9443']));
    await checkNotificationDestination('https://10.20.0.7/n', policy(['10.20.0.0/16']));
    await refused('https://10.21.0.7/n', policy(['10.20.0.0/16']));
    await checkNotificationDestination('https://[fd00::5]/n', policy(['fd00::/64']));
    await refused('http://127.0.0.1:9443/n', policy(['127.0.0.1:9443']));
    expect(() => parseAllowList(['not an entry'])).to.throw(TypeError);
    expect(() => parseAllowList(['10.0.0.0/33'])).to.throw(TypeError);
  });

  it("allows only port 443 by default, the operator's ports when set, and an allow-listed host:port for that host only; a refused port is never resolved", async () => {
    const seen: string[] = [];
    const recording: DestinationPolicy = { ...policy(), resolve: async h => (seen.push(h), resolve(h)) };
    for (const url of [`https://${PUBLIC_V4}:6379/n`, `https://${PUBLIC_V4}:8443/n`, 'https://as.example.com:6379/n', 'https://as.example.com:80/n']) {
      const p = await refused(url, recording);
      expect(p.invalidParams).to.deep.equal([{ param: '/notificationDestination', reason: 'must use a port the operator allows' }]);
    }
    expect(seen, 'no lookup for a refused port').to.deep.equal([]);
    await checkNotificationDestination('https://as.example.com:443/n', recording);
    expect(seen).to.deep.equal(['as.example.com']);
    // Operator ports: single ports and ranges.
    await checkNotificationDestination(`https://${PUBLIC_V4}:8443/n`, policy([], ['443', '8443']));
    await checkNotificationDestination(`https://${PUBLIC_V4}:9001/n`, policy([], ['9000-9010']));
    await refused(`https://${PUBLIC_V4}:443/n`, policy([], ['9000-9010']));
    await refused(`https://${PUBLIC_V4}:6379/n`, policy([], ['443', '8443']));
    // host:port admits its port for its host only; a CIDR entry admits no port.
    await checkNotificationDestination('https://as.example.com:9443/n', policy(['as.example.com:9443']));
    await refused('https://other.example.com:9443/n', policy(['as.example.com:9443']));
    await refused('https://10.20.0.7:6379/n', policy(['10.20.0.0/16']));
    for (const bad of ['0', '65536', '443-80', 'https', '1-2-3', '']) expect(() => parsePortList([bad]), bad).to.throw(TypeError);
  });

  it('builds the policy from the shared settings and names the variable of a malformed entry', () => {
    const p = notificationDestinationPolicy({ destinationAllowList: ['127.0.0.1:9443'], destinationPorts: ['443', '8000-8999'] }, ['mesh:1'], resolve);
    expect(p.ports).to.deep.equal([
      [443, 443],
      [8000, 8999],
    ]);
    expect(p.meshEndpoints).to.deep.equal(['mesh:1']);
    expect(() => notificationDestinationPolicy({ destinationAllowList: [], destinationPorts: ['http'] }, [])).to.throw(/NOTIFICATION_DESTINATION_PORTS/);
    expect(() => notificationDestinationPolicy({ destinationAllowList: ['nope'], destinationPorts: ['443'] }, [])).to.throw(/NOTIFICATION_DESTINATION_ALLOWLIST/);
  });

  it('never repeats the destination in the problem', async () => {
    const p = await refused('https://169.254.169.254/latest/meta-data/secret-path');
    expect(JSON.stringify(p.toBody())).to.not.include('secret-path').and.not.include('169.254');
  });
});
