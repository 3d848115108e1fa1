'use strict';
// OAuth through jsforce: the password grant behind conn.login(), the web-server (authorization
// code) flow with and without PKCE, refresh on 401, refresh-token rotation, logout and revoke.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useFake, jsforce, ADMIN, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = require('./lib/fake');

const fake = useFake();

/** The values a browser would submit from the login page's form, plus the user's credentials. */
function loginForm(html, username, password) {
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form.set(m[1], m[2].replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&amp;/g, '&'));
  }
  form.set('username', username);
  form.set('pw', password);
  return form;
}

/** Opens jsforce's authorization URL, logs in on the page, and returns the redirect's query. */
async function signIn(oauth2, { state = 'st-42', username = ADMIN.username, password = ADMIN.password } = {}) {
  const url = oauth2.getAuthorizationUrl({ state, scope: 'api refresh_token' });
  const page = await fetch(url);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /id="username"/);
  assert.match(html, /id="password" name="pw"/);
  assert.match(html, /<form[^>]+action="\/services\/oauth2\/authorize"/);
  const posted = await fetch(new URL('/services/oauth2/authorize', url), {
    method: 'POST',
    body: loginForm(html, username, password),
    redirect: 'manual',
  });
  return { status: posted.status, location: posted.headers.get('location'), html: await posted.text() };
}

function codeFrom(location) {
  const url = new URL(location);
  assert.equal(`${url.origin}${url.pathname}`, REDIRECT_URI);
  // URLSearchParams decodes the code, whose '==' arrives percent-encoded.
  return { code: url.searchParams.get('code'), state: url.searchParams.get('state') };
}

async function tokens() {
  return (await fake.control('GET', '/_fake/tokens')).tokens;
}

async function expireAccessTokens({ ttl = 60 } = {}) {
  await fake.control('POST', '/_fake/config', { access_token_ttl: ttl });
}

test('conn.login() uses the OAuth password grant with the client id and secret', async () => {
  const state = await fake.control('GET', '/_fake/state');
  const conn = fake.connection();
  const info = await conn.login(ADMIN.username, ADMIN.password);
  assert.deepEqual(info, {
    id: state.adminUserId,
    organizationId: state.orgId,
    url: `${fake.http}/id/${state.orgId}/${state.adminUserId}`,
  });
  assert.equal(conn.instanceUrl, fake.http);
  assert.ok(conn.accessToken.startsWith(state.orgId.slice(0, 15) + '!'));

  const [grant] = await fake.requests('/services/oauth2/token');
  const form = new URLSearchParams(grant.body);
  assert.equal(form.get('grant_type'), 'password');
  assert.equal(form.get('client_id'), CLIENT_ID);
  assert.equal(form.get('client_secret'), CLIENT_SECRET);
  assert.equal(form.get('username'), ADMIN.username);

  const me = await conn.identity();
  assert.equal(me.username, ADMIN.username);
  assert.equal(me.user_id, state.adminUserId);
  const users = await conn.query('SELECT Id, Username FROM User');
  assert.deepEqual(users.records.map((u) => u.Username), [ADMIN.username]);
  const live = (await tokens()).filter((t) => t.type === 'access' && !t.revoked);
  assert.deepEqual(live.map((t) => t.token), [conn.accessToken]);
});

test('a wrong password or client secret is refused with the OAuth error name', async () => {
  await assert.rejects(fake.connection().login(ADMIN.username, 'nope'), (err) => {
    assert.equal(err.name, 'invalid_grant');
    assert.equal(err.message, 'authentication failure');
    return true;
  });
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: fake.http, clientId: CLIENT_ID, clientSecret: 'wrong' },
  });
  await assert.rejects(conn.login(ADMIN.username, ADMIN.password), { name: 'invalid_client' });
});

test('authorization code flow: login page, redirect with code and state, conn.authorize(code)', async () => {
  const conn = fake.connection();
  const signedIn = await signIn(conn.oauth2);
  assert.equal(signedIn.status, 302);
  const { code, state } = codeFrom(signedIn.location);
  assert.equal(state, 'st-42');
  assert.ok(code.endsWith('=='), code);
  assert.ok(signedIn.location.includes('%3D%3D'), 'the code arrives URL-encoded');

  const info = await conn.authorize(code);
  assert.equal(conn.instanceUrl, fake.http);
  assert.ok(conn.refreshToken.startsWith('5Aep861'), conn.refreshToken);
  assert.equal(info.id, (await fake.control('GET', '/_fake/state')).adminUserId);
  const form = new URLSearchParams((await fake.requests('/services/oauth2/token'))[0].body);
  assert.equal(form.get('grant_type'), 'authorization_code');
  assert.equal(form.get('redirect_uri'), REDIRECT_URI);
  assert.equal(form.get('code'), code);
  assert.equal((await conn.query('SELECT COUNT() FROM User')).totalSize, 1);

  // A code is single-use.
  await assert.rejects(fake.connection().oauth2.requestToken(code), {
    name: 'invalid_grant',
    message: 'invalid authorization code',
  });
});

test('a wrong password on the login page shows the error and issues no code', async () => {
  const signedIn = await signIn(fake.connection().oauth2, { password: 'bad' });
  assert.equal(signedIn.status, 200);
  assert.equal(signedIn.location, null);
  assert.match(signedIn.html, /Please check your username and password/);
});

test('oauth2.requestToken(code) with PKCE (useVerifier) sends and checks the verifier', async () => {
  const oauth2 = new jsforce.OAuth2({
    loginUrl: fake.http, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI,
    useVerifier: true,
  });
  assert.match(oauth2.getAuthorizationUrl({}), /code_challenge=/);
  const { code } = codeFrom((await signIn(oauth2)).location);
  const res = await oauth2.requestToken(code);
  assert.equal(res.token_type, 'Bearer');
  assert.equal(res.instance_url, fake.http);
  assert.ok(res.refresh_token);
  const form = new URLSearchParams((await fake.requests('/services/oauth2/token'))[0].body);
  assert.equal(form.get('code_verifier'), oauth2.codeVerifier);

  // The same flow with another client's verifier fails.
  const other = new jsforce.OAuth2({
    loginUrl: fake.http, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI,
    useVerifier: true,
  });
  const { code: code2 } = codeFrom((await signIn(oauth2)).location);
  await assert.rejects(other.requestToken(code2), { name: 'invalid_grant', message: 'invalid code verifier' });
});

test('an expired access token: jsforce refreshes by itself, fires "refresh" and retries', async () => {
  await fake.control('POST', '/_fake/clock', { now: '2026-03-02T09:00:00Z' });
  await expireAccessTokens();
  const conn = fake.connection();
  await conn.authorize(codeFrom((await signIn(conn.oauth2)).location).code);
  const first = conn.accessToken;
  await fake.load('Contact', [{ LastName: 'Before' }, { LastName: 'After' }]);
  await fake.control('POST', '/_fake/clock', { advance: 61 });
  await fake.control('DELETE', '/_fake/requests');

  const refreshed = [];
  conn.on('refresh', (accessToken, res) => refreshed.push({ accessToken, res }));
  const result = await conn.query('SELECT LastName FROM Contact ORDER BY LastName');
  assert.deepEqual(result.records.map((r) => r.LastName), ['After', 'Before']);

  assert.equal(refreshed.length, 1);
  assert.notEqual(refreshed[0].accessToken, first);
  assert.equal(conn.accessToken, refreshed[0].accessToken);
  assert.equal(refreshed[0].res.refresh_token, undefined, 'no rotation: no new refresh token');
  const log = (await fake.requests()).map((r) => [r.method, r.path, r.status]);
  assert.deepEqual(log, [
    ['GET', '/services/data/v50.0/query', 401],
    ['POST', '/services/oauth2/token', 200],
    ['GET', '/services/data/v50.0/query', 200],
  ]);
  const form = new URLSearchParams((await fake.requests('/services/oauth2/token'))[0].body);
  assert.equal(form.get('grant_type'), 'refresh_token');
  assert.equal(form.get('refresh_token'), conn.refreshToken);
  const old = (await tokens()).find((t) => t.token === first);
  assert.equal(old.expired, true);
});

test('a password login is renewed by logging in again when its token expires', async () => {
  await fake.control('POST', '/_fake/clock', { now: '2026-03-02T09:00:00Z' });
  await expireAccessTokens();
  const conn = await fake.login();
  const first = conn.accessToken;
  await fake.control('POST', '/_fake/clock', { advance: 3600 });
  let fired = 0;
  conn.on('refresh', () => fired++);
  assert.equal((await conn.query('SELECT COUNT() FROM User')).totalSize, 1);
  assert.equal(fired, 1);
  assert.notEqual(conn.accessToken, first);
  const grants = (await fake.requests('/services/oauth2/token')).map((r) => new URLSearchParams(r.body).get('grant_type'));
  assert.deepEqual(grants, ['password', 'password']);
});

test('with refresh-token rotation the old refresh token stops working', async () => {
  await fake.control('POST', '/_fake/clock', { now: '2026-03-02T09:00:00Z' });
  await fake.control('POST', '/_fake/config', { rotate_refresh_tokens: true, access_token_ttl: 60 });
  const conn = fake.connection();
  await conn.authorize(codeFrom((await signIn(conn.oauth2)).location).code);
  const original = conn.refreshToken;

  const refreshed = [];
  conn.on('refresh', (_token, res) => refreshed.push(res));
  await fake.control('POST', '/_fake/clock', { advance: 120 });
  assert.equal((await conn.query('SELECT COUNT() FROM User')).totalSize, 1);
  assert.equal(refreshed.length, 1);
  const rotated = refreshed[0].refresh_token;
  assert.ok(rotated && rotated !== original, 'a rotated refresh token comes back');

  const listing = await tokens();
  const old = listing.find((t) => t.token === original);
  assert.equal(old.revoked, true);
  assert.equal(old.replacedBy, rotated);
  assert.equal(listing.find((t) => t.token === rotated).revoked, false);
  await assert.rejects(conn.oauth2.refreshToken(original), {
    name: 'invalid_grant',
    message: 'expired access/refresh token',
  });

  // jsforce keeps the refresh token it started with: the next expiry fails until the app
  // stores the rotated one (from the "refresh" event) itself.
  await fake.control('POST', '/_fake/clock', { advance: 120 });
  await assert.rejects(conn.query('SELECT COUNT() FROM User'), /Unable to refresh session due to: expired access\/refresh token/);
  conn.refreshToken = rotated;
  conn.on('refresh', (_token, res) => {
    conn.refreshToken = res.refresh_token;
  });
  assert.equal((await conn.query('SELECT COUNT() FROM User')).totalSize, 1);
  await fake.control('POST', '/_fake/clock', { advance: 120 });
  assert.equal((await conn.query('SELECT COUNT() FROM User')).totalSize, 1);
  assert.equal(refreshed.length, 3);
});

test('conn.logout() revokes the access token; the session is then invalid', async () => {
  const conn = await fake.login();
  const token = conn.accessToken;
  await conn.logout();
  assert.equal(conn.accessToken, null);
  const entry = (await tokens()).find((t) => t.token === token);
  assert.equal(entry.revoked, true);
  const [revoke] = await fake.requests('/services/oauth2/revoke');
  assert.equal(revoke.status, 200);
  assert.equal(new URLSearchParams(revoke.body).get('token'), token);

  const stale = new jsforce.Connection({ instanceUrl: fake.http, accessToken: token });
  await assert.rejects(stale.query('SELECT Id FROM User'), {
    errorCode: 'INVALID_SESSION_ID',
    message: 'Session expired or invalid',
  });
});

test('conn.logout(true) revokes the refresh token and the access tokens issued from it', async () => {
  const conn = fake.connection();
  await conn.authorize(codeFrom((await signIn(conn.oauth2)).location).code);
  const { accessToken, refreshToken } = conn;
  await conn.logout(true);
  const listing = await tokens();
  assert.equal(listing.find((t) => t.token === refreshToken).revoked, true);
  assert.equal(listing.find((t) => t.token === accessToken).revoked, true);
  await assert.rejects(fake.connection().oauth2.refreshToken(refreshToken), { name: 'invalid_grant' });
});

test('oauth2.revokeToken() of an unknown token is refused with unsupported_token_type', async () => {
  const oauth2 = fake.connection().oauth2;
  // jsforce reads the revoke endpoint's error as a form-encoded body, as Salesforce sends it.
  await assert.rejects(oauth2.revokeToken('not-a-token'), {
    name: 'unsupported_token_type',
    message: 'this token type is not supported',
  });
  const [call] = await fake.requests('/services/oauth2/revoke');
  assert.equal(call.status, 400);
});
