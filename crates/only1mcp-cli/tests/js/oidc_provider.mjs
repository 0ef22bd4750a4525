// A real OpenID Provider for the auth tests: npm's `oidc-provider` (installed by
// `cargo xtask peers` into peers/oidc, run with Node 22).
//
//   node oidc_provider.mjs PORT KEYFILE
//
// Issuer: http://127.0.0.1:PORT. Clients (client credentials, secret = id + "-secret"):
// `svc-dev` (roles [dev]), `svc-ops` (roles [ops]), `svc-short` (roles [dev], tokens that
// expire after 2 s). Every access token is a JWT (RS256) for the resource the client asks for
// (RFC 8707), with scope `mcp:tools` and a `roles` claim.
//
// KEYFILE holds the signing keys (a JWKS with private parts); it is made if missing, so two
// providers on two ports can share one key (the wrong-issuer test). `POST /__rotate` makes a
// new key, signs with it from then on, and keeps the old one published.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, keyFile] = process.argv.slice(2);
const peers = process.env.ONLY1MCP_PEERS;
const { default: Provider } = await import(
  pathToFileURL(join(peers, 'oidc/node_modules/oidc-provider/lib/index.js')).href
);

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys;
if (existsSync(keyFile)) {
  keys = JSON.parse(readFileSync(keyFile, 'utf8')).keys;
} else {
  keys = [newKey()];
  writeFileSync(keyFile, JSON.stringify({ keys }));
}

const issuer = `http://127.0.0.1:${port}`;
const roles = { 'svc-dev': ['dev'], 'svc-ops': ['ops'], 'svc-short': ['dev'] };

function provider() {
  const clients = Object.keys(roles).map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: 'mcp:tools',
  }));
  const oidc = new Provider(issuer, {
    clients,
    jwks: { keys },
    scopes: ['mcp:tools'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'mcp:tools',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    ttl: {
      ClientCredentials: (_ctx, _token, client) => (client.clientId === 'svc-short' ? 2 : 600),
    },
    extraTokenClaims: (_ctx, token) => ({ roles: roles[token.clientId] ?? [] }),
  });
  oidc.proxy = false;
  return oidc.callback();
}

let handler = provider();

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__rotate') {
    keys = [newKey(), ...keys];
    writeFileSync(keyFile, JSON.stringify({ keys }));
    handler = provider();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  handler(req, res);
});
server.listen(Number(port), '127.0.0.1', () => {
  process.stderr.write(`oidc-provider listening on ${issuer}\n`);
});
