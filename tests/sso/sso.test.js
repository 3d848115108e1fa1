'use strict';
// Single sign-on through a real OpenID provider (oidc-provider, lib/provider.mjs) in headless
// Chromium: a super admin sets it up in Settings, users sign in through the provider's login
// page, and every way it must fail fails with a page of its own and an audit entry.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startKontor, freePort } = require('./lib/kontor');

const CLIENT_ID = 'kontor-test';
const CLIENT_SECRET = `secret-${Date.now()}-${process.pid}`;

let kontor;
let idp;
let idpLog = '';
let account;
let admin;

async function startProvider(redirectUri) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(__dirname, 'lib', 'provider.mjs')], {
    env: { ...process.env, PORT: String(port), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI: redirectUri },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the provider did not start:\n${idpLog}`)), 20_000);
    const keep = (chunk) => {
      idpLog += chunk.toString();
      const m = idpLog.match(/ready (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('exit', (code) => reject(new Error(`the provider exited (${code}):\n${idpLog}`)));
  });
  return { child, issuer, port };
}

async function jwksMode(mode) {
  const res = await fetch(`${idp.issuer}/__test/mode?jwks=${mode}`, { method: 'POST' });
  assert.equal(res.status, 200);
}

before(async () => {
  let publicUrl;
  kontor = await startKontor({
    env: ({ baseUrl }) => {
      publicUrl = baseUrl;
      return { KONTOR_PUBLIC_URL: baseUrl };
    },
  });
  idp = await startProvider(`${publicUrl}/app/login/sso/callback`);
  account = await kontor.account();
  admin = await kontor.user(account.id, { role: 'super-admin', email: `boss-${Date.now()}@example.com` });
});
after(async () => {
  idp?.child.kill('SIGTERM');
  await kontor?.stop();
});

async function withBrowser(fn) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-sso-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-quic'],
  });
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] || (await context.newPage());
  try {
    await fn(page);
  } catch (e) {
    e.message += `\n(page ${page.url()})\n--- kontor log ---\n${kontor.log.slice(-3000)}\n--- provider log ---\n${idpLog.slice(-2000)}`;
    throw e;
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function passwordSignIn(page, user) {
  await page.goto(kontor.url('/app/login'));
  await page.locator('#email').fill(user.email);
  await page.locator('#password').fill(user.password);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === kontor.url('/app/login') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.waitForLoadState('load');
  return res;
}

async function configure(page, { issuer = idp.issuer, domains = 'example.com', required = false } = {}) {
  await page.goto(kontor.url('/app/settings/sso'));
  await page.locator('#issuer').fill(issuer);
  await page.locator('#client_id').fill(CLIENT_ID);
  await page.locator('#client_secret').fill(CLIENT_SECRET);
  await page.locator('#domains').fill(domains);
  await page.locator('#required').setChecked(required);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(kontor.url('/app/settings/sso?done=sso'));
}

/** As the super admin: sets the account's SSO up. */
async function setUp(opts) {
  await withBrowser(async (page) => {
    const res = await passwordSignIn(page, admin);
    assert.equal(res.status(), 303);
    await configure(page, opts);
  });
}

/**
 * Starts SSO with `who`, signs in at the provider as `login`, and returns the response of
 * kontor's callback (the page then shown is the browser's current page).
 */
async function ssoSignIn(page, who, login) {
  await page.goto(kontor.url('/app/login'));
  await page.locator('#sso-link').click();
  await page.locator('#who').fill(who);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(idp.issuer));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  const callback = page.waitForResponse((r) => r.url().startsWith(kontor.url('/app/login/sso/callback')));
  // The consent page: continue.
  await page.locator('button[type="submit"]').click();
  const res = await callback;
  await page.waitForLoadState('load');
  return res;
}

test('the settings page refuses a plain-HTTP issuer off loopback and keeps the secret hidden', async () => {
  await withBrowser(async (page) => {
    await passwordSignIn(page, admin);
    await page.goto(kontor.url('/app/settings/sso'));
    assert.match(await page.locator('#redirect-uri').innerText(), /\/app\/login\/sso\/callback$/);
    await page.locator('#issuer').fill('http://idp.example.com');
    await page.locator('#client_id').fill(CLIENT_ID);
    await page.locator('#client_secret').fill(CLIENT_SECRET);
    await page.locator('#domains').fill('example.com');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url() === kontor.url('/app/settings/sso') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Save' }).click(),
    ]);
    assert.equal(res.status(), 400);
    assert.match(await page.locator('#issuer-error').innerText(), /HTTPS/);
    await configure(page);
    assert.equal(await page.locator('#client_secret').inputValue(), '', 'the secret is never shown again');
    assert.ok(!(await page.content()).includes(CLIENT_SECRET));
  });
});

test('a user signs in with SSO: the session is sso and a restore asks no code', async () => {
  const user = await kontor.user(account.id, { role: 'super-admin' });
  await setUp();
  await withBrowser(async (page) => {
    const res = await ssoSignIn(page, user.email, user.email);
    assert.equal(res.status(), 303);
    await page.waitForURL(kontor.url('/app/objects/contacts'));
    await page.goto(kontor.url('/app/account/security'));
    assert.match(await page.locator('main').innerText(), /signed in with sso\./);

    // A restore, which asks password sessions for a fresh code, asks this one for none.
    const token = await kontor.token(account.id);
    await kontor.contact(token, { email: `r${Date.now()}@example.com`, firstname: 'Ada' });
    const backupId = await kontor.backup(token);
    await page.goto(kontor.url('/app/settings/backups'));
    const row = page.locator(`#backup-${backupId}`);
    await row.getByRole('button', { name: `Actions for backup ${backupId}` }).hover();
    await row.getByRole('link', { name: 'Restore' }).click();
    const dialog = page.getByRole('dialog', { name: `Restore from backup ${backupId}` });
    await dialog.locator('#restore-object').selectOption('contacts');
    await dialog.locator('#prop-firstname').check();
    await dialog.getByRole('button', { name: 'Review' }).click();
    await page.waitForURL(new RegExp(`/app/settings/backups/${backupId}/restore/\\d+$`));
    assert.equal(await page.locator('#restore-code').count(), 0, 'no code is asked');

    // The same callback again: its state is spent.
    const again = await page.goto(res.url());
    assert.equal(again.status(), 401);
    assert.match(await page.locator('main').innerText(), /expired or was already used/);
  });
});

test('an e-mail the account does not know is refused', async () => {
  await setUp();
  await withBrowser(async (page) => {
    const res = await ssoSignIn(page, account.id, `nobody-${Date.now()}@example.com`);
    assert.equal(res.status(), 401);
    assert.match(await page.locator('main').innerText(), /No active user of this account/);
  });
});

test('an unverified e-mail is refused', async () => {
  const user = await kontor.user(account.id);
  await setUp();
  await withBrowser(async (page) => {
    const res = await ssoSignIn(page, user.email, `${user.email}#unverified`);
    assert.equal(res.status(), 401);
    assert.match(await page.locator('main').innerText(), /has not verified the e-mail address/);
  });
});

test('an address outside the allowed domains is refused', async () => {
  const user = await kontor.user(account.id, { email: `out-${Date.now()}@other.net` });
  await setUp();
  await withBrowser(async (page) => {
    // By e-mail, the account's SSO does not serve that domain at all.
    await page.goto(kontor.url('/app/login/sso'));
    await page.locator('#who').fill(user.email);
    await page.getByRole('button', { name: 'Continue' }).click();
    assert.match(await page.locator('#sso-error').innerText(), /not set up/);
    // By account ID, the provider's answer is checked.
    const res = await ssoSignIn(page, account.id, user.email);
    assert.equal(res.status(), 401);
    assert.match(await page.locator('main').innerText(), /not in a domain this account allows/);
  });
});

test('an ID token signed with a key the provider does not publish is refused', async () => {
  const user = await kontor.user(account.id);
  await setUp();
  await jwksMode('other');
  try {
    await withBrowser(async (page) => {
      const res = await ssoSignIn(page, user.email, user.email);
      assert.equal(res.status(), 401);
      assert.match(await page.locator('main').innerText(), /signature does not match/);
    });
  } finally {
    await jwksMode('own');
  }
});

test('an ID token from another issuer than the configured one is refused', async () => {
  const user = await kontor.user(account.id);
  await setUp({ issuer: `${idp.issuer}/impostor` });
  await withBrowser(async (page) => {
    const res = await ssoSignIn(page, user.email, user.email);
    assert.equal(res.status(), 401);
    assert.match(await page.locator('main').innerText(), /issued by another provider/);
  });
});

test('with SSO required, password sign-in is refused except for super admins', async () => {
  const user = await kontor.user(account.id, { role: 'admin' });
  await setUp({ required: true });
  await withBrowser(async (page) => {
    const res = await passwordSignIn(page, user);
    assert.equal(res.status(), 403);
    assert.match(await page.locator('#login-error').innerText(), /single sign-on/);
    const boss = await passwordSignIn(page, admin);
    assert.equal(boss.status(), 303, 'a super admin still signs in with a password');
    // Every change and every failure is in the account's audit log.
    await page.goto(kontor.url('/app/settings/audit'));
    const audit = await page.locator('main').innerText();
    for (const a of ['sso.update', 'login.sso_failed', 'login.refused']) assert.ok(audit.includes(a), `${a} audited`);
  });
});
