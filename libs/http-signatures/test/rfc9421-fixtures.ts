/**
 * Test material printed in RFC 9421 (HTTP Message Signatures), copied from the RFC text:
 * the keys of Appendix B.1 and the messages of Appendix B.2. Each key is bound to its published
 * counterpart by a test, so a mistyped key surfaces as that failure and not as a signature bug.
 */
import { createPrivateKey, createPublicKey, createSecretKey } from 'node:crypto';
import type { HttpMessageView } from '../src/index.js';

/** B.1.2 test-key-rsa-pss, public half (SPKI, rsaEncryption). */
export const TEST_KEY_RSA_PSS_PUBLIC = createPublicKey(`-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----
`);

/** B.1.3 test-key-ecc-p256 (SEC1 private key and SPKI public key). */
export const TEST_KEY_ECC_P256_PRIVATE = createPrivateKey(`-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49
AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM
4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END EC PRIVATE KEY-----
`);
export const TEST_KEY_ECC_P256_PUBLIC_PEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----
`;
export const TEST_KEY_ECC_P256_PUBLIC = createPublicKey(TEST_KEY_ECC_P256_PUBLIC_PEM);

/** B.1.4 test-key-ed25519 (PKCS #8 private key and SPKI public key). */
export const TEST_KEY_ED25519_PRIVATE = createPrivateKey(`-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
`);
export const TEST_KEY_ED25519_PUBLIC_PEM = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
`;
export const TEST_KEY_ED25519_PUBLIC = createPublicKey(TEST_KEY_ED25519_PUBLIC_PEM);

/** B.1.5 test-shared-secret (64 bytes, base64). */
export const TEST_SHARED_SECRET = createSecretKey(Buffer.from('uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==', 'base64'));

/** `created` of every Appendix B signature. */
export const RFC_CREATED = 1618884473;

/** B.2 test-request: `POST /foo?param=Value&Pet=dog` to example.com with `{"hello": "world"}`. */
export const TEST_REQUEST_BODY = Buffer.from('{"hello": "world"}');
export const TEST_REQUEST_DIGEST = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';

/** The B.2 test-request, optionally with more fields (a signature, say). */
export function testRequest(extra: Record<string, string> = {}): HttpMessageView {
  return {
    method: 'POST',
    targetUri: 'https://example.com/foo?param=Value&Pet=dog',
    headers: {
      Host: 'example.com',
      Date: 'Tue, 20 Apr 2021 02:07:55 GMT',
      'Content-Type': 'application/json',
      'Content-Digest': TEST_REQUEST_DIGEST,
      'Content-Length': '18',
      ...extra,
    },
  };
}

/** B.2 test-response: `200 OK` with `{"message": "good dog"}`. */
export const TEST_RESPONSE_BODY = Buffer.from('{"message": "good dog"}');
export const TEST_RESPONSE_DIGEST = 'sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:';

/** The B.2 test-response, optionally with more fields. */
export function testResponse(extra: Record<string, string> = {}): HttpMessageView {
  return {
    status: 200,
    headers: {
      Date: 'Tue, 20 Apr 2021 02:07:56 GMT',
      'Content-Type': 'application/json',
      'Content-Digest': TEST_RESPONSE_DIGEST,
      'Content-Length': '23',
      ...extra,
    },
  };
}

/** The published `Signature` values of Appendix B.2 (RSA-PSS and ECDSA ones are not reproducible). */
export const PUBLISHED_SIGNATURES = {
  b21:
    'd2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsck' +
    'zXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXeh' +
    'hWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9' +
    'mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==',
  b22:
    'LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJyE5qH7KT8UCMkSo' +
    'wOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY17SARYhpTlaqwZVtR8NV7+4UKkjq' +
    'pcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk' +
    '//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==',
  b23:
    'bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5p2voTp768' +
    'ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aYA2HXXZzNBXmIkoQoL' +
    'd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2' +
    'Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==',
  b24: 'wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==',
  b25: 'pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=',
  b26: 'wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==',
} as const;
