import { createHash } from 'node:crypto';
import { AeseError } from '@aese/errors';
import { expect } from 'chai';
import { computeContentDigest, ContentDigestError, verifyContentDigest } from '../src/index.js';
import type { ContentDigestErrorReason } from '../src/index.js';

const BODY = Buffer.from('{"monitoringType":"LOSS_OF_CONNECTIVITY","maximumNumberOfReports":1}');
const OTHER = Buffer.from('{"monitoringType":"LOSS_OF_CONNECTIVITY","maximumNumberOfReports":9}');
const SHA256 = computeContentDigest(BODY, 'sha-256');
const SHA512 = computeContentDigest(BODY, 'sha-512');

function b64(alg: string, body: Uint8Array): string {
  return createHash(alg).update(body).digest('base64');
}

function reasonOf(run: () => unknown): ContentDigestErrorReason {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(ContentDigestError);
    expect(err).to.be.instanceOf(AeseError).with.property('code', 'UNAUTHENTICATED');
    return (err as ContentDigestError).reason;
  }
  throw new Error('expected a ContentDigestError, the digest was accepted');
}

describe('http-signatures: Content-Digest (RFC 9530)', () => {
  it('accepts a matching sha-256 or sha-512 digest and refuses it for changed content', () => {
    expect(verifyContentDigest(SHA256, BODY).algorithms).to.deep.equal(['sha-256']);
    expect(verifyContentDigest(SHA512, BODY).algorithms).to.deep.equal(['sha-512']);
    expect(reasonOf(() => verifyContentDigest(SHA256, OTHER))).to.equal('DIGEST_MISMATCH');
    expect(reasonOf(() => verifyContentDigest(SHA512, OTHER))).to.equal('DIGEST_MISMATCH');
  });

  it('requires the field', () => {
    expect(reasonOf(() => verifyContentDigest(undefined, BODY))).to.equal('DIGEST_MISSING');
    expect(reasonOf(() => verifyContentDigest('', BODY))).to.equal('DIGEST_MISSING');
    expect(reasonOf(() => verifyContentDigest([], BODY))).to.equal('DIGEST_MISSING');
  });

  it('reads several field lines as one dictionary', () => {
    expect(verifyContentDigest([SHA256, SHA512], BODY).algorithms).to.deep.equal(['sha-256', 'sha-512']);
    expect(reasonOf(() => verifyContentDigest([SHA256, computeContentDigest(OTHER, 'sha-512')], BODY))).to.equal('DIGEST_MISMATCH');
  });

  for (const weak of ['md5', 'sha', 'sha1']) {
    it(`refuses a correct ${weak} digest alone (DIGEST_ALGORITHM_NOT_ALLOWED)`, () => {
      const nodeAlg = weak === 'sha' ? 'sha1' : weak;
      expect(reasonOf(() => verifyContentDigest(`${weak}=:${b64(nodeAlg, BODY)}:`, BODY))).to.equal('DIGEST_ALGORITHM_NOT_ALLOWED');
      expect(verifyContentDigest(`${weak}=:${b64(nodeAlg, BODY)}:, ${SHA256}`, BODY).algorithms).to.deep.equal(['sha-256']);
    });
  }

  for (const other of ['crc32c=:AAAAAA==:', 'unixsum=:AAAA:', 'unixcksum=:AAAA:', 'adler=:AAAAAA==:', 'id-sha-256=:AAAA:', 'sha-384=:AAAA:']) {
    it(`refuses only weak or unknown algorithms: ${other.split('=')[0]}`, () => {
      expect(reasonOf(() => verifyContentDigest(other, BODY))).to.equal('DIGEST_ALGORITHM_NOT_ALLOWED');
    });
  }

  it('counts only strong algorithms when weak ones come along, and every strong one must match', () => {
    const weakWrong = `md5=:${b64('md5', OTHER)}:`;
    const weakRight = `md5=:${b64('md5', BODY)}:`;
    expect(verifyContentDigest(`${weakWrong}, ${SHA512}`, BODY).algorithms).to.deep.equal(['sha-512']);
    expect(reasonOf(() => verifyContentDigest(`${weakRight}, ${computeContentDigest(OTHER, 'sha-512')}`, BODY))).to.equal('DIGEST_MISMATCH');
    expect(reasonOf(() => verifyContentDigest(`${SHA256}, ${computeContentDigest(OTHER, 'sha-512')}`, BODY))).to.equal('DIGEST_MISMATCH');
    expect(reasonOf(() => verifyContentDigest(`${computeContentDigest(OTHER, 'sha-256')}, ${SHA512}`, BODY))).to.equal('DIGEST_MISMATCH');
  });

  it('refuses a digest of the wrong length (a truncated sha-256)', () => {
    const truncated = `sha-256=:${createHash('sha256').update(BODY).digest().subarray(0, 31).toString('base64')}:`;
    expect(reasonOf(() => verifyContentDigest(truncated, BODY))).to.equal('DIGEST_MISMATCH');
    expect(reasonOf(() => verifyContentDigest('sha-256=::', BODY))).to.equal('DIGEST_MISMATCH');
  });

  it('refuses malformed fields: not a dictionary, not byte sequences, a repeated algorithm, too large', () => {
    expect(reasonOf(() => verifyContentDigest(`sha-256=${b64('sha256', BODY)}`, BODY))).to.equal('DIGEST_MALFORMED');
    expect(reasonOf(() => verifyContentDigest(`sha-256="${b64('sha256', BODY)}"`, BODY))).to.equal('DIGEST_MALFORMED');
    expect(reasonOf(() => verifyContentDigest(`sha-256=(:${b64('sha256', BODY)}:)`, BODY))).to.equal('DIGEST_MALFORMED');
    expect(reasonOf(() => verifyContentDigest('SHA-256=:abc=:', BODY))).to.equal('DIGEST_MALFORMED');
    expect(reasonOf(() => verifyContentDigest(`${SHA256},`, BODY))).to.equal('DIGEST_MALFORMED');
    // RFC 8941 keeps the last of two equal keys; a wrong digest must not hide behind a right one.
    expect(reasonOf(() => verifyContentDigest(`${computeContentDigest(OTHER)}, ${SHA256}`, BODY))).to.equal('DIGEST_MALFORMED');
    expect(reasonOf(() => verifyContentDigest(`${SHA256}, ${SHA256}`, BODY))).to.equal('DIGEST_MALFORMED');
    const huge = `${SHA256}, ${Array.from({ length: 40 }, (_, i) => `x${i}=:${'A'.repeat(40)}:`).join(', ')}`;
    expect(reasonOf(() => verifyContentDigest(huge, BODY))).to.equal('DIGEST_MALFORMED');
    expect(verifyContentDigest(huge, BODY, { maxHeaderBytes: 4096 }).algorithms).to.deep.equal(['sha-256']);
  });

  it('computes only allowed algorithms', () => {
    expect(() => computeContentDigest(BODY, 'md5' as never)).to.throw(TypeError);
  });
});
