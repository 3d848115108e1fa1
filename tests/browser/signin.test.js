'use strict';
// Signing in with e-mail and password (no second factor), wrong passwords, the lock after
// repeated failures, and signing out.

const assert = require('node:assert/strict');
const { escape } = require('./lib/kontor');
const { screenshot, signIn, submitSignIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

let account;

const { btest, kontor } = suite({
  async before() {
    account = await kontor.account();
  },
});

btest('signed-out visitors are sent to the sign-in page', async ({ page }) => {
  await page.goto(kontor.url('/app/objects/contacts'));
  assert.equal(page.url(), kontor.url('/app/login'));
  await assertHeading(page, 'Sign in to kontor');
  await assertStyled(page);
  await screenshot(page, 'sign-in');
});

btest('signs in with e-mail and password, then signs out', async ({ page, context }) => {
  const user = await kontor.user(account.id, { role: 'user' });

  await page.goto(kontor.url('/app/login'));
  assert.equal(await page.locator('#login-error').count(), 0, 'no error before the first try');

  // A wrong password: the form comes back with a message and the e-mail kept.
  const refused = await submitSignIn(page, kontor, user, 'not-the-password-at-all');
  assert.equal(refused.status(), 401);
  assert.equal(page.url(), kontor.url('/app/login'));
  await assert.doesNotReject(page.locator('#login-error').waitFor({ state: 'visible' }));
  assert.equal((await page.locator('#login-error').innerText()).trim(), 'The e-mail address or the password is not right.');
  assert.equal(await page.locator('#email').inputValue(), user.email);
  assert.equal(await page.locator('#password').inputValue(), '', 'the password is not echoed back');

  // The right password.
  await submitSignIn(page, kontor, user);
  await page.waitForURL(kontor.url('/app/objects/contacts'));
  await assertHeading(page, 'Contacts');
  await assertStyled(page);
  const header = page.locator('header.top');
  assert.match(await header.innerText(), new RegExp(escape(user.email)));
  assert.match(await header.innerText(), new RegExp(account.name));
  // A plain user sees no settings in the navigation.
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(), 0);

  const cookies = await context.cookies();
  assert.ok(cookies.some((c) => c.name === 'kontor_session' && c.httpOnly), 'an HttpOnly session cookie is set');

  // Sign out from the header.
  await header.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));
  await assertHeading(page, 'Sign in to kontor');

  // The console is closed again...
  await page.goto(kontor.url('/app/objects/contacts'));
  assert.equal(page.url(), kontor.url('/app/login'));
  // ...even with the old session cookie put back: the session ended on the server.
  await context.addCookies(cookies.filter((c) => c.name === 'kontor_session'));
  await page.goto(kontor.url('/app/objects/contacts'));
  assert.equal(page.url(), kontor.url('/app/login'), 'the old session cookie must not work after signing out');
});

btest('an unknown address gets the same answer as a wrong password', async ({ page }) => {
  const res = await submitSignIn(page, kontor, { email: 'nobody-here@example.com' }, 'whatever-password');
  assert.equal(res.status(), 401);
  assert.equal((await page.locator('#login-error').innerText()).trim(), 'The e-mail address or the password is not right.');
});

btest('five failed sign-ins lock the address, even for the right password', async ({ page }) => {
  const user = await kontor.user(account.id, { role: 'admin' });
  const other = await kontor.user(account.id, { role: 'user' });
  await page.goto(kontor.url('/app/login'));
  for (let i = 1; i <= 5; i += 1) {
    const res = await submitSignIn(page, kontor, user, `wrong-password-${i}`);
    assert.equal(res.status(), 401, `failure ${i}`);
  }
  const locked = await submitSignIn(page, kontor, user);
  assert.equal(locked.status(), 429);
  assert.equal(page.url(), kontor.url('/app/login'));
  const msg = (await page.locator('#login-error').innerText()).trim();
  assert.match(msg, /^Too many failed sign-ins for this address\. Try again after \d\d:\d\d \(UTC\)\.$/);
  // The time shown is about 15 minutes from now.
  const [hh, mm] = msg.match(/(\d\d):(\d\d)/).slice(1).map(Number);
  const now = new Date();
  const shown = hh * 60 + mm;
  const expected = (now.getUTCHours() * 60 + now.getUTCMinutes() + 15) % 1440;
  assert.ok(Math.abs(shown - expected) <= 1 || Math.abs(shown - expected) >= 1439, `unlock time ${hh}:${mm}, now ${now.toISOString()}`);

  // Another address is not affected.
  await signIn(page, kontor, other);
});
