'use strict';
// Settings → Salesforce against the fake Salesforce (tests/salesforce/fake, through
// lib/salesforce.js): an admin connects through its login page, sees the org and the user the
// integration acts as, and the org's records synced; pause and resume, audited; the settings
// and field mappings with their refusals next to the fields; a contact Salesforce cannot take
// listed as a sync error until the field it needs exists and it is retried; and a plain user
// refused. Each test connects an account of its own to a fresh org (the fake is reset), its
// clock frozen: before each round it moves on a minute, as the sync reads only whole minutes
// that have passed there.

const assert = require('node:assert/strict');
const { setUp, unique, escape } = require('./lib/kontor');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { FakeSalesforce, PAGE, connect, logIn, syncRound, roundAfter, counts } = require('./lib/salesforce');
const { suite } = require('./lib/suite');

// Its port is chosen now: the server's environment names it.
const fake = new FakeSalesforce();

const { btest, kontor } = suite({
  env: fake.env(),
  timeout: 180_000,
  before: () => fake.start(),
  after: () => fake.stop(),
});

/** Rows of the audit table as {action, target}, filtered by an action's prefix. */
async function audit(page, prefix) {
  await page.goto(kontor.url(`/app/settings/audit?action=${encodeURIComponent(prefix)}`));
  return page.locator('main table tbody tr').evaluateAll((rows) =>
    rows.map((r) => {
      const c = [...r.querySelectorAll('td')].map((td) => td.innerText.trim());
      return { action: c[2], target: c[3] };
    }),
  );
}

/** Posts one of the page's forms by its button; returns the response to the POST. */
async function submit(page, button) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().startsWith(kontor.url(PAGE)) && r.request().method() === 'POST'),
    button.click(),
  ]);
  await page.waitForLoadState('load');
  return res;
}

/** An admin of a new account, signed in, connected to a fresh org; {account, user, token}. */
async function connected(page) {
  await fake.fresh(kontor);
  const who = await setUp(kontor, 'admin');
  await signIn(page, kontor, who.user);
  await connect(page, kontor);
  return who;
}

// ---- the tests ----

btest('an admin connects through the Salesforce login page, and the org is synced', async ({ page }) => {
  await fake.fresh(kontor);
  const { orgId } = await fake.control('GET', '/_fake/state');
  // The org's records before it is connected: two accounts, and a contact at each.
  const [globex, initech] = [unique('Globex '), unique('Initech ')];
  const accounts = await fake.insert('Account', [{ Name: globex }, { Name: initech }]);
  const grace = unique('Grace');
  await fake.insert('Contact', [
    { FirstName: grace, LastName: 'Hopper', Email: `${grace.toLowerCase()}@example.com`, AccountId: accounts[0] },
    { FirstName: 'Alan', LastName: 'Turing', Email: `${unique('alan')}@example.com`, AccountId: accounts[1] },
  ]);

  const { user } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Salesforce', exact: true }).click();
  await page.waitForURL(kontor.url(PAGE));
  await assertHeading(page, 'Salesforce');
  assert.match(await page.locator('main').innerText(), /Connect Salesforce\s+Sync contacts with Leads and Contacts/);
  assert.equal(await page.locator('#sf-org').count(), 0, 'nothing connected yet');
  await assertStyled(page);
  await screenshot(page, 'salesforce-connect');

  // Connect, the login page, and back with the flash.
  await connect(page, kontor);
  assert.equal((await page.locator('#sf-org').innerText()).trim(), `Kontor Test Org (${orgId})`);
  assert.match(await page.locator('#sf-user').innerText(), /^admin@example\.com · \S+@\S+$/);
  assert.equal((await page.locator('#sf-state').innerText()).trim(), 'Syncing');
  assert.match(await page.locator('#sf-calls').innerText(), /^\d+ of a budget of 7500 \(50% of the org's daily limit\)$/);
  assert.equal(await page.locator('#sf-last-error').count(), 0, 'the first round went well');

  // A round a minute later reads the records: counted on the page, listed in the console.
  await syncRound(page, kontor, fake);
  const lines = await counts(page);
  for (const line of ['Contacts: 2', 'Companies: 2', 'Sync errors: 0']) {
    assert.ok(lines.includes(line), `"${line}" in ${JSON.stringify(lines)}`);
  }
  assert.match(await page.locator('#sf-last-round').innerText(), /\d/);
  assert.equal(await page.locator('#sf-last-error').count(), 0);
  assert.equal((await page.locator('#sf-no-errors').innerText()).trim(), 'No sync errors.');
  await screenshot(page, 'salesforce-connected');

  await page.goto(kontor.url('/app/objects/contacts'));
  const contacts = await page.locator('main').innerText();
  assert.match(contacts, /2 records/);
  assert.match(contacts, new RegExp(`${escape(grace)}\\s+Hopper`));
  assert.match(contacts, /Alan\s+Turing/);
  await page.goto(kontor.url('/app/objects/companies'));
  const companies = await page.locator('main').innerText();
  assert.ok(companies.includes(globex) && companies.includes(initech), companies);

  // Pause: the state says so, and only Resume is offered; Resume brings the sync back.
  await page.goto(kontor.url(PAGE));
  await page.getByRole('button', { name: 'Pause sync' }).click();
  await page.waitForURL(kontor.url(`${PAGE}?done=paused`));
  assert.equal(
    await page.getByRole('status').innerText(),
    'Sync paused. Changes wait on both sides until it resumes.',
  );
  assert.equal((await page.locator('#sf-state').innerText()).trim(), 'Paused: Paused by an admin.');
  assert.equal(await page.getByRole('button', { name: 'Sync now' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Pause sync' }).count(), 0);
  await page.getByRole('button', { name: 'Resume sync' }).click();
  await page.waitForURL(kontor.url(`${PAGE}?done=resumed`));
  assert.equal(await page.getByRole('status').innerText(), 'Sync resumed.');
  assert.equal((await page.locator('#sf-state').innerText()).trim(), 'Syncing');
  assert.equal(await page.getByRole('button', { name: 'Resume sync' }).count(), 0);

  // All of it is in the audit log, against the org.
  const entries = await audit(page, 'salesforce.');
  for (const action of ['salesforce.connect', 'salesforce.pause', 'salesforce.resume']) {
    assert.ok(
      entries.some((e) => e.action === action && e.target === `salesforce:${orgId}`),
      `${action} in ${JSON.stringify(entries)}`,
    );
  }
});

btest('settings and field mappings: refusals next to their fields, changes kept', async ({ page }) => {
  const { token } = await connected(page);

  // A budget of 0% is refused at the field.
  await page.locator('#budget_percent').fill('0');
  let res = await submit(page, page.getByRole('button', { name: 'Save settings' }));
  assert.equal(res.status(), 400);
  assert.equal(await page.locator('#budget_percent-error').innerText(), 'Enter a whole number from 1 to 100.');
  assert.equal(await page.locator('#budget_percent').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#budget_percent').getAttribute('aria-describedby'), /budget_percent-error/);
  await screenshot(page, 'salesforce-settings-refused');

  // So is an inclusion list on a property contacts do not have.
  await page.locator('#budget_percent').fill('50');
  await page.locator('#inclusion_property').fill('no_such_property');
  await page.locator('#inclusion_value').fill('x');
  res = await submit(page, page.getByRole('button', { name: 'Save settings' }));
  assert.equal(res.status(), 400);
  assert.ok((await page.locator('#inclusion_property-error').innerText()).length > 0);
  assert.equal((await page.locator('#sf-inclusion-now').innerText()).trim(), 'Now: every contact.');

  // A valid change is saved, and shown when the page is loaded again.
  await page.locator('#contacts_as').selectOption('Contact');
  await page.locator('#budget_percent').fill('25');
  await page.locator('#inclusion_property').fill('jobtitle');
  await page.locator('#inclusion_value').fill('VIP');
  res = await submit(page, page.getByRole('button', { name: 'Save settings' }));
  assert.equal(res.status(), 303);
  assert.equal(page.url(), kontor.url(`${PAGE}?done=settings`));
  assert.equal(await page.getByRole('status').innerText(), 'Settings saved.');
  await page.goto(kontor.url(PAGE));
  assert.equal(await page.locator('#contacts_as').inputValue(), 'Contact');
  assert.equal(await page.locator('#budget_percent').inputValue(), '25');
  assert.equal((await page.locator('#sf-inclusion-now').innerText()).trim(), 'Now: contacts whose jobtitle is “VIP”.');
  assert.match(await page.locator('#sf-calls').innerText(), / of a budget of 3750 \(25% of the org's daily limit\)$/);

  // A mapping's rule, changed in its row.
  const title = page.locator('#rule-Contact-Title');
  assert.equal(await title.inputValue(), 'two_way');
  assert.equal(await page.getByLabel('Sync rule of Contact.Title').count(), 1, 'the select is labelled');
  await title.selectOption({ label: 'Always use Salesforce' });
  res = await submit(page, page.locator('tr', { has: title }).getByRole('button', { name: 'Save' }));
  assert.equal(res.status(), 303);
  assert.equal(await page.getByRole('status').innerText(), 'Mapping saved.');
  await page.reload();
  assert.equal(await page.locator('#rule-Contact-Title').inputValue(), 'always_salesforce');
  assert.equal(await page.locator('#rule-Contact-Email').inputValue(), 'two_way', 'the other rows are unchanged');

  // A mapping to a field Salesforce does not have is refused at that field; one to a
  // property kontor does not have, at the property.
  await page.locator('#sf_type').selectOption('Contact');
  await page.locator('#sf_field').fill('Nope__c');
  await page.locator('#property').fill('jobtitle');
  res = await submit(page, page.getByRole('button', { name: 'Add mapping' }));
  assert.equal(res.status(), 400);
  assert.equal(await page.locator('#sf_field-error').innerText(), 'Contact has no field “Nope__c” in Salesforce.');
  assert.equal(await page.locator('#sf_field').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#rule-Contact-Nope__c').count(), 0);
  await page.locator('#sf_field').fill('Department');
  await page.locator('#property').fill('no_such_property');
  res = await submit(page, page.getByRole('button', { name: 'Add mapping' }));
  assert.equal(res.status(), 400);
  assert.equal(await page.locator('#property-error').innerText(), 'There is no property “no_such_property” of this object.');

  // A field it has, to a property there is (made through the API), is added with the rule
  // chosen.
  const made = await kontor.api(token, 'POST', '/crm/v3/properties/contacts', {
    name: 'department', label: 'Department', type: 'string', fieldType: 'text', groupName: 'contactinformation',
  });
  assert.equal(made.status, 201, made.text);
  await page.locator('#sf_field').fill('Department');
  await page.locator('#property').fill('department');
  await page.locator('#rule').selectOption({ label: "Don't sync" });
  res = await submit(page, page.getByRole('button', { name: 'Add mapping' }));
  assert.equal(res.status(), 303, await page.locator('main').innerText());
  assert.equal(await page.getByRole('status').innerText(), 'Mapping saved.');
  assert.equal(await page.locator('#rule-Contact-Department').inputValue(), 'none');

  const entries = (await audit(page, 'salesforce.')).map((e) => `${e.action} ${e.target}`);
  for (const want of ['salesforce.settings salesforce:', 'salesforce.mapping.set salesforce:Contact.Title', 'salesforce.mapping.set salesforce:Contact.Department']) {
    assert.ok(entries.some((e) => e.startsWith(want)), `${want} in ${JSON.stringify(entries)}`);
  }
});

/**
 * A contact made in kontor that Salesforce cannot take: a round a minute later finds no
 * external-ID field on Lead to create it with, and lists a sync error. Returns its id.
 */
async function syncError(page, token) {
  const email = `${unique('newton')}@example.com`;
  const id = await kontor.contact(token, { email, firstname: 'Isaac', lastname: 'Newton', company: 'Apple Co' });
  await syncRound(page, kontor, fake);
  return id;
}

/** The objects the page says need a Kontor_Id__c field before records can be created there. */
async function needing(page) {
  const text = await page.locator('#sf-external-id-hint').innerText();
  assert.match(text, /^To create records in Salesforce, add a text field named Kontor_Id__c/);
  return text.match(/ to: ([^.]+)\./)[1].split(', ').sort();
}

btest('a contact Salesforce cannot take is listed as a sync error, with a retry', async ({ page }) => {
  const { token } = await connected(page);
  // The page says what creating records there needs, and where.
  assert.deepEqual(await needing(page), ['Account', 'Contact', 'Lead', 'Opportunity', 'Task']);

  const id = await syncError(page, token);
  assert.ok((await counts(page)).includes('Sync errors: 1'), JSON.stringify(await counts(page)));
  assert.equal(await page.locator('#sf-no-errors').count(), 0);
  const rows = page.locator('#sf-error-list tbody tr');
  assert.equal(await rows.count(), 1);
  const cells = await rows.first().locator('td').allInnerTexts();
  assert.match(cells[0], new RegExp(`\\b${id}$`), 'the row names the contact');
  assert.equal(cells[1], 'To Salesforce');
  assert.match(cells[3], /^NO_EXTERNAL_ID_FIELD Lead has no external-ID field named Kontor…/);
  assert.equal(await page.getByRole('button', { name: 'Retry all' }).count(), 1);
  await screenshot(page, 'salesforce-sync-error');

  // The row's own Retry: asked for, and audited. (The field is still missing: it stays.)
  const since = Date.now();
  await rows.first().getByRole('button', { name: 'Retry' }).click();
  await page.waitForURL(kontor.url(`${PAGE}?done=retry`));
  assert.equal(await page.getByRole('status').innerText(), 'The errors will be tried again in the next round.');
  await roundAfter(page, since);
  assert.equal(await page.locator('#sf-error-list tbody tr').count(), 1);
  assert.ok((await audit(page, 'salesforce.errors')).some((e) => e.action === 'salesforce.errors.retry'));
});

btest(
  'once the field is there, Retry all clears the sync error and the Lead is created',
  async ({ page }) => {
    const { token } = await connected(page);
    const id = await syncError(page, token);
    await fake.control('POST', '/_fake/fields', {
      object: 'Lead', name: 'Kontor_Id__c', type: 'string', length: 32, externalId: true, unique: true,
    });
    // Retry all starts a round; a minute later, Sync now, another.
    const since = Date.now();
    await page.getByRole('button', { name: 'Retry all' }).click();
    await page.waitForURL(kontor.url(`${PAGE}?done=retry`));
    await roundAfter(page, since);
    await syncRound(page, kontor, fake);
    assert.equal(await page.locator('#sf-error-list').count(), 0);
    assert.equal((await page.locator('#sf-no-errors').innerText()).trim(), 'No sync errors.');
    assert.ok((await counts(page)).includes('Sync errors: 0'), JSON.stringify(await counts(page)));
    assert.deepEqual(await needing(page), ['Account', 'Contact', 'Opportunity', 'Task']);

    // The Lead is in Salesforce, holding kontor's id.
    const r = await kontor.api(token, 'GET', `/crm/v3/objects/contacts/${id}?properties=salesforceleadid`);
    const lead = r.body?.properties?.salesforceleadid;
    assert.ok(lead, r.text);
    const { record } = await fake.control('GET', `/_fake/records/Lead/${lead}`);
    assert.equal(record.LastName, 'Newton');
    assert.equal(record.Kontor_Id__c, id);
  },
);

btest(
  "a sync error's record link opens the record",
  async ({ page }) => {
    const { token } = await connected(page);
    const id = await syncError(page, token);
    const link = page.locator('#sf-error-list tbody tr').first().getByRole('link');
    const res = await Promise.all([page.waitForNavigation(), link.click()]).then(([r]) => r);
    assert.equal(res.status(), 200, page.url());
    assert.match(page.url(), new RegExp(`/app/objects/(contacts|0-1)/${id}$`));
  },
);

btest('a plain user is refused the Salesforce page and its actions', async ({ page }) => {
  const { account } = await connected(page);
  const plain = await kontor.user(account.id, { role: 'user' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));
  await signIn(page, kontor, plain);
  assert.equal(
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Salesforce' }).count(),
    0,
    'no Salesforce in the menu',
  );
  for (const p of [PAGE, `${PAGE}/callback?state=x&code=y`]) {
    const res = await page.goto(kontor.url(p));
    assert.equal(res.status(), 403, p);
    await assertHeading(page, 'Not allowed');
    assert.match(await page.locator('main').innerText(), /Your role does not allow this page/);
  }
  // Posting the page's actions, with the session's CSRF token, is refused too.
  await page.goto(kontor.url('/app/objects/contacts'));
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  for (const [p, form] of [[PAGE, { action: 'pause' }], [`${PAGE}/connect`, {}]]) {
    const res = await page.request.post(kontor.url(p), { form: { ...form, _csrf: csrf }, maxRedirects: 0 });
    assert.equal(res.status(), 403, p);
  }
  // The sync was not paused.
  const r = await kontor.api(await kontor.token(account.id), 'GET', '/kontor/v1/integrations/salesforce');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.state, 'ACTIVE', r.text);
});
