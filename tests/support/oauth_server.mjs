// A real OAuth2 authorization server for the end-to-end tests: oidc-provider with refresh-token
// rotation and reuse detection (reusing a consumed refresh token revokes the whole family).
//
// usage: node oauth_server.mjs PORT_FILE
// Listens on 127.0.0.1 (a free port, written to PORT_FILE). Test-only route:
//   POST /_test/mint?client_id=ID  ->  {"refresh_token": "..."}  (a first refresh token, as a login would give)
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const portFile = process.argv[2];
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const common = { grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['https://client.example/cb'], response_types: ['code'] };
const provider = new Provider(issuer, {
  clients: [
    { ...common, client_id: 'ci-basic', client_secret: 'basic-client-secret-0123456789', token_endpoint_auth_method: 'client_secret_basic' },
    { ...common, client_id: 'ci-post', client_secret: 'post-client-secret-0123456789', token_endpoint_auth_method: 'client_secret_post' },
    { ...common, client_id: 'ci-public', token_endpoint_auth_method: 'none' },
  ],
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  scopes: ['openid', 'offline_access', 'api'],
  ttl: { AccessToken: 3600, RefreshToken: 86400 * 14, Grant: 86400 * 14 },
});
provider.proxy = false;

const callback = provider.callback();
server.on('request', async (req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/_test/mint')) {
    try {
      const clientId = new URL(req.url, issuer).searchParams.get('client_id') || 'ci-basic';
      const client = await provider.Client.find(clientId);
      const grant = new provider.Grant({ accountId: 'ci-user', clientId });
      grant.addOIDCScope('openid offline_access api');
      const grantId = await grant.save();
      const rt = new provider.RefreshToken({ accountId: 'ci-user', client, grantId, gty: 'authorization_code', scope: 'openid offline_access api' });
      const value = await rt.save();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ refresh_token: value }));
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e && e.stack));
    }
    return;
  }
  callback(req, res);
});

fs.writeFileSync(portFile + '.tmp', String(port));
fs.renameSync(portFile + '.tmp', portFile);
process.on('SIGTERM', () => process.exit(0));
