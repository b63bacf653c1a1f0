// A real OpenID provider for the login end-to-end tests: oidc-provider (OpenID Certified) on
// 127.0.0.1 with its development login and consent pages. PKCE is required for every client, so a
// login through it proves the relying party sent code_challenge_method=S256.
//
// Environment: OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URIS (JSON array).
// Stdout: one JSON line {"issuer": ...} once listening, then one {"authorize": {query}} line per
// authorization request. Runs until SIGTERM.
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OP_CLIENT_ID,
    client_secret: process.env.OP_CLIENT_SECRET,
    redirect_uris: JSON.parse(process.env.OP_REDIRECT_URIS),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true, name: id }),
  }),
  // ID tokens carry the claims directly (no userinfo call needed).
  conformIdTokenClaims: false,
  cookies: { keys: ['gatehouse-e2e-cookie-key-0123456789'] },
  features: { devInteractions: { enabled: true } },
});
provider.use(async (ctx, next) => {
  if (ctx.path === '/auth') process.stdout.write(JSON.stringify({ authorize: ctx.query }) + '\n');
  await next();
});
server.on('request', provider.callback());
process.stdout.write(JSON.stringify({ issuer }) + '\n');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
