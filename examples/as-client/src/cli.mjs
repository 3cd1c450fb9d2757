#!/usr/bin/env node
// An example SCS/AS for the AESE SCEF, from its onboarding bundle. See docs/as-developer-guide.md.
//
//   cli.mjs receiver-cert --out <dir> [--host <name or IP>]...
//   cli.mjs --bundle <dir> token [--scope <scope>]...
//   cli.mjs --bundle <dir> subscribe <api> <json> [--jose]   stdout: the new subscription's URL
//   cli.mjs --bundle <dir> get <url> [--jose]                stdout: the resource (JSON)
//   cli.mjs --bundle <dir> list <api> [--jose]               stdout: the subscriptions (JSON)
//   cli.mjs --bundle <dir> delete <url>
//   cli.mjs --bundle <dir> receive --port <port> --cert <dir> [--host <address>] [--count <n>]
//
// Exit status: 0 done, 1 failed (an error answer, a signature that does not verify), 2 bad usage.
import { parseArgs } from 'node:util';
import * as oauth from 'oauth4webapi';
import { decodeJwt } from 'jose';
import { loadBundle } from './bundle.mjs';
import { startReceiver } from './receiver.mjs';
import { scefClient } from './scef.mjs';
import { Refused } from './signatures.mjs';
import { apiOf, subscriptionsUrl, t8Call } from './t8.mjs';

const NAME = 'aese-example-as';

class Usage extends Error {}

const say = line => process.stderr.write(`${line}\n`);

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bundle: { type: 'string' },
      out: { type: 'string' },
      host: { type: 'string', multiple: true },
      scope: { type: 'string', multiple: true },
      jose: { type: 'boolean', default: false },
      port: { type: 'string' },
      cert: { type: 'string' },
      count: { type: 'string' },
    },
  });
  return { options: values, command: positionals[0], args: positionals.slice(1) };
}

/** Reports a T8 answer on stderr; true when it is a verified success. */
function report(answer) {
  say(`HTTP ${answer.status}`);
  if (answer.verified) {
    say(`response signature verified: keyid ${answer.verified.keyid}, created ${answer.verified.created}, covers the request signature (;req)`);
  } else {
    say('response is not signed (refused before the AS was authenticated): not trusted');
  }
  if (answer.encrypted) say(`response body decrypted: JWE ${answer.jwe.alg} / ${answer.jwe.enc}, kid ${answer.jwe.kid}`);
  const ok = answer.verified !== undefined && answer.status >= 200 && answer.status < 300;
  if (!ok && answer.json) {
    const p = answer.json;
    say(`problem: ${p.status ?? answer.status} ${p.title ?? ''}, cause ${p.cause ?? '(none)'}: ${p.detail ?? ''}`);
    if (p.invalidParams) say(`invalid params: ${JSON.stringify(p.invalidParams)}`);
    if (answer.headers['www-authenticate']) say(`WWW-Authenticate: ${answer.headers['www-authenticate']}`);
    if (answer.headers['accept-signature']) say(`Accept-Signature: ${answer.headers['accept-signature']}`);
    if (answer.headers['retry-after']) say(`Retry-After: ${answer.headers['retry-after']}`);
  }
  return ok;
}

function jsonArg(text) {
  try {
    return JSON.parse(text);
  } catch {
    throw new Usage('the body must be JSON');
  }
}

async function withScef(options, run) {
  if (!options.bundle) throw new Usage('--bundle <dir> is required');
  const bundle = await loadBundle(options.bundle);
  const scef = scefClient(bundle);
  try {
    return await run(bundle, scef);
  } finally {
    await scef.close();
  }
}

/** GETs a resource or collection and prints it (JSON) when the answer is a verified success. */
function show(options, urlOf) {
  return withScef(options, async (bundle, scef) => {
    const answer = await t8Call(bundle, scef, { method: 'GET', url: urlOf(bundle), jose: options.jose });
    if (!report(answer)) return 1;
    process.stdout.write(`${JSON.stringify(answer.json, null, 2)}\n`);
    return 0;
  });
}

const commands = {
  'receiver-cert': async ({ options }) => {
    if (!options.out) throw new Usage('receiver-cert needs --out <dir>');
    // Loaded here only: no other command needs X.509 generation.
    const { createReceiverCertificate } = await import('./receiver-cert.mjs');
    const files = await createReceiverCertificate(options.out, options.host ?? ['127.0.0.1', 'localhost']);
    say(`wrote ${files.join(', ')}`);
    say(`the SCEF operator sets NOTIFICATION_CA_FILE=${files[0]}`);
    return 0;
  },

  token: ({ options }) =>
    withScef(options, async (bundle, scef) => {
      const t = await scef.token(options.scope ?? bundle.scopes);
      const claims = decodeJwt(t.access_token);
      process.stdout.write(
        `${JSON.stringify({ token_type: t.token_type, expires_in: t.expires_in, scope: t.scope, claims: { iss: claims.iss, sub: claims.sub, aud: claims.aud, exp: claims.exp, cnf: claims.cnf } }, null, 2)}\n`,
      );
      return 0;
    }),

  subscribe: ({ options, args }) =>
    withScef(options, async (bundle, scef) => {
      const [api, body] = args;
      if (!api || !body) throw new Usage('subscribe <api> <json>');
      const answer = await t8Call(bundle, scef, { method: 'POST', url: subscriptionsUrl(bundle, api), json: jsonArg(body), jose: options.jose });
      const ok = report(answer);
      if (!ok) return 1;
      say(JSON.stringify(answer.json, null, 2));
      // 201: a subscription, at its Location; 200: a one-time report, answered at once.
      process.stdout.write(`${answer.status === 201 ? answer.headers.location : JSON.stringify(answer.json)}\n`);
      return 0;
    }),

  get: ({ options, args }) => {
    if (!args[0]) throw new Usage('get <url>');
    return show(options, () => args[0]);
  },

  list: ({ options, args }) => {
    if (!args[0]) throw new Usage('list <api>');
    return show(options, bundle => subscriptionsUrl(bundle, args[0]));
  },

  delete: ({ options, args }) =>
    withScef(options, async (bundle, scef) => {
      if (!args[0]) throw new Usage('delete <url>');
      const answer = await t8Call(bundle, scef, { method: 'DELETE', url: args[0], scopes: [apiOf(bundle, args[0])] });
      return report(answer) ? 0 : 1;
    }),

  receive: ({ options }) => {
    if (!options.bundle) throw new Usage('--bundle <dir> is required');
    if (!options.port || !options.cert) throw new Usage('receive needs --port <port> and --cert <dir>');
    const count = options.count === undefined ? Infinity : Number(options.count);
    return new Promise((resolve, reject) => {
      (async () => {
        const bundle = await loadBundle(options.bundle);
        const scef = scefClient(bundle);
        let received = 0;
        let server;
        const stop = async code => {
          server?.close();
          await scef.close();
          resolve(code);
        };
        server = await startReceiver(bundle, scef, {
          host: options.host?.[0] ?? '127.0.0.1',
          port: Number(options.port),
          certDir: options.cert,
          onNotification: n => {
            // One line per verified notification, for people and for scripts.
            process.stdout.write(`${JSON.stringify({ verified: true, ...n })}\n`);
            if (++received >= count) void stop(0);
          },
          onRefused: r => say(`refused ${r.path}: ${r.status} ${r.why}`),
        });
        const { address, port } = server.address();
        say(`receiving notifications on https://${address}:${port} (mTLS: only the SCEF notifier of ${bundle.trustDomain})`);
        process.once('SIGINT', () => void stop(0));
        process.once('SIGTERM', () => void stop(0));
      })().catch(reject);
    });
  },
};

async function main() {
  let parsed;
  try {
    parsed = parse(process.argv.slice(2));
    const run = commands[parsed.command];
    if (!run) throw new Usage(`commands: ${Object.keys(commands).join(', ')}`);
    return await run(parsed);
  } catch (err) {
    if (err instanceof Usage || err?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      say(`${NAME}: ${err.message}`);
      return 2;
    }
    if (err instanceof oauth.ResponseBodyError) say(`${NAME}: token endpoint: ${err.error}${err.error_description ? `: ${err.error_description}` : ''}`);
    else if (err instanceof Refused) say(`${NAME}: response refused: ${err.message}`);
    else say(`${NAME}: ${err?.message ?? String(err)}${err?.cause?.message ? ` (${err.cause.message})` : ''}`);
    return 1;
  }
}

process.exitCode = await main();
