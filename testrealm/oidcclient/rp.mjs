// A relying party on npm openid-client (6.x) for kerbgate's OpenID Provider tests.
// node rp.mjs start  '{"issuer","clientId","clientSecret","redirectUri"[,"scope"]}'
//   prints {url, verifier, state, nonce}: the authorization URL (PKCE S256), which
//   the Go test opens with a real Kerberos ticket. scope: "openid profile email
//   offline_access" when absent.
// node rp.mjs finish '{..., "callback", "verifier", "state", "nonce", "postLogout"}'
//   redeems the callback's code, then userinfo, refresh, introspection (with
//   client_secret_basic and with client_secret_post), revocation (client_secret_post)
//   and the end_session URL; prints what each gave.
// node rp.mjs redeem '{..., "callback", "verifier", "state", "nonce"}'
//   redeems the callback's code; prints {refreshToken}.
// node rp.mjs refresh '{..., "refreshToken"}'
//   refreshes; prints {result}: "ok" or the OAuth error.
import * as client from 'openid-client';

const [cmd, json] = process.argv.slice(2);
const a = JSON.parse(json);
// client_secret_basic: the method kerbgate registers for a client with a secret.
const config = await client.discovery(new URL(a.issuer), a.clientId, a.clientSecret,
  client.ClientSecretBasic(a.clientSecret),
  { execute: [client.allowInsecureRequests] });
// The same client authenticating with client_secret_post (RFC 6749 §2.3.1).
const configPost = await client.discovery(new URL(a.issuer), a.clientId, a.clientSecret,
  client.ClientSecretPost(a.clientSecret),
  { execute: [client.allowInsecureRequests] });
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const failure = async (f) => {
  try { await f(); return 'ok'; } catch (e) { return e.error || e.code || String(e); }
};

if (cmd === 'start') {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: a.redirectUri, scope: a.scope || 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    state, nonce,
  });
  out({ url: url.href, verifier, state, nonce });
} else if (cmd === 'finish') {
  const tokens = await client.authorizationCodeGrant(config, new URL(a.callback),
    { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const introspection = await client.tokenIntrospection(config, refreshed.access_token);
  const introspectionPost = await client.tokenIntrospection(configPost, refreshed.access_token);
  await client.tokenRevocation(configPost, refreshed.refresh_token);
  const refreshAfterRevocation = await failure(() => client.refreshTokenGrant(config, refreshed.refresh_token));
  const introspectionAfterRevocation = await client.tokenIntrospection(configPost, refreshed.access_token);
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token, post_logout_redirect_uri: a.postLogout, state: 'bye',
  });
  out({
    claims, userinfo,
    rotated: refreshed.refresh_token !== tokens.refresh_token && refreshed.access_token !== tokens.access_token,
    refreshedSub: refreshed.claims()?.sub,
    introspection, introspectionPost, refreshAfterRevocation, introspectionAfterRevocation,
    endSession: endSession.href,
  });
} else if (cmd === 'redeem') {
  const tokens = await client.authorizationCodeGrant(config, new URL(a.callback),
    { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce });
  out({ refreshToken: tokens.refresh_token });
} else if (cmd === 'refresh') {
  out({ result: await failure(() => client.refreshTokenGrant(config, a.refreshToken)) });
} else {
  throw new Error(`unknown command ${cmd}`);
}
