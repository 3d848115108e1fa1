'use strict';
// Settings → Data Management → Backup: a super admin creates a backup (through the dialog or
// the page it replaces without JavaScript), follows it until it is completed, is told in the
// console and by e-mail, and downloads the archive; the tier's interval, roles and CSRF.

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { unique, sleep, escape, waitForText } = require('./lib/kontor');
const { openBrowser, screenshot, signIn, assertHeading, assertStyled, SCREENSHOTS } = require('./lib/browser');
const { suite } = require('./lib/suite');

const { btest, kontor } = suite();
const INSTANT = /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/;
const SENSITIVE = /Sensitive property values are included/;

/** A PNG of what the window shows (a modal dialog's backdrop covers the window, not the page). */
async function windowShot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** An account with a super admin, an API token and two contacts. */
async function setUp({ tier = 'enterprise', role = 'super-admin' } = {}) {
  const account = await kontor.account(undefined, { tier });
  const user = await kontor.user(account.id, { role });
  const token = await kontor.token(account.id);
  const emails = [`${unique('ada')}@example.com`, `${unique('grace')}@example.com`];
  await kontor.contact(token, { email: emails[0], firstname: 'Ada', lastname: 'Lovelace' });
  await kontor.contact(token, { email: emails[1], firstname: 'Grace', lastname: 'Hopper' });
  return { account, user, token, emails };
}

/** The cells of a backup's row, by column header. */
async function rowCells(page, id) {
  return page.evaluate((id) => {
    const heads = [...document.querySelectorAll('table.backups thead th')].map((th) => th.innerText.trim());
    const cells = [...document.querySelectorAll(`#backup-${id} td`)].map((td) => td.innerText.trim());
    return Object.fromEntries(heads.map((h, i) => [h, cells[i]]));
  }, id);
}

/** Runs a command; resolves to its standard output. */
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** Checks a zip with Python's zipfile (every entry's CRC); returns its entry names. */
async function zipEntries(file) {
  const out = await run('python3', [
    '-c',
    'import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps(z.namelist()))',
    file,
  ]);
  return JSON.parse(out);
}

/** One entry of a zip as text. */
async function zipEntry(file, name) {
  return run('python3', ['-c', 'import sys, zipfile\nsys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())', file, name]);
}

function tempFile(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-backup-test-'));
  return path.join(dir, name);
}

/** Asks for a backup through the API and waits until it is completed; returns its id. */
async function apiBackup(token) {
  const r = await kontor.api(token, 'POST', '/kontor/v1/backups');
  assert.equal(r.status, 202, r.text);
  const { id } = r.body;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const b = await kontor.api(token, 'GET', `/kontor/v1/backups/${id}`);
    if (b.body?.status === 'COMPLETED') return id;
    if (b.body?.status === 'FAILED' || Date.now() > deadline) throw new Error(`backup ${id}: ${b.text}`);
    await sleep(200);
  }
}

/** Goes to the backup page through the navigation. */
async function openBackupPage(page) {
  const nav = page.getByRole('navigation', { name: 'Main' });
  assert.ok(/Data Management\s*Backup/i.test(await nav.innerText()), 'the nav has Data Management → Backup');
  await nav.getByRole('link', { name: 'Backup', exact: true }).click();
  await page.waitForURL(kontor.url('/app/settings/backups'));
  await assertHeading(page, 'Backup');
}

btest('a super admin creates a backup, is notified, and the e-mailed link gives the archive', async ({ page }) => {
  const { account, user, emails } = await setUp();
  await signIn(page, kontor, user);
  await openBackupPage(page);
  await assertStyled(page);

  // What a backup holds, before anything is created.
  const about = await page.locator('main').innerText();
  for (const words of [
    /contacts, companies, deals, tickets, products, calls, conversations, tasks and custom objects/,
    /Associations between records and activities .* are not included/,
    /one consistent snapshot of a single instant/,
    /zip archive with one CSV file per object type/,
    /downloaded for 14 days/,
  ]) {
    assert.match(about, words);
  }
  assert.equal(await page.locator('#no-backups').innerText(), 'No backups yet.');

  // "Create backup" opens a dialog on the page that warns about sensitive data.
  const dialog = page.getByRole('dialog', { name: 'Create a backup?' });
  assert.equal(await dialog.isVisible(), false);
  await page.getByRole('link', { name: 'Create backup' }).click();
  await dialog.waitFor();
  assert.equal(page.url(), kontor.url('/app/settings/backups'), 'the dialog opens without leaving the page');
  assert.match(await dialog.innerText(), SENSITIVE);
  assert.match(await dialog.innerText(), new RegExp(escape(account.name)));
  await windowShot(page, 'backups-dialog');

  // Cancel closes it and creates nothing.
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#no-backups').count(), 1);

  await page.getByRole('link', { name: 'Create backup' }).click();
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/app\/settings\/backups\?done=requested/);
  assert.match(await page.getByRole('status').innerText(), /Backup requested/);
  const rows = page.locator('table.backups tbody tr');
  assert.equal(await rows.count(), 1);
  const rowId = await rows.first().getAttribute('id');
  assert.match(rowId, /^backup-\d+$/);
  const id = rowId.slice('backup-'.length);
  const first = await rowCells(page, id);
  assert.equal(first['Created by'].split('\n')[0], user.email);
  if (/Queued|Running/.test(first.Status)) {
    // While it runs the page has a progress bar and reloads itself.
    assert.equal(await page.locator(`#backup-${id} progress`).count(), 1);
    assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 1);
    assert.ok(await page.getByRole('button', { name: 'Create backup' }).isDisabled(), 'no second backup while one runs');
    await screenshot(page, 'backups-running').catch(() => {});
  }

  // Without any reload by the test, the row reaches Completed.
  await waitForText(page.locator(`#backup-${id} td.status`), /Completed/);
  await page.waitForLoadState('load');
  const done = await rowCells(page, id);
  assert.match(done.Status, /^Completed\nDownload until /);
  assert.match(done.Size, /^\d+(\.\d)? (bytes|kB|MB)\n2 records$/);
  assert.match(done['Data as of'], INSTANT);
  assert.match(done.Started, INSTANT);
  assert.match(done.Completed, INSTANT);
  const asOf = Date.parse(await page.locator(`#backup-${id} td:nth-child(6) time`).getAttribute('datetime'));
  assert.ok(Math.abs(asOf - Date.now()) < 5 * 60_000, `data as of ${new Date(asOf).toISOString()}`);
  assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 0, 'no more reloads once it has finished');
  await screenshot(page, 'backups-completed');

  // The bell says it is ready, and its link leads to the row.
  const bell = page.locator('header .bell');
  await waitForText(page.locator('header .bell .count'), /^1$/, 10_000);
  assert.equal(await bell.getAttribute('aria-label'), 'Notifications, 1 unread');
  await bell.click();
  await page.waitForURL(kontor.url('/app/notifications'));
  const note = page.locator('main .card', { hasText: 'Your backup is ready' });
  assert.equal(await note.count(), 1);
  assert.match(await note.innerText(), /It includes sensitive property values/);
  await note.getByRole('link', { name: 'Open' }).click();
  await page.waitForURL(kontor.url(`/app/settings/backups#backup-${id}`));
  assert.equal(await page.locator(`#backup-${id}:target`).count(), 1, 'the row is the target');

  // The e-mail to the admin has a download link.
  let mail;
  const deadline = Date.now() + 15_000;
  while (!mail) {
    mail = (await kontor.mails()).find((m) => m.to.includes(user.email) && /ready/.test(m.subject));
    if (!mail && Date.now() > deadline) throw new Error(`no e-mail to ${user.email}: ${JSON.stringify(await kontor.mails())}`);
    if (!mail) await sleep(200);
  }
  assert.match(mail.body, /includes the values of sensitive properties/);
  const link = mail.body.match(/https?:\/\/\S+\/kontor\/v1\/backups\/(\d+)\/download\?\S+/);
  assert.ok(link, `no download link in:\n${mail.body}`);
  assert.equal(link[1], id);
  assert.ok(link[0].startsWith(kontor.baseUrl), `link ${link[0]}`);

  // The link gives the zip, without signing in.
  const res = await fetch(link[0]);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/zip');
  assert.match(res.headers.get('content-disposition'), /^attachment; filename="kontor-backup-.*\.zip"$/);
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(bytes.subarray(0, 2).toString('latin1'), 'PK');
  const file = tempFile('backup.zip');
  fs.writeFileSync(file, bytes);
  const names = await zipEntries(file);
  assert.ok(names.includes('manifest.json'), `entries: ${names}`);
  assert.ok(names.includes('contacts.csv'), `entries: ${names}`);
  const csv = await zipEntry(file, 'contacts.csv');
  for (const e of emails) assert.ok(csv.includes(e), `${e} in contacts.csv`);
  const manifest = JSON.parse(await zipEntry(file, 'manifest.json'));
  assert.equal(String(manifest.backupId), id);
  assert.equal(String(manifest.accountId), account.id);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });

  // A tampered link is refused.
  const bad = await fetch(link[0].replace(/signature=([0-9a-f])/, (m, c) => `signature=${c === '0' ? '1' : '0'}`));
  assert.equal(bad.status, 403);
});

btest('downloads a backup through the actions menu after a warning', async ({ page }) => {
  const { user, token, emails } = await setUp();
  const id = await apiBackup(token);
  await signIn(page, kontor, user);
  await openBackupPage(page);

  // The menu shows on hover and on keyboard focus.
  const row = page.locator(`#backup-${id}`);
  const download = row.getByRole('link', { name: 'Download' });
  const restore = row.getByRole('link', { name: 'Restore' });
  assert.equal(await download.isVisible(), false, 'the menu is closed at first');
  await row.getByRole('button', { name: `Actions for backup ${id}` }).hover();
  await download.waitFor();
  assert.equal(await restore.getAttribute('href'), `/app/settings/backups/${id}/restore`);
  await screenshot(page, 'backups-menu');
  await page.locator('h1').click();
  await page.mouse.move(0, 0);
  await download.waitFor({ state: 'hidden' });
  // The keyboard opens it too: Tab to "Actions", then on to Download.
  await row.getByRole('button', { name: `Actions for backup ${id}` }).focus();
  await download.waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await download.evaluate((a) => a === document.activeElement), true, 'Tab reaches Download');
  await page.keyboard.press('Enter');
  await page.waitForURL(kontor.url(`/app/settings/backups/${id}/download`));
  await assertHeading(page, `Download backup ${id}?`);
  assert.match(await page.locator('main').innerText(), SENSITIVE);
  assert.match(await page.locator('main').innerText(), /Records\s+2/);
  await assertStyled(page);
  await screenshot(page, 'backups-download');

  const [dl, res] = await Promise.all([
    page.waitForEvent('download'),
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Download', exact: true }).click(),
  ]);
  assert.equal(res.status(), 200);
  const headers = res.headers();
  assert.equal(headers['content-type'], 'application/zip');
  assert.match(headers['content-disposition'], /^attachment; filename="kontor-backup-\d+-\d+-\d{4}-\d{2}-\d{2}\.zip"$/);
  assert.match(dl.suggestedFilename(), /^kontor-backup-\d+-\d+-\d{4}-\d{2}-\d{2}\.zip$/);
  const file = tempFile('download.zip');
  await dl.saveAs(file);
  assert.equal(fs.readFileSync(file).subarray(0, 2).toString('latin1'), 'PK');
  const names = await zipEntries(file);
  assert.ok(names.includes('manifest.json') && names.includes('contacts.csv'), `entries: ${names}`);
  assert.ok((await zipEntry(file, 'contacts.csv')).includes(emails[0]));
  fs.rmSync(path.dirname(file), { recursive: true, force: true });

  // The download is in the audit log, under the admin's name.
  await page.goto(kontor.url('/app/settings/audit?action=backup.download'));
  const audit = await page.locator('main table tbody').innerText();
  assert.match(audit, new RegExp(escape(user.email)));
  assert.match(audit, new RegExp(`backup ${id}`));
});

btest('a second backup right away is refused with the tier rule and when the next is allowed', async ({ page }) => {
  const { user } = await setUp({ tier: 'professional' });
  await signIn(page, kontor, user);

  // The page the button leads to without JavaScript: the same confirmation.
  await page.goto(kontor.url('/app/settings/backups/new'));
  await assertHeading(page, 'Create a backup?');
  assert.match(await page.locator('main').innerText(), SENSITIVE);
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.waitForURL(/\/app\/settings\/backups\?done=requested/);
  const id = (await page.locator('table.backups tbody tr').first().getAttribute('id')).slice('backup-'.length);
  await waitForText(page.locator(`#backup-${id} td.status`), /Completed/);
  await page.waitForLoadState('load');
  const started = Date.parse(await page.locator(`#backup-${id} td:nth-child(3) time`).getAttribute('datetime'));

  // A second one is refused on the page, with the rule and the next allowed time.
  await page.getByRole('link', { name: 'Create backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a backup?' });
  await dialog.waitFor();
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    dialog.getByRole('button', { name: 'Create' }).click(),
  ]);
  assert.equal(res.status(), 429);
  await page.waitForLoadState('load');
  await assertHeading(page, 'Backup');
  const refused = await page.getByRole('alert').innerText();
  const m = refused.match(
    /^No backup was created\. Your professional subscription allows a backup once per week\. The next backup can be created from (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC\.$/,
  );
  assert.ok(m, `refusal: ${JSON.stringify(refused)}`);
  // Shown to the minute, in UTC.
  const next = Date.parse(`${m[1].replace(' ', 'T')}:00Z`);
  assert.ok(Math.abs(next - (started + 7 * 86_400_000)) < 61_000, `next ${m[1]}, started ${new Date(started).toISOString()}`);
  assert.equal(await page.locator('table.backups tbody tr').count(), 1, 'still one backup');
  await assertStyled(page);
  await screenshot(page, 'backups-refused');
});

btest('an enterprise account may back up once a day', async ({ page }) => {
  const { user, token } = await setUp();
  await apiBackup(token);
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/settings/backups/new'));
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Create', exact: true }).click(),
  ]);
  assert.equal(res.status(), 429);
  await page.waitForLoadState('load');
  assert.match(
    await page.getByRole('alert').innerText(),
    /Your enterprise subscription allows a backup once every 24 hours\. The next backup can be created from \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\./,
  );
});

for (const role of ['admin', 'user']) {
  btest(`a user with the ${role} role has no backup page`, async ({ page }) => {
    const { user, token } = await setUp({ role });
    await signIn(page, kontor, user);
    const nav = await page.getByRole('navigation', { name: 'Main' }).innerText();
    assert.doesNotMatch(nav, /Data Management/i);
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Backup' }).count(), 0);
    if (role === 'admin') assert.match(nav, /Users/, 'an admin still has the other settings');
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();

    for (const p of ['/app/settings/backups', '/app/settings/backups/new', '/app/settings/backups/1/download']) {
      const res = await page.goto(kontor.url(p));
      assert.equal(res.status(), 403, p);
      await assertHeading(page, 'Not allowed');
      assert.equal(await page.getByRole('button', { name: 'Create backup' }).count(), 0);
      assert.equal(await page.getByRole('link', { name: 'Create backup' }).count(), 0);
    }
    // Posting by hand, with the session's valid CSRF token, is refused too.
    for (const p of ['/app/settings/backups', '/app/settings/backups/1/download']) {
      const res = await page.request.post(kontor.url(p), { form: { _csrf: csrf }, maxRedirects: 0 });
      assert.equal(res.status(), 403, p);
      assert.match(await res.text(), /Not allowed/);
    }
    const list = await kontor.api(token, 'GET', '/kontor/v1/backups');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.results, [], 'no backup was created');
  });
}

btest('a backup form posted without its CSRF token is refused', async ({ page }) => {
  const { user, token } = await setUp();
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/settings/backups'));
  await page.getByRole('link', { name: 'Create backup' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a backup?' });
  await dialog.waitFor();
  await dialog.locator('input[name=_csrf]').evaluate((e) => e.remove());
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    dialog.getByRole('button', { name: 'Create' }).click(),
  ]);
  assert.equal(res.status(), 403);
  await page.waitForLoadState('load');
  await assertHeading(page, 'Form expired');

  // A wrong token, sent by hand.
  let r = await page.request.post(kontor.url('/app/settings/backups'), { form: { _csrf: 'guessed' }, maxRedirects: 0 });
  assert.equal(r.status(), 403);
  assert.match(await r.text(), /Form expired/);
  r = await page.request.post(kontor.url('/app/settings/backups'), { form: {}, maxRedirects: 0 });
  assert.equal(r.status(), 403);

  const list = await kontor.api(token, 'GET', '/kontor/v1/backups');
  assert.deepEqual(list.body.results, [], 'no backup was created');
  await page.goto(kontor.url('/app/settings/backups'));
  assert.equal(await page.locator('#no-backups').count(), 1);

  // Nor is a download without the token.
  const id = await apiBackup(token);
  r = await page.request.post(kontor.url(`/app/settings/backups/${id}/download`), { form: {}, maxRedirects: 0 });
  assert.equal(r.status(), 403);
  assert.notEqual(r.headers()['content-type'], 'application/zip');
});

btest("another account's backup is not found, and unknown ids are not found", async ({ page }) => {
  const a = await setUp();
  const b = await setUp();
  const theirs = await apiBackup(a.token);
  await signIn(page, kontor, b.user);
  // Backup ids are counted per account: B has none, so A's id is not one of B's.
  for (const p of [`/app/settings/backups/${theirs}/download`, '/app/settings/backups/999999/download', '/app/settings/backups/abc/download']) {
    const res = await page.goto(kontor.url(p));
    assert.equal(res.status(), 404, p);
    await assertHeading(page, 'Not found');
  }
  await page.goto(kontor.url('/app/settings/backups'));
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const r = await page.request.post(kontor.url(`/app/settings/backups/${theirs}/download`), { form: { _csrf: csrf }, maxRedirects: 0 });
  assert.equal(r.status(), 404);
  assert.notEqual(r.headers()['content-type'], 'application/zip');
  const other = await openBrowser();
  try {
    await signIn(other.page, kontor, a.user);
    const res = await other.page.goto(kontor.url(`/app/settings/backups/${theirs}/download`));
    assert.equal(res.status(), 200, 'its own account sees it');
  } finally {
    await other.close();
  }
});
