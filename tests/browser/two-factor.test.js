'use strict';
// Two-factor authentication: setting up TOTP from the security page, then signing in with
// a code from an authenticator (computed here), a wrong code, and a recovery code.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { escape } = require('./lib/kontor');
const { totp, wrongTotp, nextTotp, hotp, base32Decode } = require('./lib/totp');
const { screenshot, signIn, submitSignIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

let account;

const { btest, kontor } = suite({
  async before() {
    account = await kontor.account();
  },
});

test('the TOTP generator matches the RFC 6238 test vectors (SHA-1, 6 digits)', () => {
  // RFC 6238 appendix B: the secret is ASCII "12345678901234567890"; the 8-digit values
  // end in these 6 digits.
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  assert.equal(base32Decode(secret).toString('ascii'), '12345678901234567890');
  const vectors = [
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
    [20000000000, '353130'],
  ];
  for (const [t, code] of vectors) assert.equal(totp(secret, { at: t * 1000 }), code, `T=${t}`);
  // RFC 4226 appendix D, first two HOTP values.
  assert.equal(hotp(Buffer.from('12345678901234567890'), 0), '755224');
  assert.equal(hotp(Buffer.from('12345678901234567890'), 1), '287082');
  const wrong = wrongTotp(secret, { at: 1111111109_000 });
  assert.match(wrong, /^\d{6}$/);
  for (const t of [1111111049, 1111111079, 1111111109, 1111111139, 1111111169]) {
    assert.notEqual(wrong, totp(secret, { at: t * 1000 }));
  }
});

/** Turns two-factor authentication on for the signed-in user; returns {secret, recovery}. */
async function setUpTotp(page, user) {
  await page.goto(kontor.url('/app/account/security'));
  await assertHeading(page, 'Sign-in & security');
  assert.match(await page.locator('main').innerText(), /Two-factor authentication is off/);
  await page.locator('#totp-password').fill(user.password);
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  await assertHeading(page, 'Set up two-factor authentication');
  const secret = (await page.locator('#totp-secret').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}=*$/, 'the secret is base32');
  assert.ok(base32Decode(secret).length >= 16, 'the secret has at least 128 bits');
  return secret;
}

btest('sets up TOTP, then signs in with a generated code; a wrong code is refused', async ({ page }) => {
  const user = await kontor.user(account.id, { role: 'admin' });
  await signIn(page, kontor, user);
  const secret = await setUpTotp(page, user);

  // The QR code is there, is an SVG of real size, and is labelled.
  const qr = page.getByRole('img', { name: 'QR code of the two-factor secret' });
  const svg = qr.locator('svg');
  assert.equal(await svg.count(), 1, 'a QR code SVG');
  const box = await svg.boundingBox();
  assert.ok(box && box.width >= 150 && box.height >= 150, `QR code size ${JSON.stringify(box)}`);
  await assertStyled(page);
  await screenshot(page, 'totp-set-up');

  // A wrong code: the same page again, with a message, and the same secret.
  await page.locator('#code').fill(wrongTotp(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertHeading(page, 'Set up two-factor authentication');
  assert.match(await page.locator('#code-error').innerText(), /That code is not right/);
  assert.equal((await page.locator('#totp-secret').innerText()).trim(), secret, 'the secret stays the same');

  // The right code turns it on and shows recovery codes once.
  const turnedOnAt = Date.now();
  await page.locator('#code').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertHeading(page, 'Two-factor authentication is on');
  const recovery = (await page.locator('#recovery-codes li').allInnerTexts()).map((s) => s.trim());
  assert.ok(recovery.length >= 8, `recovery codes: ${recovery.length}`);
  assert.equal(new Set(recovery).size, recovery.length, 'recovery codes are all different');
  await screenshot(page, 'totp-recovery-codes');

  await page.getByRole('link', { name: 'Done' }).click();
  await assertHeading(page, 'Sign-in & security');
  assert.match(await page.locator('main').innerText(), /Two-factor authentication is on/);
  assert.equal(await page.getByRole('button', { name: 'Set up two-factor authentication' }).count(), 0);

  // Sign out and back in: the password alone is no longer enough.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));
  await submitSignIn(page, kontor, user);
  await page.waitForURL(kontor.url('/app/login/second-factor'));
  await assertHeading(page, 'Two-factor authentication');
  await screenshot(page, 'second-factor');

  // Half signed in: the console stays closed.
  await page.goto(kontor.url('/app/objects/contacts'));
  assert.equal(page.url(), kontor.url('/app/login/second-factor'));

  // A wrong code is refused.
  await page.locator('#code').fill(wrongTotp(secret));
  const [bad] = await Promise.all([
    page.waitForResponse((r) => r.url() === kontor.url('/app/login/second-factor') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Verify' }).click(),
  ]);
  assert.equal(bad.status(), 401);
  assert.equal(page.url(), kontor.url('/app/login/second-factor'));
  assert.match(await page.locator('#code-error').innerText(), /That code is not right/);

  // The code an authenticator app shows now lets the user in (a newer one than the code that
  // turned two-factor authentication on).
  await page.locator('#code').fill(await nextTotp(secret, turnedOnAt));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL(kontor.url('/app/objects/contacts'));
  await assertHeading(page, 'Contacts');
  assert.match(await page.locator('header.top').innerText(), new RegExp(escape(user.email)));

  // The security page tells how this session signed in.
  await page.goto(kontor.url('/app/account/security'));
  assert.match(await page.locator('main').innerText(), /Two-factor authentication is on/);
  assert.match(await page.locator('main').innerText(), new RegExp(`${recovery.length} recovery codes left`));
});

btest('a recovery code signs in once', async ({ page }) => {
  const user = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, user);
  const secret = await setUpTotp(page, user);
  await page.locator('#code').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertHeading(page, 'Two-factor authentication is on');
  const recovery = (await page.locator('#recovery-codes li').allInnerTexts()).map((s) => s.trim());
  assert.ok(recovery.length > 1);

  const signOut = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(kontor.url('/app/login'));
  };
  await signOut();
  await submitSignIn(page, kontor, user);
  await page.waitForURL(kontor.url('/app/login/second-factor'));
  await page.locator('#code').fill(recovery[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.waitForURL(kontor.url('/app/objects/contacts'));
  await page.goto(kontor.url('/app/account/security'));
  assert.match(await page.locator('main').innerText(), new RegExp(`${recovery.length - 1} recovery codes left`));

  // The same recovery code does not work a second time.
  await signOut();
  await submitSignIn(page, kontor, user);
  await page.waitForURL(kontor.url('/app/login/second-factor'));
  await page.locator('#code').fill(recovery[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  assert.equal(page.url(), kontor.url('/app/login/second-factor'));
  assert.match(await page.locator('#code-error').innerText(), /That code is not right/);
});

// RFC 6238 §5.2: a code that was accepted once must not be accepted again (the server keeps
// the last time step each user signed in with).
btest('a TOTP code that was already used is not accepted a second time', async ({ page }) => {
  const user = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, user);
  const secret = await setUpTotp(page, user);
  const turnedOnAt = Date.now();
  await page.locator('#code').fill(totp(secret, { at: turnedOnAt }));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertHeading(page, 'Two-factor authentication is on');

  const signInWith = async (code) => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(kontor.url('/app/login'));
    await submitSignIn(page, kontor, user);
    await page.waitForURL(kontor.url('/app/login/second-factor'));
    await page.locator('#code').fill(code);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForLoadState('load');
  };
  // Both sign-ins take a few seconds: well within the code's validity (one step either side).
  const code = await nextTotp(secret, turnedOnAt);
  await signInWith(code);
  await page.waitForURL(kontor.url('/app/objects/contacts'));
  await signInWith(code);
  assert.equal(page.url(), kontor.url('/app/login/second-factor'), 'the same code signed in twice');
  assert.match(await page.locator('#code-error').innerText(), /That code is not right/);
});

btest('the security page asks for the password before changing two-factor authentication or the password', async ({ page }) => {
  const user = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, user);

  // A wrong password does not start the set-up.
  await page.goto(kontor.url('/app/account/security'));
  await page.locator('#totp-password').fill('not-the-password');
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  await assertHeading(page, 'Sign-in & security');
  assert.match(await page.locator('#totp-error').innerText(), /not your current password/);

  // Turned on, then off again with the password and a code.
  const secret = await setUpTotp(page, user);
  const turnedOnAt = Date.now();
  await page.locator('#code').fill(totp(secret, { at: turnedOnAt }));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertHeading(page, 'Two-factor authentication is on');
  await page.goto(kontor.url('/app/account/security'));
  await page.locator('#totp-off-password').fill(user.password);
  await page.locator('#totp-off-code').fill(await nextTotp(secret, turnedOnAt));
  await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click();
  assert.match(await page.locator('#security-notice').innerText(), /Two-factor authentication is off/);
  assert.match(await page.locator('main').innerText(), /Two-factor authentication is off/);

  // Changing the password: the old one stops working, the new one signs in.
  const newPassword = `new-${user.password}`;
  await page.locator('#current-password').fill(user.password);
  await page.locator('#new-password').fill(newPassword);
  await page.locator('#repeat-password').fill(newPassword);
  await page.getByRole('button', { name: 'Change password' }).click();
  assert.match(await page.locator('#security-notice').innerText(), /Your password was changed/);
  await screenshot(page, 'security-page');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));
  const old = await submitSignIn(page, kontor, user);
  assert.equal(old.status(), 401, 'the old password is refused');
  await submitSignIn(page, kontor, user, newPassword);
  await page.waitForURL(kontor.url('/app/objects/contacts'));
});
