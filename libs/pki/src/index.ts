/**
 * The operator PKI: three CAs (mesh, AS, T8 server), SPIFFE identities in URI SANs, certificate
 * thumbprints for RFC 8705 token binding, and the state-folder layout every service reads its
 * TLS material from. ECDSA P-256 and SHA-256 throughout, built with `@peculiar/x509` over
 * node's WebCrypto; nothing shells out to openssl and nothing cryptographic is hand-rolled.
 *
 * @packageDocumentation
 */
export { DEFAULT_CA_VALIDITY_DAYS, DEFAULT_LEAF_VALIDITY_DAYS, createSelfSignedCa, issueCertificate, issueCrl } from './ca.js';
export type { CertificateProfile, ExtendedKeyUsageName, KeyPairPem, KeyUsageName, RevokedCertificate } from './ca.js';
export { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE } from './files.js';
export {
  DEFAULT_AS_CERT_VALIDITY_DAYS,
  DEFAULT_T8_HOSTNAMES,
  initPki,
  NATS_SERVER_HOSTNAMES,
  issueAsClientCertificate,
  readMeshTlsMaterial,
  readPkiMetadata,
  readT8ServerTlsMaterial,
} from './init.js';
export type { InitPkiOptions, MeshTlsMaterial, PkiMetadata, T8ServerTlsMaterial } from './init.js';
export { MESH_SERVICES, NATS_ADMIN_NAME, OPERATOR_NAME, pkiLayout } from './layout.js';
export type { CertKeyPaths, MeshService, PkiLayout } from './layout.js';
export { certificateThumbprint, derToPem, pemToDer, readPem } from './pem.js';
export { IDENTITY_KINDS, isValidIdentityName, isValidTrustDomain, parseSpiffeId, peerSpiffeId, spiffeId, spiffeIdsOfPeer } from './spiffe.js';
export type { IdentityKind, SpiffeIdParts } from './spiffe.js';
