'use strict';
// Restoring from a backup: a super admin with two-factor authentication opens the restore panel
// from the backup list (Actions → Restore), chooses contacts and two properties, reviews what
// would change (values changed, values cleared, records created after the backup), confirms with
// both acknowledgements and a fresh code from the authenticator, follows the restore in Imports,
// finds the values back on the record pages, and reverts the restore. Wrong codes, missing
// acknowledgements, admins and super admins without two-factor authentication are refused.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startKontor, unique, waitForText } = require('./lib/kontor');
const { totp, wrongTotp, nextTotp } = require('./lib/totp');
const { openBrowser, screenshot, signIn, assertHeading, assertStyled, SCREENSHOTS } = require('./lib/browser');
const { suite } = require('./lib/suite');

// A short lease, so that the jobs' heartbeats (progress) run often.
const { btest, kontor } = suite({ env: { KONTOR_JOB_LEASE_SECONDS: '3' }, timeout: 240_000 });

/** A PNG of what the window shows (a modal dialog's backdrop covers the window). */
async function windowShot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Turns two-factor authentication on for the signed-in user; returns {secret, usedAt}. */
async function setUpTotp(page, user, k = kontor) {
  await page.goto(k.url('/app/account/security'));
  await page.locator('#totp-password').fill(user.password);
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  await assertHeading(page, 'Set up two-factor authentication');
  const secret = (await page.locator('#totp-secret').innerText()).trim();
  const usedAt = Date.now();
  await page.locator('#code').fill(totp(secret, { at: usedAt }));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertHeading(page, 'Two-factor authentication is on');
  return { secret, usedAt };
}

/** The value a record page shows for a property. */
async function shown(page, id, prop) {
  await page.goto(kontor.url(`/app/objects/contacts/${id}`));
  return (await page.locator(`dd[data-property="${prop}"]`).innerText()).trim();
}

async function count(page, what) {
  return Number((await page.locator(`#count-${what}`).innerText()).trim());
}

/** Numbers of the review: per property, and per kind of record. */
async function reviewNumbers(page) {
  return page.evaluate(() => {
    const props = {};
    for (const tr of document.querySelectorAll('#review-properties tbody tr')) {
      props[tr.dataset.property] = [Number(tr.querySelector('td.changed').innerText), Number(tr.querySelector('td.cleared').innerText)];
    }
    const records = {};
    for (const dd of document.querySelectorAll('#review-records dd')) records[dd.id] = Number(dd.innerText);
    return { props, records };
  });
}

/** Submits the review's form; returns the response of the POST. */
async function submitReview(page, button) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: button }).click(),
  ]);
  await page.waitForLoadState('load');
  return res;
}

/** Waits until the import's page shows it done; returns its id. */
async function waitDone(page) {
  const id = page.url().match(/\/app\/imports\/(\d+)/)[1];
  await waitForText(page.locator('#import-state'), /Done|Failed|Canceled/);
  await page.waitForLoadState('load');
  assert.equal((await page.locator('#import-state').innerText()).trim(), 'Done');
  return id;
}

/** An account with a super admin, a token, three contacts and a completed backup of them. */
async function setUp(role = 'super-admin') {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role });
  const token = await kontor.token(account.id);
  const ids = {
    ada: await kontor.contact(token, { email: `${unique('ada')}@example.com`, firstname: 'Ada', lastname: 'Lovelace', jobtitle: 'Analyst' }),
    grace: await kontor.contact(token, { email: `${unique('grace')}@example.com`, firstname: 'Grace', lastname: 'Hopper', jobtitle: 'Admiral' }),
    alan: await kontor.contact(token, { email: `${unique('alan')}@example.com`, firstname: 'Alan', lastname: 'Turing' }),
  };
  const backupId = await kontor.backup(token);
  return { account, user, token, ids, backupId };
}

btest('a super admin restores contacts from a backup through the panel, then reverts it', async ({ page }) => {
  const { user, token, ids, backupId } = await setUp();
  // After the backup: a value changed, a value cleared, a value given, a contact created.
  await kontor.updateContact(token, ids.ada, { firstname: 'Augusta' });
  await kontor.updateContact(token, ids.grace, { jobtitle: '' });
  await kontor.updateContact(token, ids.alan, { jobtitle: 'Cryptanalyst' });
  const newer = await kontor.contact(token, { email: `${unique('new')}@example.com`, firstname: 'New', lastname: 'Person', jobtitle: 'Intern' });

  await signIn(page, kontor, user);
  const { secret, usedAt } = await setUpTotp(page, user);

  // Backup → Actions → Restore opens the panel on the list page.
  await page.goto(kontor.url('/app/settings/backups'));
  const row = page.locator(`#backup-${backupId}`);
  await row.getByRole('button', { name: `Actions for backup ${backupId}` }).hover();
  const restore = row.getByRole('link', { name: 'Restore' });
  await restore.waitFor();
  assert.equal(await restore.getAttribute('href'), `/app/settings/backups/${backupId}/restore`);
  await restore.click();
  const dialog = page.getByRole('dialog', { name: `Restore from backup ${backupId}` });
  await dialog.waitFor();
  assert.equal(page.url(), kontor.url('/app/settings/backups'), 'the panel opens without leaving the list');
  const box = await dialog.boundingBox();
  assert.ok(box.x > 600 && box.x + box.width >= 1279, `the panel is on the right: ${JSON.stringify(box)}`);
  await dialog.locator('#restore-object').waitFor();
  const objects = await dialog.locator('#restore-object option').allInnerTexts();
  for (const o of ['Companies', 'Contacts', 'Deals', 'Tickets', 'Products', 'Calls', 'Tasks']) assert.ok(objects.includes(o), `${o} in ${objects}`);
  for (const o of ['Conversations', 'Notes', 'Meetings', 'Emails']) assert.ok(!objects.includes(o), `${o} cannot be restored`);

  // Choosing the object loads its properties into the panel.
  await dialog.locator('#restore-object').selectOption('contacts');
  await dialog.locator('#prop-firstname').waitFor();
  assert.equal(await dialog.locator('#prop-hs_object_id').count(), 0, 'the record ID is not restorable');
  assert.equal(await dialog.locator('#prop-lastmodifieddate').count(), 0);
  // The search narrows the list.
  await dialog.locator('#property-filter').fill('job');
  assert.equal(await dialog.locator('#prop-firstname').isVisible(), false);
  assert.equal(await dialog.locator('#prop-jobtitle').isVisible(), true);
  await dialog.locator('#property-filter').fill('');
  await dialog.locator('#prop-firstname').check();
  await dialog.locator('#prop-jobtitle').check();
  await windowShot(page, 'restore-panel');
  await dialog.getByRole('button', { name: 'Review' }).click();
  await page.waitForURL(new RegExp(`/app/settings/backups/${backupId}/restore/\\d+$`));
  const reviewUrl = page.url();

  // The review: what changes, what is left alone.
  await assertHeading(page, `Review: restore contacts from backup ${backupId}`);
  await assertStyled(page);
  const numbers = await reviewNumbers(page);
  assert.deepEqual(numbers.props, { firstname: [1, 0], jobtitle: [1, 1] });
  assert.deepEqual(numbers.records, {
    'records-in-backup': 3,
    'records-to-change': 3,
    'records-unchanged': 0,
    'records-created-after': 1,
    'records-missing': 0,
  });
  const sample = await page.locator('#review-sample-table tbody').innerText();
  assert.match(sample, new RegExp(`${ids.ada}\\s+First Name firstname\\s+Augusta\\s+Ada`));
  assert.match(sample, new RegExp(`${ids.grace}\\s+Job Title jobtitle\\s+\\(empty\\)\\s+Admiral`));
  assert.match(sample, new RegExp(`${ids.alan}\\s+Job Title jobtitle\\s+Cryptanalyst\\s+\\(empty\\)`));
  assert.match(await page.locator('#review-seq').innerText(), /^\d+/);
  assert.match(await page.locator('#review-snapshot').innerText(), /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
  assert.equal(await page.locator('#overwrite-newer').isChecked(), false, 'newer changes are kept by default');
  await screenshot(page, 'restore-review');

  // Both acknowledgements are required (checked by the server).
  let res = await submitReview(page, 'Restore data');
  assert.equal(res.status(), 400);
  assert.match(await page.locator('#understand-changes-error').innerText(), /Tick this box/);
  assert.match(await page.locator('#understand-revert-error').innerText(), /Tick this box/);
  assert.match(await page.locator('#review-refused').innerText(), /Nothing was changed/);

  // A wrong code is refused.
  await page.locator('#understand-changes').check();
  await page.locator('#understand-revert').check();
  await page.locator('#restore-code').fill(wrongTotp(secret));
  res = await submitReview(page, 'Restore data');
  assert.equal(res.status(), 401);
  assert.match(await page.locator('#restore-code-error').innerText(), /That code is not right/);
  assert.equal(await page.locator('#understand-changes').isChecked(), true, 'the ticks are kept');
  assert.equal(await shown(page, ids.ada, 'firstname'), 'Augusta', 'nothing was restored');

  // A fresh code starts the restore.
  await page.goto(reviewUrl);
  await page.locator('#understand-changes').check();
  await page.locator('#understand-revert').check();
  const code = await nextTotp(secret, usedAt);
  const restoreCodeAt = Date.now();
  await page.locator('#restore-code').fill(code);
  res = await submitReview(page, 'Restore data');
  assert.equal(res.status(), 303, 'the restore starts and its import\'s page follows');
  assert.match(page.url(), /\/app\/imports\/\d+\?done=restore$/);
  await assertHeading(page, 'Data Restore - Contact');
  const restoreId = await waitDone(page);
  assert.equal(await count(page, 'updated'), 3);
  assert.equal(await count(page, 'conflicts'), 0);
  assert.equal(await count(page, 'rejected'), 0);
  assert.match(await page.locator('#import-backup').innerText(), new RegExp(`Backup ${backupId}`));
  assert.match(await page.locator('#import-properties').innerText(), /First Name \(firstname\), Job Title \(jobtitle\)/);
  assert.match(await page.locator('#import-overwrite').innerText(), /^Kept/);
  await screenshot(page, 'restore-done');

  // The review cannot be applied twice.
  await page.goto(reviewUrl);
  assert.match(await page.locator('#review-applied').innerText(), new RegExp(`see import ${restoreId}`));
  assert.equal(await page.getByRole('button', { name: 'Restore data' }).count(), 0);

  // Imports lists it as a restore, done.
  await page.goto(kontor.url('/app/imports'));
  const listed = await page.locator(`#import-${restoreId}`).innerText();
  assert.match(listed, /^Data Restore - Contact/);
  assert.match(listed, /\tRestore\tDone\t0\t3\t0\t0\t0\t/);

  // The values are back; the contact created after the backup is untouched.
  assert.equal(await shown(page, ids.ada, 'firstname'), 'Ada');
  assert.equal(await shown(page, ids.grace, 'jobtitle'), 'Admiral');
  assert.equal(await shown(page, ids.alan, 'jobtitle'), '—');
  assert.equal(await shown(page, newer, 'jobtitle'), 'Intern');
  const api = await kontor.api(token, 'GET', `/crm/v3/objects/contacts/${ids.ada}?properties=firstname,lastname`);
  assert.equal(api.body.properties.firstname, 'Ada');
  assert.equal(api.body.properties.lastname, 'Lovelace', 'a property not chosen is left alone');

  // Revert this restore: a review of its own, then the values it replaced come back.
  await page.goto(kontor.url(`/app/imports/${restoreId}`));
  await page.getByRole('button', { name: 'Revert this restore' }).click();
  await page.waitForURL(new RegExp(`/app/imports/${restoreId}/revert/\\d+$`));
  await assertHeading(page, `Review: revert restore ${restoreId}`);
  const back = await reviewNumbers(page);
  assert.deepEqual(back.props, { firstname: [1, 0], jobtitle: [1, 1] });
  assert.equal(back.records['records-to-change'], 3);
  assert.equal(back.records['records-conflicts'], 0);
  await screenshot(page, 'restore-revert-review');
  await page.locator('#understand-changes').check();
  await page.locator('#understand-revert').check();
  await page.locator('#restore-code').fill(await nextTotp(secret, restoreCodeAt));
  res = await submitReview(page, 'Revert data');
  assert.equal(res.status(), 303, 'the restore starts and its import\'s page follows');
  assert.match(page.url(), /\/app\/imports\/\d+\?done=revert$/);
  await assertHeading(page, 'Data Restore Revert - Contact');
  const revertId = await waitDone(page);
  assert.equal(await count(page, 'updated'), 3);
  assert.match(await page.locator('#import-reverts').innerText(), new RegExp(`Restore ${restoreId}`));
  assert.equal(await page.getByRole('button', { name: 'Revert this restore' }).count(), 0, 'a revert is not revertible');

  assert.equal(await shown(page, ids.ada, 'firstname'), 'Augusta');
  assert.equal(await shown(page, ids.grace, 'jobtitle'), '—');
  assert.equal(await shown(page, ids.alan, 'jobtitle'), 'Cryptanalyst');

  await page.goto(kontor.url(`/app/imports/${restoreId}`));
  assert.equal((await page.locator('#import-state').innerText()).trim(), 'Reverted');
  assert.match(await page.locator('#import-reverted-by').innerText(), new RegExp(`Revert ${revertId}`));
  assert.equal(await page.getByRole('button', { name: 'Revert this restore' }).count(), 0, 'reverted once');
});

btest('the restore page works as a page of its own, and a restore keeps newer changes as conflicts', async ({ page }) => {
  const { user, token, ids, backupId } = await setUp();
  await kontor.updateContact(token, ids.ada, { firstname: 'Augusta' });
  await signIn(page, kontor, user);
  const { secret, usedAt } = await setUpTotp(page, user);

  // Without the panel: the page, whose object choice reloads it with the properties.
  await page.goto(kontor.url(`/app/settings/backups/${backupId}/restore`));
  await assertHeading(page, `Restore from backup ${backupId}`);
  await page.locator('#restore-object').selectOption('contacts');
  await page.waitForURL(new RegExp(`/restore\\?object=contacts$`));
  await page.locator('#prop-firstname').check();
  await page.getByRole('button', { name: 'Review' }).click();
  await page.waitForURL(new RegExp(`/app/settings/backups/${backupId}/restore/\\d+$`));
  assert.deepEqual((await reviewNumbers(page)).props, { firstname: [1, 0] });

  // Someone changes the value after the review: it is a conflict, left as it is.
  await kontor.updateContact(token, ids.ada, { firstname: 'Lady Ada' });
  await page.locator('#understand-changes').check();
  await page.locator('#understand-revert').check();
  await page.locator('#restore-code').fill(await nextTotp(secret, usedAt));
  const res = await submitReview(page, 'Restore data');
  assert.equal(res.status(), 303, 'the restore starts and its import\'s page follows');
  await waitDone(page);
  assert.equal(await count(page, 'conflicts'), 1);
  assert.equal(await count(page, 'updated'), 0);
  assert.equal(await count(page, 'unchanged'), 2);
  const csv = await (await page.request.get(kontor.url(`${new URL(page.url()).pathname}/rejected-rows`))).text();
  assert.match(csv, /^\uFEFFRecord ID,firstname,Line,Error type,Reason\r\n/);
  assert.match(csv, new RegExp(`\r\n${ids.ada},Ada,\\d+,CONFLICT,"firstname was changed after the plan was reviewed \\(by API\\); it is now ""Lady Ada"" and was left as it is"\r\n$`));
  assert.equal(await shown(page, ids.ada, 'firstname'), 'Lady Ada');
});

btest('an admin cannot restore; a super admin without two-factor authentication is told to set it up', async ({ page }) => {
  const { account, backupId } = await setUp('super-admin');
  const admin = await kontor.user(account.id, { role: 'admin' });
  await signIn(page, kontor, admin);
  for (const p of [`/app/settings/backups/${backupId}/restore`, `/app/settings/backups/${backupId}/restore?object=contacts`, `/app/settings/backups/${backupId}/restore/1`]) {
    const r = await page.goto(kontor.url(p));
    assert.equal(r.status(), 403, p);
    await assertHeading(page, 'Not allowed');
  }
  await page.goto(kontor.url('/app/imports'));
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  for (const p of [`/app/settings/backups/${backupId}/restore`, `/app/settings/backups/${backupId}/restore/1`, '/app/imports/1/revert']) {
    const r = await page.request.post(kontor.url(p), { form: { _csrf: csrf, object: 'contacts', property: 'firstname', understand_changes: 'yes', understand_revert: 'yes' }, maxRedirects: 0 });
    assert.equal(r.status(), 403, p);
  }
  await page.goto(kontor.url('/app/imports'));
  assert.equal(await page.locator('#no-imports').count(), 1, 'no restore was started');

  // A super admin without two-factor authentication reviews, but cannot restore.
  const plain = await kontor.user(account.id, { role: 'super-admin' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, kontor, plain);
  await page.goto(kontor.url(`/app/settings/backups/${backupId}/restore?object=contacts`));
  assert.match(await page.locator('#restore-2fa-needed').innerText(), /Set up two-factor authentication first/);
  assert.equal(await page.locator('#restore-2fa-needed a').getAttribute('href'), '/app/account/security');
  await page.locator('#prop-firstname').check();
  await page.getByRole('button', { name: 'Review' }).click();
  await page.waitForURL(/\/restore\/\d+$/);
  assert.match(await page.locator('#review-2fa-needed').innerText(), /Set up two-factor authentication first/);
  assert.equal(await page.locator('#restore-code').count(), 0);
  assert.ok(await page.getByRole('button', { name: 'Restore data' }).isDisabled());
  const formCsrf = await page.locator('main form input[name=_csrf]').first().inputValue();
  const r = await page.request.post(page.url(), {
    form: { _csrf: formCsrf, understand_changes: 'yes', understand_revert: 'yes', code: '123456' },
    maxRedirects: 0,
  });
  assert.equal(r.status(), 403);
  assert.match(await r.text(), /Set up two-factor authentication first/);
  // Without its CSRF token, nothing is even looked at.
  const noCsrf = await page.request.post(page.url(), { form: { understand_changes: 'yes', understand_revert: 'yes' }, maxRedirects: 0 });
  assert.equal(noCsrf.status(), 403);
  assert.match(await noCsrf.text(), /Form expired/);
  await page.goto(kontor.url('/app/imports'));
  assert.equal(await page.locator('#no-imports').count(), 1, 'no restore was started');
});

btest('only one restore runs at a time: a second one started meanwhile is refused with the reason', async ({ page }) => {
  // The two admins use a node that only serves requests (no job workers), so that the first
  // restore is still waiting when the second is asked for, however fast the machine; a second
  // node on the same databases runs the jobs when they may run. (On databases shared with the
  // other test files, as with KONTOR_DATABASE_* on PostgreSQL, their nodes would run it too.)
  const web = await startKontor({ env: { KONTOR_JOB_WORKERS: '0' } });
  let worker = await startKontor({ dataDir: web.dataDir });
  const other = await openBrowser();
  try {
    const account = await web.account();
    const token = await web.token(account.id);
    const prefix = unique('bulk');
    for (let b = 0; b < 10; b++) {
      const inputs = Array.from({ length: 100 }, (_, i) => ({ properties: { email: `${prefix}-${b}-${i}@example.com`, firstname: `Bulk ${i}` } }));
      const r = await web.api(token, 'POST', '/crm/v3/objects/contacts/batch/create', { inputs });
      assert.equal(r.status, 201, r.text);
    }
    const backupId = await web.backup(token);
    await worker.stop();
    const users = [await web.user(account.id, { role: 'super-admin' }), await web.user(account.id, { role: 'super-admin' })];
    const pages = [page, other.page];
    const secrets = [];
    for (let k = 0; k < 2; k++) {
      await signIn(pages[k], web, users[k]);
      secrets.push(await setUpTotp(pages[k], users[k], web));
      await pages[k].goto(web.url(`/app/settings/backups/${backupId}/restore?object=contacts`));
      await pages[k].locator('#prop-firstname').check();
      await pages[k].getByRole('button', { name: 'Review' }).click();
      await pages[k].waitForURL(/\/restore\/\d+$/);
      await pages[k].locator('#understand-changes').check();
      await pages[k].locator('#understand-revert').check();
    }
    for (let k = 0; k < 2; k++) await pages[k].locator('#restore-code').fill(await nextTotp(secrets[k].secret, secrets[k].usedAt));
    const results = await Promise.all(pages.map((p) => submitReview(p, 'Restore data')));
    const statuses = results.map((r) => r.status()).sort();
    assert.deepEqual(statuses, [303, 409], `one starts, the other is refused: ${statuses}`);
    const refused = pages[results.findIndex((r) => r.status() === 409)];
    await assertHeading(refused, `Review: restore contacts from backup ${backupId}`);
    assert.match(
      await refused.locator('#review-refused').innerText(),
      /^Nothing was changed\. A restore is already running in this account \("Data Restore - Contact", import \d+\)\. Only one restore may run at a time: wait until it has finished\.$/,
    );
    assert.equal(await refused.getByRole('button', { name: 'Restore data' }).count(), 1, 'the review can be applied later');
    // Once a node runs it, the one restore finishes.
    worker = await startKontor({ dataDir: web.dataDir });
    const started = pages[results.findIndex((r) => r.status() === 303)];
    await waitDone(started);
    assert.equal(await count(started, 'unchanged'), 1000);
    await started.goto(web.url('/app/imports'));
    assert.equal(await started.locator('table.imports tbody tr').count(), 1, 'one restore');
  } finally {
    await other.close();
    await worker.stop();
    await web.stop();
  }
});
