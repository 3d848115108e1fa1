'use strict';
// Settings: API tokens (created, shown once, revoked), users (added, role changed,
// deactivated), the audit log and its filters, and who may open these pages.

const assert = require('node:assert/strict');
const { unique, escape } = require('./lib/kontor');
const {
  openBrowser,
  screenshot,
  signIn,
  submitSignIn,
  assertHeading,
  assertStyled,
} = require('./lib/browser');
const { suite } = require('./lib/suite');

const { btest, kontor } = suite();
const today = () => new Date().toISOString().slice(0, 10);
const dayOffset = (days) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

/** Rows of the audit table as {time, user, action, target, details}. */
async function auditRows(page) {
  return page.locator('main table tbody tr').evaluateAll((rows) =>
    rows.map((r) => {
      const c = [...r.querySelectorAll('td')].map((td) => td.innerText.trim());
      return { time: c[0], user: c[1], action: c[2], target: c[3], details: c[4] };
    }),
  );
}

btest('creates a token that works against the API until it is revoked', async ({ page }) => {
  const account = await kontor.account();
  const admin = await kontor.user(account.id, { role: 'admin' });
  const other = await kontor.token(account.id, 'untouched');
  await signIn(page, kontor, admin);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Private apps & tokens' }).click();
  await page.waitForURL(kontor.url('/app/settings/tokens'));
  await assertHeading(page, 'Private apps & tokens');
  assert.equal(await page.locator('#new-token').count(), 0, 'no token is shown before one is created');

  const name = unique('Nightly export ');
  await page.locator('#name').fill(name);
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.waitForLoadState('load');
  const shown = page.locator('#new-token');
  await shown.waitFor();
  const token = (await shown.innerText()).trim();
  assert.ok(token.length >= 20 && !/\s/.test(token), `token ${JSON.stringify(token)}`);
  assert.match(await page.getByRole('status').innerText(), new RegExp(`Token ${escape(name)} created\\. Copy it now`));
  const row = page.locator('main table tbody tr', { hasText: name });
  assert.equal(await row.count(), 1);
  assert.match(await row.innerText(), /Live/);
  await assertStyled(page);
  await screenshot(page, 'tokens-new-token');

  // The token works against the API.
  let r = await kontor.api(token, 'GET', '/crm/v3/objects/contacts?limit=1');
  assert.equal(r.status, 200, r.text);
  const created = await kontor.api(token, 'POST', '/crm/v3/objects/contacts', {
    properties: { email: `${unique('tok')}@example.com` },
  });
  assert.equal(created.status, 201, created.text);

  // Shown once: not on the page after a reload, nor anywhere in its HTML.
  await page.goto(kontor.url('/app/settings/tokens'));
  assert.equal(await page.locator('#new-token').count(), 0);
  assert.ok(!(await page.content()).includes(token), 'the token is not in the page any more');

  // Revoke it.
  await page.getByRole('button', { name: `Revoke ${name}` }).click();
  await page.waitForURL(kontor.url('/app/settings/tokens?done=revoked'));
  assert.match(await page.getByRole('status').innerText(), /Token revoked/);
  assert.match(await row.innerText(), /Revoked/);
  assert.equal(await page.getByRole('button', { name: `Revoke ${name}` }).count(), 0);

  r = await kontor.api(token, 'GET', '/crm/v3/objects/contacts?limit=1');
  assert.equal(r.status, 401, `a revoked token must be refused: ${r.status} ${r.text}`);
  r = await kontor.api(token, 'GET', `/crm/v3/objects/contacts/${created.body.id}`);
  assert.equal(r.status, 401);
  // Other tokens of the account keep working.
  r = await kontor.api(other, 'GET', '/crm/v3/objects/contacts?limit=1');
  assert.equal(r.status, 200, r.text);

  // Both steps are in the audit log.
  await page.goto(kontor.url('/app/settings/audit?action=token.'));
  const actions = (await auditRows(page)).map((e) => e.action);
  assert.ok(actions.includes('token.create'), `audit actions: ${actions}`);
  assert.ok(actions.includes('token.revoke'), `audit actions: ${actions}`);
});

btest('a token without a name is refused next to the name field', async ({ page }) => {
  const account = await kontor.account();
  const admin = await kontor.user(account.id, { role: 'super-admin' });
  await signIn(page, kontor, admin);
  await page.goto(kontor.url('/app/settings/tokens'));
  // Only spaces: passes the browser's `required` check, not the server's.
  await page.locator('#name').fill('   ');
  const [res] = await Promise.all([
    page.waitForResponse((x) => x.request().method() === 'POST'),
    page.getByRole('button', { name: 'Create token' }).click(),
  ]);
  assert.equal(res.status(), 400);
  await page.waitForLoadState('load');
  assert.equal(await page.locator('#new-token').count(), 0);
  assert.ok((await page.locator('#name-error').innerText()).length > 0);
  assert.match(await page.locator('#name').getAttribute('aria-describedby'), /name-error/);
});

btest('a role change made on the users page appears in the audit log', async ({ page }) => {
  const account = await kontor.account();
  const boss = await kontor.user(account.id, { role: 'super-admin' });
  const target = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, boss);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
  await page.waitForURL(kontor.url('/app/settings/users'));
  await assertHeading(page, 'Users');
  const row = page.locator(`#user-${target.id}`);
  assert.match(await row.innerText(), new RegExp(escape(target.email)));
  assert.equal((await row.locator('td').nth(2).innerText()).trim(), 'User');
  // One's own row has no controls.
  assert.match(await page.locator(`#user-${boss.id}`).innerText(), /This is you\./);
  await assertStyled(page);
  await screenshot(page, 'users');

  await row.getByLabel(`Role of ${target.email}`).selectOption('admin');
  await row.getByRole('button', { name: 'Change role' }).click();
  await page.waitForURL(kontor.url('/app/settings/users?done=role'));
  assert.match(await page.getByRole('status').innerText(), /Role changed\./);
  assert.equal((await page.locator(`#user-${target.id} td`).nth(2).innerText()).trim(), 'Admin');

  // The audit log, filtered by the action.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await page.waitForURL(kontor.url('/app/settings/audit'));
  await assertHeading(page, 'Audit log');
  await page.locator('#action').fill('user.role');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/action=user\.role/);
  let rows = await auditRows(page);
  assert.equal(rows.length, 1, `entries: ${JSON.stringify(rows)}`);
  const [entry] = rows;
  assert.equal(entry.action, 'user.role_change');
  assert.equal(entry.target, `user:${target.id}`);
  assert.match(entry.user, new RegExp(escape(boss.email)));
  const details = JSON.parse(entry.details);
  assert.deepEqual(details, { email: target.email, from: 'user', to: 'admin' });
  assert.match(await page.getByRole('status').innerText(), /^1 entry\.$/);
  // The entry is from now.
  assert.ok(Math.abs(Date.parse(entry.time) - Date.now()) < 5 * 60_000, `time ${entry.time}`);
  assert.equal(await page.locator('#action').inputValue(), 'user.role', 'the filter is kept in the form');

  // Filters by user and date: the entry is there for the actor and today...
  await page.locator('#user').selectOption({ label: boss.email });
  await page.locator('#from').fill(today());
  await page.locator('#to').fill(today());
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/user=/);
  rows = await auditRows(page);
  assert.deepEqual(rows.map((e) => e.action), ['user.role_change']);
  await assertStyled(page);
  await screenshot(page, 'audit-log');

  // ...and not for the other user, nor for a day in the past.
  await page.locator('#user').selectOption({ label: target.email });
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForLoadState('load');
  assert.deepEqual(await auditRows(page), []);
  await page.locator('#user').selectOption({ label: boss.email });
  await page.locator('#from').fill(dayOffset(-3));
  await page.locator('#to').fill(dayOffset(-2));
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForLoadState('load');
  assert.deepEqual(await auditRows(page), []);

  // An end date before the start date is refused at the field.
  await page.locator('#from').fill(today());
  await page.locator('#to').fill(dayOffset(-1));
  const [bad] = await Promise.all([
    page.waitForResponse((x) => x.url().includes('/app/settings/audit?')),
    page.getByRole('button', { name: 'Filter' }).click(),
  ]);
  assert.equal(bad.status(), 400);
  await page.waitForLoadState('load');
  assert.match(await page.locator('#to-error').innerText(), /before the start date/);

  // Unfiltered, the log also has the sign-in of the super admin.
  await page.getByRole('link', { name: 'Clear' }).click();
  await page.waitForURL(kontor.url('/app/settings/audit'));
  rows = await auditRows(page);
  assert.ok(rows.some((e) => e.action === 'login.success' && e.user.includes(boss.email)), JSON.stringify(rows));

  // The new role is real: the target now sees the settings.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));
  await signIn(page, kontor, target);
  await page.goto(kontor.url('/app/settings/users'));
  await assertHeading(page, 'Users');
});

btest('adds a user with a generated password, and deactivating ends their session', async ({ page }) => {
  const account = await kontor.account();
  const admin = await kontor.user(account.id, { role: 'admin' });
  await signIn(page, kontor, admin);
  await page.goto(kontor.url('/app/settings/users'));
  // An admin cannot hand out the super-admin role.
  const roles = await page.locator('#role option').evaluateAll((os) => os.map((o) => o.value));
  assert.deepEqual(roles.sort(), ['admin', 'user']);

  // A short password is refused, with the typed values kept.
  const email = `${unique('new')}@example.com`;
  await page.locator('#email').fill(email);
  await page.locator('#first_name').fill('Nora');
  await page.locator('#last_name').fill('Newcomer');
  await page.locator('#role').selectOption('user');
  await page.locator('#password').fill('short');
  await page.getByRole('button', { name: 'Add user' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator('#password-error').innerText(), /at least 10 characters/);
  assert.equal(await page.locator('#email').inputValue(), email);
  assert.equal(await page.locator('#first_name').inputValue(), 'Nora');

  // Empty password: one is generated and shown once.
  await page.locator('#password').fill('');
  await page.getByRole('button', { name: 'Add user' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.getByRole('status').innerText(), new RegExp(`Added ${escape(email)} as user\\.`));
  const password = (await page.locator('#new-password').innerText()).trim();
  assert.ok(password.length >= 10, `generated password ${password}`);
  const row = page.locator('main table tbody tr', { hasText: email });
  assert.match(await row.innerText(), /Nora Newcomer/);
  assert.match(await row.innerText(), /Active/);

  // The new user signs in, in a browser of their own.
  const nora = await openBrowser();
  try {
    await signIn(nora.page, kontor, { email, password });

    await row.getByRole('button', { name: `Deactivate ${email}` }).click();
    await page.waitForURL(kontor.url('/app/settings/users?done=deactivated'));
    assert.match(await page.getByRole('status').innerText(), /User deactivated/);
    assert.match(await page.locator('main table tbody tr', { hasText: email }).innerText(), /Deactivated/);

    // Their open session has ended, and they cannot sign in again.
    await nora.page.goto(kontor.url('/app/objects/contacts'));
    assert.equal(nora.page.url(), kontor.url('/app/login'), 'a deactivated user is signed out');
    const res = await submitSignIn(nora.page, kontor, { email, password });
    assert.equal(res.status(), 401);
    assert.equal(nora.page.url(), kontor.url('/app/login'));
  } finally {
    await nora.close();
  }

  await page.goto(kontor.url('/app/settings/audit?action=user.'));
  const actions = (await auditRows(page)).map((e) => `${e.action} ${e.target}`);
  assert.ok(actions.some((a) => a.startsWith('user.create ')), actions.join('\n'));
  assert.ok(actions.some((a) => a.startsWith('user.deactivate ')), actions.join('\n'));
});

btest('a plain user gets the not-allowed page for the settings', async ({ page }) => {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role: 'user' });
  const victim = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, user);
  for (const p of ['/app/settings/users', '/app/settings/tokens', '/app/settings/audit', '/app/settings']) {
    const res = await page.goto(kontor.url(p));
    assert.equal(res.status(), 403, p);
    await assertHeading(page, 'Not allowed');
    assert.match(await page.locator('main').innerText(), /Your role does not allow this page/);
    if (p === '/app/settings/users') {
      await assertStyled(page);
      await screenshot(page, 'forbidden');
    }
  }

  // Posting the users form by hand, with a valid CSRF token, is refused too.
  const res = await postForm(page, `/app/settings/users/${victim.id}`, { action: 'role', role: 'super-admin' });
  assert.equal(res.status(), 403);
  await assertHeading(page, 'Not allowed');
  const created = await postForm(page, '/app/settings/tokens', { name: 'sneaky' });
  assert.equal(created.status(), 403);
  assert.equal(await page.locator('#new-token').count(), 0);

  // Nothing changed: the victim is still a plain user.
  const boss = await kontor.user(account.id, { role: 'super-admin' });
  const b = await openBrowser();
  try {
    await signIn(b.page, kontor, boss);
    await b.page.goto(kontor.url('/app/settings/users'));
    assert.equal((await b.page.locator(`#user-${victim.id} td`).nth(2).innerText()).trim(), 'User');
    await b.page.goto(kontor.url('/app/settings/tokens'));
    assert.equal(await b.page.locator('main table tbody tr', { hasText: 'sneaky' }).count(), 0);
  } finally {
    await b.close();
  }
});

/**
 * Submits a form built in a console page, with the session's CSRF token (as a page of the
 * console has it); returns the response.
 */
async function postForm(page, action, fields) {
  await page.goto(page.url().replace(/\/app\/.*$/, '/app/objects/contacts'));
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.evaluate(
      ({ action, fields }) => {
        const csrf = document.querySelector('input[name=_csrf]').value;
        const f = document.createElement('form');
        f.method = 'post';
        f.action = action;
        for (const [k, v] of Object.entries({ ...fields, _csrf: csrf })) {
          const i = document.createElement('input');
          i.type = 'hidden';
          i.name = k;
          i.value = v;
          f.appendChild(i);
        }
        document.body.appendChild(f);
        f.submit();
      },
      { action, fields },
    ),
  ]);
  await page.waitForLoadState('load');
  return res;
}
