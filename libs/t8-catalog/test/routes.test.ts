import { expect } from 'chai';
import { matchRoute, SEGMENT_MAX_CHARS, splitT8Target } from '../src/routes.ts';

const ROUTES = [
  { method: 'GET', path: '/{scsAsId}/subscriptions' },
  { method: 'POST', path: '/{scsAsId}/subscriptions' },
  { method: 'GET', path: '/{scsAsId}/subscriptions/{subscriptionId}' },
  { method: 'DELETE', path: '/{scsAsId}/subscriptions/{subscriptionId}' },
] as const;

describe('t8-catalog routes', () => {
  it('splits a target into percent-decoded segments and its query', () => {
    const out = splitT8Target('/3gpp-monitoring-event/v1/as%2D1/sub%20s?x=1&y=%20');
    expect(out?.segments).to.deep.equal(['3gpp-monitoring-event', 'v1', 'as-1', 'sub s']);
    expect([...out!.query]).to.deep.equal([
      ['x', '1'],
      ['y', ' '],
    ]);
  });

  it('refuses empty, dot, oversized, undecodable and "/"-hiding segments, and short targets', () => {
    for (const bad of ['/a/x%2Fy/b', '/a//b', '/a/./b', '/a/../b', '/a/%2e%2E/b', `/a/${'x'.repeat(SEGMENT_MAX_CHARS + 1)}`, '/a/%E0%A4%A/b', '/a/%zz', 'a/b/c', '/a']) {
      expect(splitT8Target(bad), bad).to.equal(undefined);
    }
    const plain = splitT8Target('/3gpp-monitoring-event/v1/as1/subscriptions?x=1&y=%20');
    expect(plain?.segments).to.deep.equal(['3gpp-monitoring-event', 'v1', 'as1', 'subscriptions']);
    expect([...plain!.query]).to.deep.equal([
      ['x', '1'],
      ['y', ' '],
    ]);
    expect(splitT8Target('/a/b%20c')?.segments, 'percent-decoded').to.deep.equal(['a', 'b c']);
  });

  it('matches a route with its parameters, says which methods a path allows, or finds nothing', () => {
    expect(matchRoute(ROUTES, 'GET', ['as1', 'subscriptions', 'id-1'])).to.deep.equal({ kind: 'match', route: ROUTES[2], params: { scsAsId: 'as1', subscriptionId: 'id-1' } });
    expect(matchRoute(ROUTES, 'POST', ['as2', 'subscriptions'])).to.deep.equal({ kind: 'match', route: ROUTES[1], params: { scsAsId: 'as2' } });
    // Matched a second time (templates are split once and kept): the same answers, other parameters.
    expect(matchRoute(ROUTES, 'GET', ['as3', 'subscriptions', 'id-2'])).to.deep.equal({ kind: 'match', route: ROUTES[2], params: { scsAsId: 'as3', subscriptionId: 'id-2' } });
    expect(matchRoute(ROUTES, 'PUT', ['as1', 'subscriptions', 'id-1'])).to.deep.equal({ kind: 'method-not-allowed', allowed: ['GET', 'DELETE'] });
    expect(matchRoute(ROUTES, 'GET', ['as1', 'other', 'id-1'])).to.deep.equal({ kind: 'no-route' });
    expect(matchRoute(ROUTES, 'GET', ['as1'])).to.deep.equal({ kind: 'no-route' });
  });
});
