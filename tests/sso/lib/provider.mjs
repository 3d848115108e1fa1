// A real OpenID provider (oidc-provider) for the single sign-on tests, on 127.0.0.1 and the
// port in PORT. One static confidential client (CLIENT_ID / CLIENT_SECRET / REDIRECT_URI).
// Its development login page accepts any login: the login is the user's e-mail address,
// verified by the provider unless it ends with "#unverified".
//
// For the failure cases the test switches modes through POST /__test/mode?jwks=other|own:
// `other` serves a key set of another key, so the ID tokens (signed with the provider's own
// key) no longer match the published keys. GET /impostor/.well-known/openid-configuration is
// this provider's discovery document claiming the issuer `<issuer>/impostor`: a client
// configured with that issuer is sent tokens whose `iss` is the real one.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

function rsaJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}
const own = rsaJwk();
const other = rsaJwk();
const publicOf = ({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use });
let jwksMode = 'own';

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [own] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // Put the e-mail claims into the ID token itself (kontor reads no userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const [email, flag] = id.split('#');
    return {
      accountId: id,
      async claims() {
        return { sub: id, email, email_verified: flag !== 'unverified' };
      },
    };
  },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/mode' && ctx.method === 'POST') {
    jwksMode = ctx.query.jwks === 'other' ? 'other' : 'own';
    ctx.body = { jwks: jwksMode };
    return;
  }
  if (ctx.path === '/impostor/.well-known/openid-configuration') {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    ctx.body = { ...(await res.json()), issuer: `${issuer}/impostor` };
    return;
  }
  await next();
  if (ctx.path === '/jwks' && jwksMode === 'other') {
    ctx.body = { keys: [publicOf(other)] };
  }
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
