// A test OpenID provider (npm oidc-provider) for kerbgate's OIDC pre-authentication:
// one client, users whose "upn" claim is their UPN, and an interaction endpoint that
// signs the user named by the login_hint (or alice) in and grants consent at once.
// JWKS (a JWK set of private keys), when set, is what it signs with (ID tokens
// with the last key's alg); its development-only keys (RS256) otherwise.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT), issuer = process.env.ISSUER;
const users = { alice: 'alice@example.test', bob: 'bob@example.test' };
const jwks = process.env.JWKS ? JSON.parse(process.env.JWKS) : undefined;
const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID, client_secret: process.env.CLIENT_SECRET,
    redirect_uris: process.env.REDIRECT_URIS.split(','), grant_types: ['authorization_code'],
    response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
    ...(jwks ? { id_token_signed_response_alg: jwks.keys.at(-1).alg } : {}),
  }],
  pkce: { required: () => true, methods: ['S256'] },
  claims: { openid: ['sub'], profile: ['upn', 'preferred_username'], email: ['email'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (ctx, id) => users[id] ? {
    accountId: id,
    claims: () => ({ sub: id, upn: users[id], preferred_username: id, email: users[id] }),
  } : undefined,
  cookies: { keys: ['kerbgate-test-provider-cookie-key'] },
  ...(jwks ? { jwks } : {}),
});
provider.proxy = true;
// USERINFO_SUB makes the UserInfo answer name another subject than the ID token: a
// misbehaving or mixed-up provider, which OIDC Core §5.3.2 says the client must refuse.
if (process.env.USERINFO_SUB) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/me' && ctx.status === 200 && ctx.body) {
      const body = typeof ctx.body === 'string' ? JSON.parse(ctx.body) : { ...ctx.body };
      body.sub = process.env.USERINFO_SUB;
      ctx.body = body;
    }
  });
}
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!m) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const who = details.params.login_hint && users[details.params.login_hint] ? details.params.login_hint : (process.env.USER_ID || 'alice');
  const grant = new provider.Grant({ accountId: who, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: who }, consent: { grantId } }, { mergeWithLastSubmission: false });
});
provider.listen(port, '127.0.0.1', () => console.log('listening ' + issuer));
