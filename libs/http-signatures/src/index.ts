export {
  DEFAULT_ALLOWED_ALGORITHMS,
  isSignatureAlgorithm,
  SIGNATURE_ALGORITHMS,
} from './algorithms.js';
export type { SignatureAlgorithm } from './algorithms.js';
export {
  computeContentDigest,
  CONTENT_DIGEST_ALGORITHMS,
  DEFAULT_MAX_CONTENT_DIGEST_BYTES,
  verifyContentDigest,
} from './content-digest.js';
export type { ContentDigestAlgorithm, VerifiedContentDigest } from './content-digest.js';
export { DERIVED_COMPONENTS } from './components.js';
export {
  CONTENT_DIGEST_ERROR_REASONS,
  ContentDigestError,
  SIGNATURE_ERROR_REASONS,
  SignatureError,
} from './errors.js';
export type { ContentDigestErrorReason, SignatureErrorReason } from './errors.js';
export type { HttpMessageView } from './message.js';
export { createNonce, isAcceptableNonce, NONCE_MAX_CHARS, NONCE_MIN_BYTES } from './nonce.js';
export type { NonceRule } from './nonce.js';
export { createSignatureBase, signMessage } from './sign.js';
export type { SignatureBase } from './signature-base.js';
export type { SignatureParamsInput, SignedFields, SignMessageOptions } from './sign.js';
export { DEFAULT_MAX_SIGNATURE_HEADER_BYTES, verifyMessageSignature } from './verify.js';
export type {
  RequirableParam,
  ResolvedKey,
  VerifiedSignature,
  VerifyMessageSignatureOptions,
} from './verify.js';
