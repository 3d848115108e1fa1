'use strict';
// Data Management → Imports: an admin uploads a CSV file of contacts, maps its columns (the
// headers that match a property are chosen already), sees what each row will do, starts the
// import and follows it to the end; the counts, the rejected rows as a CSV file, the records
// through the API, the notification. A contact deleted for good comes back under its old ID
// through a Record ID column, one still in the recycle bin is rejected with the reason. Roles,
// CSRF, and files that cannot be imported.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { setUp, unique, waitForText } = require('./lib/kontor');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

const { btest, kontor } = suite();

/** The cells of an import's row in the list, by column header. */
async function rowCells(page, id) {
  return page.evaluate((id) => {
    const heads = [...document.querySelectorAll('table.imports thead th')].map((th) => th.innerText.trim());
    const cells = [...document.querySelectorAll(`#import-${id} td`)].map((td) => td.innerText.trim());
    return Object.fromEntries(heads.map((h, i) => [h, cells[i]]));
  }, id);
}

/** The contact with this e-mail through the API's search, or null. */
async function contactByEmail(token, email) {
  const r = await kontor.api(token, 'POST', '/crm/v3/objects/contacts/search', {
    filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: email }] }],
    properties: ['email', 'firstname', 'lastname', 'num_employees'],
  });
  assert.equal(r.status, 200, r.text);
  return r.body.results[0] || null;
}

/** Uploads a CSV file through the first step; ends on the mapping step. */
async function upload(page, csv, { object = 'contacts', operation = 'UPSERT', name = 'contacts.csv' } = {}) {
  await page.goto(kontor.url('/app/imports/new'));
  await assertHeading(page, 'Import a file');
  await page.locator('#import-object').selectOption(object);
  await page.locator(`#op-${operation.toLowerCase()}`).check();
  await page.locator('#import-file').setInputFiles({ name, mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.waitForURL(/\/app\/imports\/new\/[0-9a-f]{32}$/);
  await assertHeading(page, 'Map the columns');
  return page.url().match(/([0-9a-f]{32})$/)[1];
}

/** Starts the previewed import; waits until it is done; returns its id. */
async function startAndWait(page) {
  await page.getByRole('button', { name: 'Start import' }).click();
  await page.waitForURL(/\/app\/imports\/\d+\?done=started$/);
  const id = page.url().match(/\/app\/imports\/(\d+)/)[1];
  assert.match(await page.locator('#import-notice').innerText(), /Import started/);
  await waitForText(page.locator('#import-state'), /Done|Failed|Canceled/);
  await page.waitForLoadState('load');
  assert.match(await page.locator('#import-state').innerText(), /^Done$/);
  assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 0, 'no more reloads once done');
  return id;
}

async function count(page, what) {
  return Number((await page.locator(`#count-${what}`).innerText()).trim());
}

/** Parses CSV text (quotes, doubled quotes, CRLF) into rows. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

btest('an admin imports contacts: mapping, preview, counts, rejected rows, notification', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  const existing = `${unique('old')}@example.com`;
  const existingId = await kontor.contact(token, { email: existing, firstname: 'Old', lastname: 'Name' });
  const ada = `${unique('ada')}@example.com`;
  const grace = `${unique('grace')}@example.com`;
  const bad = `${unique('bad')}@example.com`;
  const csv = [
    'Email,First Name,Last Name,Number of Employees,Favourite colour',
    `${ada},Ada,Lovelace,12,blue`,
    `${grace},Grace,"Hopper, Rear Admiral",,green`,
    `${existing},Updated,Person,5,red`,
    `${bad},Bad,Number,lots,black`,
    '',
  ].join('\n');

  await signIn(page, kontor, user);
  // Imports is in the navigation of an admin.
  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Imports', exact: true }).click();
  await page.waitForURL(kontor.url('/app/imports'));
  await assertHeading(page, 'Imports');
  await assertStyled(page);
  assert.equal(await page.locator('#no-imports').innerText(), 'No imports yet.');
  await page.getByRole('link', { name: 'Import a file' }).click();
  await page.waitForURL(kontor.url('/app/imports/new'));

  const tokenPath = await upload(page, csv);
  // Headers that match a property's label or name are mapped already; the others are not.
  assert.equal(await page.locator('#map-0').inputValue(), 'email');
  assert.equal(await page.locator('#map-1').inputValue(), 'firstname');
  assert.equal(await page.locator('#map-2').inputValue(), 'lastname');
  assert.equal(await page.locator('#map-3').inputValue(), 'num_employees');
  assert.equal(await page.locator('#map-4').inputValue(), '', "Favourite colour: Don't import");
  assert.equal(await page.locator('#map-4 option:checked').innerText(), "Don't import");
  assert.ok(await page.locator('#key-email').isChecked(), 'the e-mail column is the key');
  assert.equal(await page.locator('#import-name').inputValue(), 'contacts.csv');
  assert.match(await page.locator('#column-1 td.samples').innerText(), /Ada\s+Grace\s+Updated/);
  await screenshot(page, 'import-mapping');

  // Record ID as the key without a column of record IDs: refused, next to the choice.
  await page.locator('#key-hs_object_id').check();
  let [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Preview' }).click(),
  ]);
  assert.equal(res.status(), 400);
  await page.waitForLoadState('load');
  await assertHeading(page, 'Map the columns');
  assert.match(await page.locator('#key-error').innerText(), /No column is mapped to Record ID/);
  assert.equal(await page.locator('#map-3').inputValue(), 'num_employees', 'the mapping is kept');

  await page.locator('#key-email').check();
  await page.locator('#import-name').fill('Spring contacts');
  await page.getByRole('button', { name: 'Preview' }).click();
  await assertHeading(page, 'Preview: Spring contacts');
  assert.equal(await page.locator('#preview-total').innerText(), '4');
  assert.equal(await page.locator('#preview-creates').innerText(), '3');
  assert.equal(await page.locator('#preview-updates').innerText(), '1');
  assert.equal(await page.locator('#preview-rejects').innerText(), '0');
  assert.match(await page.locator('#preview-key').innerText(), /^Email \(column Email\)$/);
  const previewRows = await page.locator('#preview-rows tbody tr').allInnerTexts();
  assert.equal(previewRows.length, 4);
  assert.match(previewRows[0], new RegExp(`^2\\s+create\\s+${ada.replace(/\./g, '\\.')}`));
  assert.match(previewRows[2], new RegExp(`^4\\s+update contact ${existingId}\\s`));
  await screenshot(page, 'import-preview');

  // Nothing is imported before "Start import".
  assert.equal(await contactByEmail(token, ada), null);
  const id = await startAndWait(page);
  await assertHeading(page, 'Spring contacts');
  assert.equal(await count(page, 'created'), 2);
  assert.equal(await count(page, 'updated'), 1);
  assert.equal(await count(page, 'rejected'), 1);
  assert.equal(await count(page, 'conflicts'), 0);
  assert.equal((await page.locator('#import-object').innerText()).trim(), 'Contacts');
  assert.equal((await page.locator('#import-operation').innerText()).trim(), 'Create and update');
  assert.equal((await page.locator('#import-by').innerText()).trim(), user.email);
  assert.match(await page.locator('#import-progress').innerText(), /100% · 4 of 4 rows/);
  assert.equal(await page.getByRole('button', { name: 'Cancel import' }).count(), 0, 'a finished import cannot be canceled');
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const cancel = await page.request.post(kontor.url(`/app/imports/${id}/cancel`), { form: { _csrf: csrf }, maxRedirects: 0 });
  assert.equal(cancel.status(), 409);
  assert.match(await cancel.text(), /Import \d+ is DONE and can no longer be canceled\./);
  await screenshot(page, 'import-done');

  // The staged file is gone once the import started.
  const gone = await page.goto(kontor.url(`/app/imports/new/${tokenPath}`));
  assert.equal(gone.status(), 404);
  await page.goBack();

  // The rejected rows, as a CSV file with each row as it was and the reason.
  await page.goto(kontor.url(`/app/imports/${id}`));
  const link = page.getByRole('link', { name: 'Download rejected rows' });
  const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(dl.suggestedFilename(), `kontor-import-${id}-rejected-rows.csv`);
  const file = await dl.path();
  const text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  const rows = parseCsv(text);
  assert.deepEqual(rows[0], ['Email', 'First Name', 'Last Name', 'Number of Employees', 'Favourite colour', 'Line', 'Error type', 'Reason']);
  assert.equal(rows.length, 2, `rejected rows:\n${text}`);
  assert.deepEqual(rows[1].slice(0, 7), [bad, 'Bad', 'Number', 'lots', 'black', '5', 'INVALID_INTEGER']);
  assert.match(rows[1][7], /"lots" was not a valid number for num_employees/);
  const direct = await page.request.get(kontor.url(`/app/imports/${id}/rejected-rows`));
  assert.equal(direct.status(), 200);
  assert.equal(direct.headers()['content-type'], 'text/csv; charset=utf-8');
  assert.match(direct.headers()['content-disposition'], /^attachment; filename="kontor-import-\d+-rejected-rows\.csv"$/);

  // The records, through the API.
  const a = await contactByEmail(token, ada);
  assert.ok(a, 'Ada was created');
  assert.equal(a.properties.firstname, 'Ada');
  assert.equal(a.properties.num_employees, '12');
  const g = await contactByEmail(token, grace);
  assert.equal(g.properties.lastname, 'Hopper, Rear Admiral');
  const e = await contactByEmail(token, existing);
  assert.equal(e.id, existingId, 'the existing contact was updated, not duplicated');
  assert.equal(e.properties.firstname, 'Updated');
  assert.equal(e.properties.num_employees, '5');
  assert.equal(await contactByEmail(token, bad), null, 'the rejected row created nothing');

  // The list: newest first, with the counts.
  await page.goto(kontor.url('/app/imports'));
  const cells = await rowCells(page, id);
  assert.equal(cells.Name.split('\n')[0], 'Spring contacts');
  assert.equal(cells.Object, 'Contacts');
  assert.equal(cells.Source, 'Import');
  assert.equal(cells.State, 'Done');
  assert.deepEqual([cells.Created, cells.Updated, cells.Unchanged, cells.Conflicts, cells.Rejected], ['2', '1', '0', '0', '1']);
  assert.match(cells.Finished, /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
  await screenshot(page, 'imports-list');

  // The notification leads to the import's page.
  await waitForText(page.locator('header .bell .count'), /^1$/, 10_000).catch(async () => {
    await page.reload();
    await waitForText(page.locator('header .bell .count'), /^1$/, 10_000);
  });
  await page.locator('header .bell').click();
  const note = page.locator('main .card', { hasText: 'Your import finished' });
  assert.match(await note.innerText(), /Spring contacts finished: 2 created, 1 updated/);
  await note.getByRole('link', { name: 'Open' }).click();
  await page.waitForURL(kontor.url(`/app/imports/${id}`));
  await assertHeading(page, 'Spring contacts');
});

btest('a contact deleted for good comes back under its old ID; one in the recycle bin is rejected', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  const goneEmail = `${unique('gone')}@example.com`;
  const goneId = await kontor.contact(token, { email: goneEmail, firstname: 'Gone', lastname: 'Forever' });
  const binId = await kontor.contact(token, { email: `${unique('bin')}@example.com`, firstname: 'In', lastname: 'Bin' });
  await signIn(page, kontor, user);

  // Both are deleted; one is then deleted permanently from the recycle bin.
  for (const id of [goneId, binId]) {
    await page.goto(kontor.url(`/app/objects/contacts/${id}`));
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/\/app\/objects\/contacts\?deleted=/);
  }
  await page.goto(kontor.url('/app/recycle-bin?type=contacts'));
  await page.locator(`#pick-${goneId}`).check();
  await page.getByRole('button', { name: 'Delete permanently' }).click();
  await page.waitForURL(/\/app\/recycle-bin\?/);
  assert.match(await page.getByRole('status').innerText(), /Deleted 1 contacts permanently/);
  assert.equal(await page.locator(`#pick-${goneId}`).count(), 0);
  assert.equal((await kontor.api(token, 'GET', `/crm/v3/objects/contacts/${goneId}`)).status, 404);

  const csv = ['Record ID,Email,First Name', `${goneId},${goneEmail},Back`, `${binId},,Nope`, ''].join('\n');
  await upload(page, csv, { name: 'ids.csv' });
  assert.equal(await page.locator('#map-0').inputValue(), 'hs_object_id', 'the "Record ID" header maps to the record ID');
  assert.ok(await page.locator('#key-hs_object_id').isChecked(), 'the record ID is the key');
  await page.getByRole('button', { name: 'Preview' }).click();
  await assertHeading(page, 'Preview: ids.csv');
  assert.match(await page.locator('#preview-key').innerText(), /^Record ID \(column Record ID\)$/);
  assert.equal(await page.locator('#preview-creates').innerText(), '2');
  const previewRows = await page.locator('#preview-rows tbody tr').allInnerTexts();
  assert.match(previewRows[0], new RegExp(`create \\(record ID ${goneId}\\)`));

  const id = await startAndWait(page);
  assert.equal(await count(page, 'created'), 1);
  assert.equal(await count(page, 'rejected'), 1);
  const res = await page.request.get(kontor.url(`/app/imports/${id}/rejected-rows`));
  const rows = parseCsv((await res.text()).replace(/^\uFEFF/, ''));
  assert.deepEqual(rows[0], ['Record ID', 'Email', 'First Name', 'Line', 'Error type', 'Reason']);
  assert.deepEqual(rows[1].slice(0, 5), [binId, '', 'Nope', '3', 'OBJECT_ALREADY_EXISTS']);
  assert.match(rows[1][5], new RegExp(`contact ${binId} is in the recycle bin: restore it from there`));

  // The purged contact is back, with its old ID and the file's values.
  await page.goto(kontor.url(`/app/objects/contacts/${goneId}`));
  assert.equal((await page.locator('dd[data-property="hs_object_id"]').innerText()).trim(), goneId);
  assert.equal((await page.locator('dd[data-property="firstname"]').innerText()).trim(), 'Back');
  assert.equal((await page.locator('dd[data-property="email"]').innerText()).trim(), goneEmail);
  // The other is still in the recycle bin, untouched.
  assert.equal((await kontor.api(token, 'GET', `/crm/v3/objects/contacts/${binId}`)).status, 404);
  await page.goto(kontor.url('/app/recycle-bin?type=contacts'));
  assert.equal(await page.locator(`#pick-${binId}`).count(), 1);
});

btest('the mapping can be changed after the preview, and the upload can be discarded', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'super-admin');
  await signIn(page, kontor, user);
  const email = `${unique('only')}@example.com`;
  await upload(page, `E-mail address,Surname\n${email},Only\n`, { operation: 'CREATE', name: 'only.csv' });
  // Neither header matches: they are chosen by hand.
  assert.equal(await page.locator('#map-0').inputValue(), '');
  await page.locator('#map-0').selectOption('email');
  await page.locator('#map-1').selectOption('firstname');
  await page.locator('#key-email').check();
  await page.getByRole('button', { name: 'Preview' }).click();
  await assertHeading(page, 'Preview: only.csv');
  await page.getByRole('button', { name: 'Change the mapping' }).click();
  await assertHeading(page, 'Map the columns');
  assert.equal(await page.locator('#map-1').inputValue(), 'firstname', 'the choices come back');
  await page.locator('#map-1').selectOption('lastname');
  await page.getByRole('button', { name: 'Preview' }).click();
  const id = await startAndWait(page);
  assert.equal(await count(page, 'created'), 1);
  assert.equal((await page.locator('#import-operation').innerText()).trim(), 'Create');
  const c = await contactByEmail(token, email);
  assert.equal(c.properties.lastname, 'Only');
  assert.equal(c.properties.firstname ?? null, null);
  assert.equal(await page.locator('#no-rejected').innerText(), 'No row was rejected.');
  assert.ok(id);

  // Discarding an upload deletes it.
  const t = await upload(page, `Email\n${unique('x')}@example.com\n`, { name: 'discard.csv' });
  await page.getByRole('button', { name: 'Discard the file' }).click();
  await page.waitForURL(kontor.url('/app/imports?done=discarded'));
  assert.match(await page.getByRole('status').innerText(), /discarded/);
  assert.equal((await page.goto(kontor.url(`/app/imports/new/${t}`))).status(), 404);
});

btest('files that cannot be imported are refused with the reason', async ({ page }) => {
  const { user } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const refused = async (buffer, name, re) => {
    await page.goto(kontor.url('/app/imports/new'));
    await page.locator('#import-file').setInputFiles({ name, mimeType: 'text/csv', buffer });
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Upload' }).click(),
    ]);
    assert.equal(res.status(), 400, name);
    await page.waitForLoadState('load');
    await assertHeading(page, 'Import a file');
    assert.match(await page.locator('#upload-error').innerText(), re);
  };
  await refused(Buffer.from([0x45, 0x6d, 0x61, 0x69, 0x6c, 0x0a, 0xff, 0xfe, 0x0a]), 'latin.csv', /not UTF-8 text/);
  await refused(Buffer.from('Email\n'), 'header-only.csv', /has a header but no rows/);
  await refused(Buffer.from('Email,Name\n"a@example.com,Ada\n'), 'quotes.csv', /quoted value is not closed/);

  // Another user's upload token is not found (tokens are bound to the user).
  const other = await upload(page, 'Email\nz@example.com\n');
  const files = fs.readdirSync(kontor.dataDir, { recursive: true }).map(String);
  assert.ok(
    files.some((f) => f.endsWith(`staging/imports/${user.accountId}/${user.id}/${other}.csv`)),
    'the upload waits in the staging folder of its account and user',
  );
  const second = await kontor.user(user.accountId, { role: 'admin' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, kontor, second);
  assert.equal((await page.goto(kontor.url(`/app/imports/new/${other}`))).status(), 404);
  assert.equal((await page.goto(kontor.url('/app/imports/new/..%2F..%2Fetc'))).status(), 404);
});

btest('a plain user has no imports; forms need their CSRF token', async ({ page }) => {
  const { account, user } = await setUp(kontor, 'user');
  await signIn(page, kontor, user);
  const nav = await page.getByRole('navigation', { name: 'Main' }).innerText();
  assert.doesNotMatch(nav, /Imports/);
  for (const p of ['/app/imports', '/app/imports/new', '/app/imports/1']) {
    const res = await page.goto(kontor.url(p));
    assert.equal(res.status(), 403, p);
    await assertHeading(page, 'Not allowed');
  }
  await page.goto(kontor.url('/app/objects/contacts'));
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const r = await page.request.post(kontor.url('/app/imports/new'), {
    multipart: { _csrf: csrf, object: 'contacts', operation: 'CREATE', file: { name: 'a.csv', mimeType: 'text/csv', buffer: Buffer.from('Email\na@example.com\n') } },
    maxRedirects: 0,
  });
  assert.equal(r.status(), 403);

  // An admin's upload without the form's token is refused before the file is kept.
  const admin = await kontor.user(account.id, { role: 'admin' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, kontor, admin);
  const noToken = await page.request.post(kontor.url('/app/imports/new'), {
    multipart: { object: 'contacts', operation: 'CREATE', file: { name: 'a.csv', mimeType: 'text/csv', buffer: Buffer.from('Email\na@example.com\n') } },
    maxRedirects: 0,
  });
  assert.equal(noToken.status(), 403);
  assert.match(await noToken.text(), /Form expired/);
  const staged = fs
    .readdirSync(kontor.dataDir, { recursive: true })
    .map(String)
    .filter((f) => f.includes(`staging/imports/${account.id}/`) && /\.(csv|partial)$/.test(f));
  assert.deepEqual(staged, [], 'nothing was staged');
});

// Files saved by spreadsheet programs end their lines with CRLF: the line numbers of the preview
// and of the rejected rows must still be the file's.
btest('line numbers of a file with CRLF line ends are the file\'s', async ({ page }) => {
  const { user } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const csv = ['Email,Number of Employees', `${unique('a')}@example.com,1`, `${unique('b')}@example.com,many`, ''].join('\r\n');
  await upload(page, csv, { name: 'crlf.csv' });
  await page.getByRole('button', { name: 'Preview' }).click();
  const first = await page.locator('#preview-rows tbody tr').first().innerText();
  const id = await startAndWait(page);
  const res = await page.request.get(kontor.url(`/app/imports/${id}/rejected-rows`));
  const rows = parseCsv((await res.text()).replace(/^\uFEFF/, ''));
  assert.equal(rows[1][2], '3', `line of the rejected row: ${JSON.stringify(rows[1])}`);
  assert.match(first, /^2\s/, `first preview row: ${first}`);
});

btest('a running import shows its progress and can be canceled; rows already imported stay', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const rows = ['Email,First Name'];
  const prefix = unique('bulk');
  for (let i = 0; i < 40_000; i++) rows.push(`${prefix}-${i}@example.com,Row ${i}`);
  await upload(page, `${rows.join('\n')}\n`, { operation: 'CREATE', name: 'bulk.csv' });
  await page.getByRole('button', { name: 'Preview' }).click();
  await assertHeading(page, 'Preview: bulk.csv');
  assert.equal(await page.locator('#preview-total').innerText(), '40000');
  assert.match(await page.locator('main').innerText(), /The counts are from the first 20000 rows of 40000/);
  await page.getByRole('button', { name: 'Start import' }).click();
  await page.waitForURL(/\/app\/imports\/\d+\?done=started$/);
  const id = page.url().match(/\/app\/imports\/(\d+)/)[1];
  // Queued or running: a progress bar, a page that reloads itself, and a Cancel button.
  assert.match(await page.locator('#import-state').innerText(), /^(Queued|Running — \d+%)$/);
  assert.equal(await page.locator('#import-state progress').count(), 1);
  assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 1);
  await screenshot(page, 'import-running');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Cancel import' }).click(),
  ]);
  assert.equal(res.status(), 303, 'canceled while it ran');
  await page.waitForURL(kontor.url(`/app/imports/${id}?done=canceled`));
  assert.equal((await page.locator('#import-state').innerText()).trim(), 'Canceled');
  assert.match(await page.getByRole('status').innerText(), /Import canceled/);
  const created = await count(page, 'created');
  assert.ok(created < 40_000, `created ${created} of 40000 before the cancel`);
  // The job stops: the count does not move any more, and it matches the CRM.
  await new Promise((r) => setTimeout(r, 1500));
  await page.reload();
  assert.equal(await count(page, 'created'), created);
  const search = await kontor.api(token, 'POST', '/crm/v3/objects/contacts/search', {
    filterGroups: [{ filters: [{ propertyName: 'email', operator: 'CONTAINS_TOKEN', value: `${prefix}-*` }] }],
    limit: 1,
  });
  if (search.status === 200 && typeof search.body.total === 'number') assert.equal(search.body.total, created);
  // Canceling it again changes nothing.
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const again = await page.request.post(kontor.url(`/app/imports/${id}/cancel`), { form: { _csrf: csrf }, maxRedirects: 0 });
  assert.equal(again.status(), 303);
  await page.reload();
  assert.equal((await page.locator('#import-state').innerText()).trim(), 'Canceled');
  assert.equal(await count(page, 'created'), created);
});
