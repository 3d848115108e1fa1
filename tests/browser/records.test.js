'use strict';
// Records in the console: the contacts list (paging, sorting, search), creating, editing
// with field errors, deleting to the recycle bin and restoring with the same id and values.
// What the console shows is checked against the API as well.

const assert = require('node:assert/strict');
const { setUp, unique } = require('./lib/kontor');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

const { btest, kontor } = suite();
const PROPS = 'email,firstname,lastname,jobtitle,annualrevenue,lifecyclestage';

async function apiContact(token, id) {
  return kontor.api(token, 'GET', `/crm/v3/objects/contacts/${id}?properties=${PROPS}`);
}

/** The value shown for a property on a record page. */
async function shown(page, prop) {
  return (await page.locator(`dd[data-property="${prop}"]`).innerText()).trim();
}

btest('creates, edits, deletes and restores a contact', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const email = `${unique('ada')}@example.com`;

  // Create from the list.
  await page.getByRole('link', { name: 'Create contact' }).click();
  await page.waitForURL(kontor.url('/app/objects/contacts/new'));
  await assertHeading(page, 'Create contact');
  await page.locator('#f-email').fill(email);
  await page.locator('#f-firstname').fill('Ada');
  await page.locator('#f-lastname').fill('Lovelace');
  await page.locator('#f-jobtitle').fill('Analyst');
  await page.locator('#f-lifecyclestage').selectOption('lead');
  await page.locator('#f-annualrevenue').fill('125000');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/\/app\/objects\/contacts\/\d+$/);
  const id = page.url().match(/(\d+)$/)[1];

  await assertHeading(page, 'Ada Lovelace');
  assert.equal(await shown(page, 'email'), email);
  assert.equal(await shown(page, 'firstname'), 'Ada');
  assert.equal(await shown(page, 'lastname'), 'Lovelace');
  assert.equal(await shown(page, 'jobtitle'), 'Analyst');
  assert.equal(await shown(page, 'lifecyclestage'), 'Lead', 'options show their labels');
  assert.equal(await shown(page, 'annualrevenue'), '125000');
  assert.equal(await shown(page, 'hs_object_id'), id);
  // The history names the console as the source of the values.
  const history = await page.locator('section[aria-labelledby="history"] tbody').innerText();
  assert.match(history, /firstname\s+Ada\s+UI/, `history:\n${history}`);
  await assertStyled(page);
  await screenshot(page, 'contact-page');

  let api = await apiContact(token, id);
  assert.equal(api.status, 200, api.text);
  assert.equal(api.body.id, id);
  assert.equal(api.body.properties.email, email);
  assert.equal(api.body.properties.firstname, 'Ada');
  assert.equal(api.body.properties.lastname, 'Lovelace');
  assert.equal(api.body.properties.annualrevenue, '125000');
  assert.equal(api.body.properties.lifecyclestage, 'lead');

  // Edit: the form holds the stored values; a bad number is refused next to its field and
  // everything typed is kept.
  await page.getByRole('link', { name: 'Edit', exact: true }).click();
  await page.waitForURL(kontor.url(`/app/objects/contacts/${id}/edit`));
  await assertHeading(page, `Edit contact ${id}`);
  assert.equal(await page.locator('#f-email').inputValue(), email);
  assert.equal(await page.locator('#f-lastname').inputValue(), 'Lovelace');
  assert.equal(await page.locator('#f-lifecyclestage').inputValue(), 'lead');
  await page.locator('#f-firstname').fill('Augusta Ada');
  await page.locator('#f-annualrevenue').fill('lots');
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Save' }).click(),
  ]);
  assert.equal(refused.status(), 400);
  await page.waitForLoadState('load');
  assert.equal(page.url(), kontor.url(`/app/objects/contacts/${id}/edit`));
  const fieldError = page.locator('#f-annualrevenue-error');
  assert.match(await fieldError.innerText(), /not a valid number/);
  assert.equal(await page.locator('#f-annualrevenue').getAttribute('aria-describedby'), 'f-annualrevenue-error');
  // The message sits with its field (inside the same field block), not somewhere else.
  assert.equal(
    await fieldError.evaluate((e) => e.closest('.field')?.querySelector('#f-annualrevenue') !== null),
    true,
    'the error is inside the field block of annualrevenue',
  );
  assert.equal(await page.locator('.error').count(), 1, 'only the bad field has an error');
  assert.equal(await page.locator('#f-annualrevenue').inputValue(), 'lots');
  assert.equal(await page.locator('#f-firstname').inputValue(), 'Augusta Ada');
  assert.equal(await page.locator('#f-email').inputValue(), email);
  assert.match(await page.getByRole('alert').first().innerText(), /Some values need fixing/);
  await assertStyled(page);
  await screenshot(page, 'contact-edit-error');
  api = await apiContact(token, id);
  assert.equal(api.body.properties.firstname, 'Ada', 'nothing was saved from the refused form');

  await page.locator('#f-annualrevenue').fill('250000');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(kontor.url(`/app/objects/contacts/${id}`));
  await assertHeading(page, 'Augusta Ada Lovelace');
  assert.equal(await shown(page, 'annualrevenue'), '250000');
  api = await apiContact(token, id);
  assert.equal(api.body.properties.firstname, 'Augusta Ada');
  assert.equal(api.body.properties.annualrevenue, '250000');
  const before = api.body.properties;

  // Delete: back to the list, with a way to the recycle bin.
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.waitForURL(kontor.url(`/app/objects/contacts?deleted=${id}`));
  await assertHeading(page, 'Contacts');
  const flash = page.getByRole('status');
  assert.match(await flash.innerText(), new RegExp(`Contact ${id} was moved to the recycle bin`));
  assert.equal(await page.locator(`tbody a[href="/app/objects/contacts/${id}"]`).count(), 0, 'gone from the list');
  api = await apiContact(token, id);
  assert.equal(api.status, 404, 'the API no longer finds the deleted contact');
  const gone = await page.request.get(kontor.url(`/app/objects/contacts/${id}`));
  assert.equal(gone.status(), 404);

  await flash.getByRole('link', { name: 'Open the recycle bin' }).click();
  await page.waitForURL(kontor.url('/app/recycle-bin?type=contacts'));
  await assertHeading(page, 'Recycle bin');
  const row = page.locator('tbody tr', { has: page.locator(`#pick-${id}`) });
  assert.equal(await row.count(), 1);
  assert.match(await row.innerText(), /Augusta Ada/);
  assert.equal(await page.getByRole('button', { name: 'Delete permanently' }).count(), 1, 'admins may purge');
  await assertStyled(page);
  await screenshot(page, 'recycle-bin');

  // Restore: the same id and the same values come back.
  await page.locator(`#pick-${id}`).check();
  await page.getByRole('button', { name: 'Restore' }).click();
  await page.waitForURL(/\/app\/recycle-bin\?type=contacts&done=/);
  assert.match(await page.getByRole('status').innerText(), /Restored 1 contacts?\./);
  assert.equal(await page.locator(`#pick-${id}`).count(), 0, 'no longer in the recycle bin');
  assert.match(await page.locator('main').innerText(), /No deleted contacts\./);

  await page.goto(kontor.url(`/app/objects/contacts/${id}`));
  await assertHeading(page, 'Augusta Ada Lovelace');
  assert.equal(await shown(page, 'email'), email);
  assert.equal(await shown(page, 'lastname'), 'Lovelace');
  assert.equal(await shown(page, 'annualrevenue'), '250000');
  assert.equal(await shown(page, 'hs_object_id'), id);
  api = await apiContact(token, id);
  assert.equal(api.status, 200, api.text);
  assert.equal(api.body.id, id);
  for (const p of PROPS.split(',')) {
    assert.equal(api.body.properties[p], before[p], `${p} after restoring`);
  }
  // The e-mail address is taken again by the restored contact.
  const dup = await kontor.api(token, 'POST', '/crm/v3/objects/contacts', { properties: { email } });
  assert.equal(dup.status, 409, `a second contact with ${email}: ${dup.text}`);
});

btest('a bad value when creating stays in the form with a message at its field', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'user');
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/objects/contacts/new'));
  const email = `${unique('grace')}@example.com`;
  await page.locator('#f-email').fill(email);
  await page.locator('#f-firstname').fill('Grace');
  await page.locator('#f-num_employees').fill('a dozen');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Save' }).click(),
  ]);
  assert.equal(res.status(), 400);
  await page.waitForLoadState('load');
  await assertHeading(page, 'Create contact');
  assert.match(await page.locator('#f-num_employees-error').innerText(), /not a valid number/);
  assert.equal(await page.locator('#f-num_employees').inputValue(), 'a dozen');
  assert.equal(await page.locator('#f-email').inputValue(), email);
  assert.equal(await page.locator('#f-firstname').inputValue(), 'Grace');
  const search = await kontor.api(token, 'POST', '/crm/v3/objects/contacts/search', {
    filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: email }] }],
  });
  assert.equal(search.status, 200, search.text);
  assert.equal(search.body.total, 0, 'nothing was created');
});

btest('a duplicate e-mail address gets a message at the e-mail field', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'user');
  const email = `${unique('taken')}@example.com`;
  const existing = await kontor.contact(token, { email, firstname: 'First' });
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/objects/contacts/new'));
  // Same address, other case: e-mail addresses are unique regardless of case.
  await page.locator('#f-email').fill(email.toUpperCase());
  await page.locator('#f-firstname').fill('Second');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForLoadState('load');
  await assertHeading(page, 'Create contact');
  const msg = await page.locator('#f-email-error').innerText();
  assert.match(msg, /already exists/i);
  assert.match(msg, new RegExp(existing), 'the message names the contact that has the address');
  assert.equal(await page.locator('#f-email').inputValue(), email.toUpperCase());
  assert.equal(await page.locator('#f-firstname').inputValue(), 'Second');
  assert.equal(await page.locator('#f-email').getAttribute('aria-describedby'), 'f-email-error');
});

btest('the contacts list pages, sorts by a column and searches', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'user');
  const marker = unique('m');
  const inputs = [];
  for (let i = 0; i < 30; i += 1) {
    const n = String(i).padStart(2, '0');
    inputs.push({
      properties: {
        email: `${marker}-${n}@example.com`,
        firstname: `First${n}`,
        // Last names run the other way round from the ids.
        lastname: `Last${String(29 - i).padStart(2, '0')}`,
      },
    });
  }
  const created = await kontor.api(token, 'POST', '/crm/v3/objects/contacts/batch/create', { inputs });
  assert.equal(created.status, 201, created.text);
  const ids = created.body.results.map((r) => Number(r.id)).sort((a, b) => a - b);

  await signIn(page, kontor, user);
  const main = page.locator('main');
  assert.match(await main.innerText(), /30 records/);
  assert.match(await page.locator('.pager').innerText(), /Showing 1–25 of 30/);
  const firstColumn = async () =>
    (await page.locator('tbody tr td:first-child').allInnerTexts()).map((s) => Number(s.trim()));
  assert.deepEqual(await firstColumn(), ids.slice(0, 25), 'first page by id');
  await assertStyled(page);
  await screenshot(page, 'contacts-list');

  await page.getByRole('link', { name: 'Next' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator('.pager').innerText(), /Showing 26–30 of 30/);
  assert.deepEqual(await firstColumn(), ids.slice(25));
  assert.equal(await page.getByRole('link', { name: 'Next' }).count(), 0);
  await page.getByRole('link', { name: 'Previous' }).click();
  await page.waitForLoadState('load');
  assert.deepEqual(await firstColumn(), ids.slice(0, 25));

  // Sorting by last name, ascending then descending.
  const lastNames = async () => page.locator('tbody tr td:nth-child(3)').allInnerTexts();
  await page.getByRole('columnheader', { name: 'Last Name' }).getByRole('link').click();
  await page.waitForURL(/sort=lastname/);
  assert.equal(await page.getByRole('columnheader', { name: 'Last Name' }).getAttribute('aria-sort'), 'ascending');
  const asc = await lastNames();
  assert.equal(asc.length, 25);
  assert.deepEqual(asc, [...asc].sort(), 'ascending by last name');
  assert.equal(asc[0], 'Last00');
  await page.getByRole('columnheader', { name: 'Last Name' }).getByRole('link').click();
  await page.waitForURL(/sort=-lastname/);
  assert.equal(await page.getByRole('columnheader', { name: 'Last Name' }).getAttribute('aria-sort'), 'descending');
  const desc = await lastNames();
  assert.equal(desc[0], 'Last29');
  assert.deepEqual(desc, [...desc].sort().reverse(), 'descending by last name');

  // Search keeps the sort and finds one contact.
  await page.locator('#q').fill('First07');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/q=First07/);
  assert.match(await main.innerText(), /1 records?/);
  const rows = page.locator('tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.innerText(), new RegExp(`${marker}-07@example.com`));
  assert.equal(await page.locator('#q').inputValue(), 'First07');
  await rows.getByRole('link').click();
  await page.waitForURL(kontor.url(`/app/objects/contacts/${ids[7]}`));
  assert.match(await page.locator('h1').first().innerText(), /^First07 Last\d+$/, 'a contact is titled by its name');

  await page.goto(kontor.url('/app/objects/contacts?q=nothing-matches-this'));
  assert.match(await main.innerText(), /No records match\./);
});

btest('restoring is refused while another contact uses the e-mail address', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'user');
  const email = `${unique('clash')}@example.com`;
  const first = await kontor.contact(token, { email, firstname: 'Old' });
  await signIn(page, kontor, user);
  await page.goto(kontor.url(`/app/objects/contacts/${first}`));
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.waitForURL(/deleted=/);
  const second = await kontor.contact(token, { email, firstname: 'New' });

  await page.goto(kontor.url('/app/recycle-bin?type=contacts'));
  // A plain user may restore but not delete for good.
  assert.equal(await page.getByRole('button', { name: 'Delete permanently' }).count(), 0);
  await page.locator(`#pick-${first}`).check();
  await page.getByRole('button', { name: 'Restore' }).click();
  await page.waitForURL(/error=/);
  const alert = await page.getByRole('alert').innerText();
  assert.match(alert, new RegExp(`cannot come back`));
  assert.match(alert, new RegExp(String(second)));
  assert.equal(await page.locator(`#pick-${first}`).count(), 1, 'still in the recycle bin');
  assert.equal((await apiContact(token, first)).status, 404);
});

btest('an admin deletes a contact permanently from the recycle bin', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'admin');
  const keep = await kontor.contact(token, { email: `${unique('keep')}@example.com`, firstname: 'Keep' });
  const drop = await kontor.contact(token, { email: `${unique('drop')}@example.com`, firstname: 'Drop' });
  for (const id of [keep, drop]) {
    const r = await kontor.api(token, 'DELETE', `/crm/v3/objects/contacts/${id}`);
    assert.equal(r.status, 204, r.text);
  }
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/recycle-bin?type=contacts'));
  assert.equal(await page.locator(`#pick-${keep}`).count(), 1);
  await page.locator(`#pick-${drop}`).check();
  await page.getByRole('button', { name: 'Delete permanently' }).click();
  await page.waitForURL(/done=/);
  assert.match(await page.getByRole('status').innerText(), /Deleted 1 contacts? permanently\./);
  assert.equal(await page.locator(`#pick-${drop}`).count(), 0);
  assert.equal(await page.locator(`#pick-${keep}`).count(), 1, 'the other one stays');

  // Nothing selected: a message, nothing done.
  await page.getByRole('button', { name: 'Restore' }).click();
  await page.waitForURL(/error=/);
  assert.match(await page.getByRole('alert').innerText(), /Select at least one record/);
  assert.equal(await page.locator(`#pick-${keep}`).count(), 1);
});

btest('merges a duplicate contact into another from its page', async ({ page }) => {
  const { token, user } = await setUp(kontor, 'user');
  const made = async (properties) => {
    const r = await kontor.api(token, 'POST', '/crm/v3/objects/contacts', { properties });
    assert.equal(r.status, 201, r.text);
    return r.body;
  };
  const keep = await made({ email: `${unique('grace')}@example.com`, firstname: 'Grace' });
  const dup = await made({ email: `${unique('hopper')}@example.com`, lastname: 'Hopper', jobtitle: 'Rear Admiral' });
  await signIn(page, kontor, user);
  await page.goto(kontor.url(`/app/objects/contacts/${keep.id}`));
  await page.getByText('Merge another contact into this one').click();
  await page.getByLabel('Record ID to merge').fill(dup.id);
  await page.getByRole('button', { name: 'Merge' }).click();
  await page.waitForURL(kontor.url(`/app/objects/contacts/${keep.id}?merged=${dup.id}`));
  await page.getByRole('status').filter({ hasText: `Contact ${dup.id} was merged into this one.` }).waitFor();
  assert.equal(await shown(page, 'lastname'), 'Hopper');
  assert.equal(await shown(page, 'jobtitle'), 'Rear Admiral');
  // The merged contact's page is now the kept one's; the API agrees.
  await page.goto(kontor.url(`/app/objects/contacts/${dup.id}`));
  await page.waitForURL(kontor.url(`/app/objects/contacts/${keep.id}`));
  const read = await apiContact(token, dup.id);
  assert.equal(read.status, 200);
  assert.equal(read.body.id, keep.id);
  assert.equal(read.body.properties.lastname, 'Hopper');
});
