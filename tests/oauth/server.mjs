// A real OAuth 2 authorization server (oidc-provider) on 127.0.0.1 for the
// OAuth tests. It issues JWT access tokens (RS256, its own key, published at
// /jwks) for the resource "imap" and rotating refresh tokens; revocation,
// introspection and the device flow are on. The user's part of a sign-in
// (login and consent pages) is answered at once for the test account, so a
// client following the redirects of the authorization URL with cookies
// ends at its redirect_uri with a code.
//
//   node server.mjs   prints one line {"issuer": ..., "port": N} when ready.
//
// Environment: OAUTH_ACCESS_TTL (seconds, default 3600), OAUTH_ACCOUNT
// (default "alice@example.test"), OAUTH_CLIENT_ID/SECRET (defaults below),
// OAUTH_KEY_DIR (write the signing keys there as PEM, laid out for
// Dovecot's local JWT validation: DIR/default/ALG/KID), OAUTH_TOKEN_LOG
// (append every token the token endpoint hands out, one per line: the
// canary test looks for them everywhere else).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

// stdout carries only the ready line (its reader may close it after).
console.log = console.info = (...a) => console.error(...a);
process.stdout.on('error', () => {});

const ttl = Number(process.env.OAUTH_ACCESS_TTL || 3600);
const account = process.env.OAUTH_ACCOUNT || 'alice@example.test';
const clientId = process.env.OAUTH_CLIENT_ID || 'mailkeep-test';
const clientSecret = process.env.OAUTH_CLIENT_SECRET || 'test-client-secret-not-a-token';
const RESOURCE = 'imap://mail.test';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    application_type: 'native', // loopback redirect URIs match on any port (RFC 8252 7.3)
    // The CLI's loopback receiver, and serve's redirect back (docs/oauth.md).
    redirect_uris: ['http://127.0.0.1/', 'http://127.0.0.1/mailkeep/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token',
      'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  scopes: ['openid', 'offline_access', 'mail'],
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'mail',
        audience: RESOURCE,
        accessTokenFormat: 'jwt',
        accessTokenTTL: ttl,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // OAUTH_JWT_TYP: the access tokens' "typ" header (default RFC 9068's
  // "at+jwt"; Dovecot 2.3's local validation wants "JWT").
  formats: {
    customizers: {
      jwt: (ctx, token, jwt) => {
        if (process.env.OAUTH_JWT_TYP) jwt.header = { typ: process.env.OAUTH_JWT_TYP };
      },
    },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: ttl, RefreshToken: 14 * 86400, Grant: 14 * 86400 },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: id }) }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId ||
      ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
});
provider.proxy = false;

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: account } },
      { mergeWithLastSubmission: false });
  }
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant) grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes))
      grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } },
    { mergeWithLastSubmission: true });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => { res.statusCode = 500; res.end(String(e)); });
    return;
  }
  if (req.url.startsWith('/test/html')) {
    // A provider (or a proxy in front of it) answering with an error page.
    res.writeHead(502, { 'Content-Type': 'text/html' });
    res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    return;
  }
  callback(req, res);
});

if (process.env.OAUTH_TOKEN_LOG) {
  provider.on('grant.success', (ctx) => {
    const b = ctx.body || {};
    for (const k of ['access_token', 'refresh_token'])
      if (b[k]) fs.appendFileSync(process.env.OAUTH_TOKEN_LOG, b[k] + '\n');
  });
}

if (process.env.OAUTH_KEY_DIR) {
  const res = await fetch(`${issuer}/jwks`);
  const { keys } = await res.json();
  for (const jwk of keys) {
    const alg = jwk.alg || 'RS256';
    const dir = `${process.env.OAUTH_KEY_DIR}/default/${alg}`;
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const pem = crypto.createPublicKey({ key: jwk, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' });
    fs.writeFileSync(`${dir}/${jwk.kid || 'default'}`, pem, { mode: 0o644 });
  }
}

process.stdout.write(JSON.stringify({ issuer, port }) + '\n');
