'use strict';
// Settings → Account defaults → Data hosting: where the data lives; a super admin reads what a
// move does, schedules one on an available date and cancels it; payments and roles refuse it
// with the reason; after a move (run by the operator's CLI) the page shows the new region, the
// move's history and a checklist whose ticks are stored and audited.

const assert = require('node:assert/strict');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

const { btest, kontor } = suite();
const PAGE = '/app/settings/account/data-hosting';

btest('a super admin reads what a move does, schedules one on an available date and cancels it', async ({ page }) => {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role: 'super-admin' });
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/settings/account'));
  await page.getByRole('link', { name: 'Data hosting' }).click();
  await assertHeading(page, 'Data hosting');
  await assertStyled(page);
  assert.match(await page.locator('#hosted').innerText(), /United States \(US\)/);
  const effects = await page.locator('#move-effects').innerText();
  assert.match(effects, /In-app notifications are not carried over/);
  assert.match(effects, /answer 477 with Retry-After/);
  assert.match(effects, /Imports are not accepted from 24 hours before/);

  // Only dates at least 7 days ahead are offered.
  const dates = await page.locator('#date option').evaluateAll((os) => os.map((o) => o.value));
  assert.ok(dates.length > 30, `${dates.length} dates`);
  const earliest = Date.parse(`${dates[0]}T02:00:00Z`);
  assert.ok(earliest >= Date.now() + 7 * 86400_000, `${dates[0]} is too soon`);

  // The confirmation is required before the form goes.
  await page.locator('#date').selectOption(dates[3]);
  await page.getByRole('button', { name: 'Move data to the EU' }).click();
  assert.equal(page.url(), kontor.url(PAGE), 'the unconfirmed form is not sent');
  await page.getByLabel('I have read what the move does.').check();
  await screenshot(page, 'data-hosting-schedule');
  await page.getByRole('button', { name: 'Move data to the EU' }).click();
  await page.waitForURL(/done=scheduled/);
  assert.match(await page.getByRole('status').innerText(), /Data move scheduled/);
  const row = page.locator('#move-list tbody tr').first();
  assert.match(await row.innerText(), /Scheduled/);
  assert.match(await row.innerText(), new RegExp(dates[3]));
  // A second move cannot be scheduled while this one is.
  assert.match(await page.locator('#move-refused').innerText(), /already has a data move scheduled/);

  await row.getByRole('button', { name: 'Cancel move' }).click();
  await page.waitForURL(/done=canceled/);
  assert.match(await page.locator('#move-list tbody tr').first().innerText(), /Cancelled/);
  // Both are in the audit log.
  await page.goto(kontor.url('/app/settings/audit'));
  const audit = await page.locator('main').innerText();
  assert.match(audit, /data_move\.scheduled/);
  assert.match(audit, /data_move\.canceled/);
  // Each super admin is told, by e-mail too (the outbox is delivered every half second).
  const told = (mails) => mails.some((m) => m.to.includes(user.email) && /Data move to the EU scheduled/.test(m.subject));
  const deadline = Date.now() + 30_000;
  let mails = await kontor.mails();
  while (!told(mails) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    mails = await kontor.mails();
  }
  assert.ok(told(mails), `no e-mail to ${user.email}: ${JSON.stringify(mails.map((m) => [m.to, m.subject]))}`);
});

btest('an admin sees the page read-only; an account with payments cannot be moved', async ({ page }) => {
  const account = await kontor.account();
  const admin = await kontor.user(account.id, { role: 'admin' });
  await signIn(page, kontor, admin);
  await page.goto(kontor.url(PAGE));
  await assertHeading(page, 'Data hosting');
  assert.match(await page.locator('main').innerText(), /Only a super admin can move the account's data/);
  assert.equal(await page.locator('#date').count(), 0);

  await kontor.cli(['admin', 'account', 'set-flag', '--account', account.id, '--flag', 'payments']);
  await page.reload();
  assert.match(await page.locator('#move-refused').innerText(), /uses payments/);
});

btest('after a move: the new region, its history, and a checklist whose ticks are kept and audited', async ({ page }) => {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role: 'super-admin' });
  const token = await kontor.token(account.id);
  await kontor.contact(token, { email: 'moved@example.com', firstname: 'Mo' });
  await kontor.cli(['migration', 'run', '--account', account.id, '--to', 'eu']);
  await signIn(page, kontor, user);
  await page.goto(kontor.url(PAGE));
  assert.match(await page.locator('#hosted').innerText(), /European Union \(EU\)/);
  assert.match(await page.locator('#move-list tbody tr').first().innerText(), /Done/);
  assert.match(await page.locator('#after').locator('..').innerText(), /closed for [\d.]+ (ms|s)\./);
  // EU → US is not offered.
  assert.match(await page.locator('#move-refused').innerText(), /not offered/);
  const first = page.locator('#move-checklist li').first();
  await first.getByRole('button', { name: 'Mark done' }).click();
  await page.waitForURL(/#after$/);
  assert.match(await page.locator('#move-checklist li').first().innerText(), new RegExp(`done by ${user.email.replace('.', '\\.')}`));
  await screenshot(page, 'data-hosting-after');
  await page.goto(kontor.url('/app/settings/audit'));
  assert.match(await page.locator('main').innerText(), /data_move\.checklist/);
  assert.match(await page.locator('main').innerText(), /data_move\.completed/);
  // The data is there, in the new region.
  const found = await kontor.api(token, 'GET', '/crm/v3/objects/contacts?properties=email');
  assert.equal(found.body.results[0].properties.email, 'moved@example.com');
});
