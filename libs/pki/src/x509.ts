/**
 * The one place `@peculiar/x509` is loaded: after the Reflect metadata polyfill it needs, and with
 * node's WebCrypto as its provider, so every key and signature comes from OpenSSL through
 * node:crypto and nothing cryptographic is implemented here.
 *
 * @internal
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** node's WebCrypto, passed explicitly to every `@peculiar/x509` call as well as set as its default. */
export const nodeCrypto: webcrypto.Crypto = webcrypto;

x509.cryptoProvider.set(nodeCrypto);

export { x509 };
