'use strict';
// Settings → Salesforce → Disconnect against the fake Salesforce (lib/salesforce.js): the
// impact preview and its warning that a reinstall fixes no sync error, the choices and the
// typed confirmation (a wrong one refused at the field), the progress and outcome (the pending
// change sent or discarded, the token revoked, the data kept 48 hours or deleted); then a
// Salesforce-only owner's records reassigned to the user proposed, reverted in the page's
// dialog, reassigned again, the owner cleaned up; a plain user refused. Each test connects an
// account of its own to a fresh org, its clock frozen (see salesforce.test.js).

const assert = require('node:assert/strict');
const { setUp, unique, escape, sleep, waitForText } = require('./lib/kontor');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { FakeSalesforce, PAGE, connect, syncRound, counts } = require('./lib/salesforce');
const { suite } = require('./lib/suite');

const UNINSTALL = `${PAGE}/uninstall`;
const OWNERS = `${PAGE}/owners`;
const CLEANUP = `${PAGE}/owners/cleanup`;
const ORG = 'Kontor Test Org';

const fake = new FakeSalesforce();

const { btest, kontor } = suite({
  env: fake.env(),
  timeout: 240_000,
  before: () => fake.start(),
  after: () => fake.stop(),
});

/** An element's text with its white space folded. */
const text = async (locator) => (await locator.innerText()).replace(/\s+/g, ' ').trim();

/** These Contacts at one Account (owned by `ownerId`), synced to an admin's new account. */
async function connectedWith(page, contacts, ownerId) {
  const owned = ownerId ? { OwnerId: ownerId } : {};
  const [acme] = await fake.insert('Account', [{ Name: unique('Acme '), ...owned }]);
  const sfContacts = await fake.insert('Contact', contacts.map((c) => ({ ...c, AccountId: acme, ...owned })));
  const who = await setUp(kontor, 'admin');
  await signIn(page, kontor, who.user);
  await connect(page, kontor);
  await syncRound(page, kontor, fake);
  const lines = await counts(page);
  for (const line of [`Contacts: ${contacts.length}`, 'Companies: 1']) {
    assert.ok(lines.includes(line), `"${line}" in ${JSON.stringify(lines)}`);
  }
  return { ...who, sfContacts };
}

/** Changes a synced contact's job title in kontor (through the API): a change to send. */
async function changeTitle(token, email, title) {
  const r = await kontor.api(token, 'GET', '/crm/v3/objects/contacts?properties=email&limit=100');
  assert.equal(r.status, 200, r.text);
  const contact = r.body.results.find((c) => c.properties.email === email);
  assert.ok(contact, `${email} in ${r.text}`);
  await kontor.updateContact(token, contact.id, { jobtitle: title });
  return contact.id;
}

/** From the connected page: Disconnect, the preview, Continue to the choices. */
async function openConfirm(page) {
  await page.goto(kontor.url(PAGE));
  await page.locator('#sf-disconnect-button').click();
  await page.waitForURL(kontor.url(UNINSTALL));
  await assertHeading(page, `Disconnect Salesforce (${ORG})`);
  await page.locator('#continue').click();
  await page.waitForURL(kontor.url(`${UNINSTALL}?step=confirm`));
  await page.locator('#uninstall-form').waitFor();
}

/** Submits the uninstall form; returns the response to the POST. */
async function submitUninstall(page) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === kontor.url(UNINSTALL) && r.request().method() === 'POST'),
    page.locator('#uninstall-button').click(),
  ]);
  await page.waitForLoadState('load');
  return res;
}

/** On the status page (it refreshes itself): waits for the end; the outcome's text. */
async function uninstalled(page) {
  await page.waitForURL(new RegExp(`${escape(kontor.url(UNINSTALL))}/\\d+$`));
  await assertHeading(page, `Uninstall of Salesforce (${ORG})`);
  await waitForText(page.locator('#uninstall-state'), /^Uninstalled$/);
  assert.equal(await page.locator('#uninstall-error').count(), 0);
  return text(page.locator('#uninstall-outcome'));
}

/** Every token the org issued to kontor is revoked there. */
async function assertTokensRevoked() {
  const { tokens } = await fake.control('GET', '/_fake/tokens');
  assert.ok(tokens.length > 0, 'kontor was issued tokens');
  assert.deepEqual(tokens.filter((t) => !t.revoked).map((t) => t.type), [], 'tokens still live');
}

/** The Title of a Contact as Salesforce holds it. */
const sfTitle = async (id) => (await fake.control('GET', `/_fake/records/Contact/${id}`)).record.Title;

/** A data-confirm form's button, confirmed in the page's dialog; waits for `url`. */
async function confirmInDialog(page, button, confirm, re, url) {
  await button.click();
  const dialog = page.locator('#confirm-dialog');
  await dialog.waitFor({ state: 'visible' });
  assert.match(await page.locator('#confirm-text').innerText(), re);
  await Promise.all([page.waitForURL(url), dialog.getByRole('button', { name: confirm }).click()]);
}

/** The newest reassignment's row, once done: {id, moved, first (its first cell)}. */
async function lastReassignment(page) {
  const row = page.locator('#reassignments tbody tr').first();
  await waitForText(row.locator('td.state'), /^done\b/);
  return {
    id: await row.getAttribute('data-reassignment'),
    moved: await text(row.locator('td.moved')),
    first: await text(row.locator('td').first()),
  };
}

/** Reassigns on the owners page with what it proposes; waits until the job is done. */
async function reassign(page, ownerRow) {
  await Promise.all([page.waitForURL(kontor.url(`${OWNERS}?done=reassign`)), page.locator('#reassign-button').click()]);
  // Running when the page was drawn, or already done (a few records go fast).
  assert.match(await page.getByRole('status').innerText(), /^(The reassignment has started; this page shows its progress\.|Done: see the reassignments below\.)$/);
  const done = await lastReassignment(page);
  // The owner's row is gone.
  await page.locator('#no-owned').waitFor();
  assert.equal(await ownerRow.count(), 0);
  return done;
}

// ---- the tests ----

btest('an admin disconnects, keeping the data; reassigns the Salesforce owner\'s records and cleans up', async ({ page }) => {
  await fake.fresh(kontor);
  // Rita is a Salesforce user with no user in kontor; she owns the Account and its Contacts.
  const ritaEmail = `${unique('rita')}@sf.test`;
  const { ids: [rita] } = await fake.control('POST', '/_fake/users', {
    username: ritaEmail, email: ritaEmail, firstName: 'Rita', lastName: 'Rep',
  });
  const grace = `${unique('grace')}@example.com`;
  const { account, user, token, sfContacts } = await connectedWith(page, [
    { FirstName: 'Grace', LastName: 'Hopper', Email: grace, Title: 'Buyer' },
    { FirstName: 'Alan', LastName: 'Turing', Email: `${unique('alan')}@example.com` },
  ], rita);
  const graceId = await changeTitle(token, grace, 'Head of Buying');

  // Disconnect: what it does, and the warning that it fixes no sync error.
  await page.goto(kontor.url(PAGE));
  assert.match(await text(page.locator('section[aria-labelledby=sf-disconnect]')), /Uninstalling and reinstalling does not fix sync errors/);
  await page.locator('#sf-disconnect-button').click();
  await page.waitForURL(kontor.url(UNINSTALL));
  await assertHeading(page, `Disconnect Salesforce (${ORG})`);
  await assertStyled(page);
  const warning = page.locator('#not-a-fix');
  assert.match(await text(warning), /^Uninstalling and reinstalling is not a fix for sync errors/);
  assert.equal(await warning.getByRole('link', { name: 'See the sync errors' }).getAttribute('href'), `${PAGE}#sf-errors`);
  const stays = (await page.locator('#impact-stays li').allInnerTexts()).slice(0, 2);
  assert.deepEqual(stays, ['1 company synced with Salesforce', '2 contacts synced with Salesforce']);
  assert.match(await text(page.locator('#impact-properties')), /^\d+ Salesforce propert(y|ies) \(the “Salesforce information” group\) and the [1-9]\d* values? they hold$/);
  assert.match(await text(page.locator('#impact-mappings')), /^[1-9]\d* field mappings? and the integration's settings/);
  assert.match(await text(page.locator('#impact-removed')), /The id crosswalk of 3 linked records, the owner map \(\d+ Salesforce users?\) and the sync state/);
  assert.equal(
    await text(page.locator('#impact-owned')),
    '3 records owned by 1 Salesforce-only owner (owners with no user here): 1 company, 2 contacts. After the uninstall you reassign them to users.',
  );
  assert.equal(await text(page.locator('#impact-pending')), '1 change made in kontor and not yet sent to Salesforce');
  assert.equal(await page.locator('#uninstall-form').count(), 0, 'the choices come after Continue');
  await screenshot(page, 'salesforce-uninstall-impact');

  // The errors link leads to the sync errors; back, and on.
  await warning.getByRole('link', { name: 'See the sync errors' }).click();
  await page.waitForURL(kontor.url(`${PAGE}#sf-errors`));
  await page.locator('#sf-errors').waitFor();
  await page.goBack();
  await page.locator('#continue').click();
  await page.waitForURL(kontor.url(`${UNINSTALL}?step=confirm`));
  const form = page.locator('#uninstall-form');
  assert.equal(await page.locator('#reason').inputValue(), '', 'no reason chosen yet');
  assert.equal(await page.locator('#reason option').first().innerText(), 'Choose a reason');
  assert.ok(await form.getByLabel('Send them to Salesforce first, then disconnect').isChecked(), 'by default');
  assert.ok(await form.getByLabel('Keep it for 48 hours').isChecked(), 'by default');
  assert.match(await text(page.locator('#pending-choice legend')), /^The 1 change not yet sent to Salesforce$/);

  // A wrong confirmation is refused at its field, with the choices kept.
  await page.locator('#reason').selectOption({ label: 'We no longer use Salesforce' });
  await page.locator('#details').fill('Moving the sales team to kontor');
  await page.locator('#confirmation').fill('uninstall salesforce');
  let res = await submitUninstall(page);
  assert.equal(res.status(), 400);
  assert.equal(await page.locator('#confirmation-error').innerText(), 'Type the words “Uninstall Salesforce” exactly.');
  assert.equal(await page.locator('#confirmation').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#confirmation').inputValue(), 'uninstall salesforce');
  assert.equal(await page.locator('#reason').inputValue(), 'We no longer use Salesforce');
  assert.equal(await page.locator('#details').inputValue(), 'Moving the sales team to kontor');
  assert.ok(await form.getByLabel('Keep it for 48 hours').isChecked());
  await screenshot(page, 'salesforce-uninstall-refused');
  assert.equal(await sfTitle(sfContacts[0]), 'Buyer', 'nothing was sent yet');

  // The right words: the change is sent, the token revoked, the data kept 48 hours.
  await page.locator('#confirmation').fill('Uninstall Salesforce');
  res = await submitUninstall(page);
  assert.equal(res.status(), 303);
  const outcome = await uninstalled(page);
  assert.match(
    outcome,
    /^1 pending change\(s\) were sent to Salesforce\. The OAuth token was revoked in Salesforce\. The integration's own data is kept until (\S+)\. 1 Salesforce-only owner\(s\) still own records: reassign them\.$/,
  );
  const keptUntil = Date.parse(outcome.match(/kept until (\S+)\./)[1]);
  assert.ok(Math.abs(keptUntil - Date.now() - 48 * 3_600_000) < 10 * 60_000, `kept until ${new Date(keptUntil).toISOString()}`);
  const facts = await text(page.locator('dl.facts'));
  assert.match(facts, /Reason We no longer use Salesforce: Moving the sales team to kontor/);
  assert.match(facts, /Pending changes Sent first/);
  assert.match(facts, /The integration's data Kept for 48 hours/);
  assert.equal(await page.locator('#salesforce-side li').count(), 4);
  assert.equal(await page.locator('#reassign-link').getAttribute('href'), OWNERS);
  await assertStyled(page);
  await screenshot(page, 'salesforce-uninstall-done');
  await assertTokensRevoked();
  assert.equal(await sfTitle(sfContacts[0]), 'Head of Buying', 'the change reached Salesforce');

  // The admin is told, with the steps.
  let mail;
  for (let i = 0; i < 100 && !mail; i += 1) {
    mail = (await kontor.mails()).find((m) => m.to.includes(user.email));
    if (!mail) await sleep(300);
  }
  assert.ok(mail, 'an e-mail to the admin');
  assert.equal(mail.subject, 'Reassign contacts, companies and deals owned by Salesforce owners');
  assert.match(mail.body, /Go to owner cleanup page/);

  // The Salesforce page: kept until when, the Connect card again; the records stay.
  await page.getByRole('link', { name: 'Back to Salesforce' }).click();
  await page.waitForURL(kontor.url(PAGE));
  assert.match(await text(page.locator('#sf-kept')), new RegExp(`^The integration with ${ORG} was uninstalled on .+ kept until \\S+: connecting the same org again`));
  assert.equal(await page.locator('#sf-connect-button').count(), 1);
  assert.equal(await page.locator('#sf-disconnect-button').count(), 0);
  assert.match(await text(page.locator('#sf-owners-left')), /^1 Salesforce-only owner is left\./);
  await screenshot(page, 'salesforce-uninstall-kept');
  await page.goto(kontor.url('/app/objects/contacts'));
  assert.match(await page.locator('main').innerText(), /2 records/);

  // Rita gets a user in kontor: she is proposed for her records.
  await kontor.user(account.id, { role: 'user', email: ritaEmail });
  await page.goto(kontor.url(PAGE));
  await page.locator('#sf-owners-left').getByRole('link', { name: 'Reassign their records' }).click();
  await page.waitForURL(kontor.url(OWNERS));
  await assertHeading(page, 'Reassign Salesforce owners');
  const row = page.locator('#owner-list tr[data-owner]');
  assert.equal(await row.count(), 1);
  const sfOwner = await row.getAttribute('data-owner');
  const cells = await row.locator('td').allInnerTexts();
  assert.equal(cells[0], `Rita Rep (${ritaEmail})`);
  assert.equal(cells[1].replace(/\s+/g, ' ').trim(), '2 contacts 1 company');
  const select = page.locator(`#to-${sfOwner}`);
  assert.equal(await select.locator('option:checked').innerText(), ritaEmail);
  const ritaOwner = await select.inputValue();
  assert.match(ritaOwner, /^\d+$/);
  assert.equal(await text(row.locator('.proposed')), 'proposed');
  assert.equal(await page.getByLabel(`New owner for Rita Rep (${ritaEmail})`).count(), 1, 'the select is labelled');
  await assertStyled(page);
  await screenshot(page, 'salesforce-owners');

  // Reassign: done, the three records moved, now Rita's.
  const first = await reassign(page, row);
  assert.equal(first.moved, '3');
  const ownerOf = async () => {
    const r = await kontor.api(token, 'GET', `/crm/v3/objects/contacts/${graceId}?properties=hubspot_owner_id`);
    return r.body.properties.hubspot_owner_id;
  };
  assert.equal(await ownerOf(), ritaOwner);
  await screenshot(page, 'salesforce-owners-reassigned');

  // Revert, in the page's dialog: the records go back to the Salesforce owner.
  const firstRow = page.locator(`tr[data-reassignment="${first.id}"]`);
  await confirmInDialog(page, firstRow.getByRole('button', { name: 'Revert' }), 'Revert', /^Give every record this reassignment moved back/, kontor.url(`${OWNERS}?done=revert`));
  assert.match(await page.getByRole('status').innerText(), /^(The revert has started: records go back to the owners they had\.|Done: see the reassignments below\.)$/);
  const revert = await lastReassignment(page);
  assert.equal(revert.first, `${revert.id} (reverts ${first.id})`);
  assert.equal(revert.moved, '3');
  assert.equal(await text(firstRow.locator('td.state')), `done · reverted by ${revert.id}`);
  assert.equal(await firstRow.getByRole('button', { name: 'Revert' }).count(), 0, 'reverted once only');
  assert.equal(await ownerOf(), sfOwner);
  assert.equal(await row.count(), 1, 'Rita\'s Salesforce owner is back in the list');
  assert.equal(await select.inputValue(), ritaOwner, 'and Rita proposed again');

  // Again, then the cleanup removes the owner nothing references any more.
  const again = await reassign(page, row);
  assert.equal(again.moved, '3');
  assert.equal(await ownerOf(), ritaOwner);
  await page.locator('#cleanup-link').click();
  await page.waitForURL(kontor.url(CLEANUP));
  await assertHeading(page, 'Owner cleanup');
  const listed = await page.locator('#cleanup-list tbody tr').allInnerTexts();
  assert.deepEqual(listed.map((l) => l.replace(/\s+/g, ' ').trim()), [`Rita Rep (${ritaEmail}) No records`]);
  await screenshot(page, 'salesforce-owners-cleanup');
  await confirmInDialog(page, page.locator('#remove-owners'), 'Remove', /^Remove every Salesforce owner that no record references/, kontor.url(`${CLEANUP}?removed=1`));
  assert.equal(await page.locator('#removed').innerText(), '1 Salesforce owner(s) removed.');
  assert.equal(await page.locator('#no-salesforce-owners').innerText(), 'There are no Salesforce-only owners.');
  await page.goto(kontor.url(PAGE));
  assert.equal(await page.locator('#sf-owners-left').count(), 0);
});

btest('an admin disconnects deleting the data at once and discarding the change; a plain user may not', async ({ page }) => {
  await fake.fresh(kontor);
  const ada = `${unique('ada')}@example.com`;
  const { account, user, token, sfContacts } = await connectedWith(page, [
    { FirstName: 'Ada', LastName: 'Lovelace', Email: ada, Title: 'Analyst' },
  ]);
  await changeTitle(token, ada, 'Chief Analyst');

  // A plain user of the account: refused the pages and the form, the sync left as it was.
  const plain = await kontor.user(account.id, { role: 'user' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));
  await signIn(page, kontor, plain);
  for (const p of [UNINSTALL, `${UNINSTALL}?step=confirm`, `${UNINSTALL}/1`, OWNERS, CLEANUP]) {
    const r = await page.goto(kontor.url(p));
    assert.equal(r.status(), 403, p);
    await assertHeading(page, 'Not allowed');
  }
  await page.goto(kontor.url('/app/objects/contacts'));
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const post = await page.request.post(kontor.url(UNINSTALL), {
    form: { _csrf: csrf, reason: 'Other', pending: 'discard', data: 'delete', confirmation: 'Uninstall Salesforce' },
    maxRedirects: 0,
  });
  assert.equal(post.status(), 403);
  const api = await kontor.api(token, 'GET', '/kontor/v1/integrations/salesforce');
  assert.equal(api.body.state, 'ACTIVE', api.text);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(kontor.url('/app/login'));

  // The admin: discard the change, delete the data now.
  await signIn(page, kontor, user);
  await openConfirm(page);
  await page.locator('#reason').selectOption({ label: 'Other' });
  const form = page.locator('#uninstall-form');
  await form.getByLabel('Discard them: Salesforce never gets them').check();
  await form.getByLabel('Delete it now').check();
  await page.locator('#confirmation').fill('Uninstall Salesforce');
  const res = await submitUninstall(page);
  assert.equal(res.status(), 303);
  const outcome = await uninstalled(page);
  assert.match(outcome, /^1 pending change\(s\) were discarded, not sent\. The OAuth token was revoked in Salesforce\. The integration's own data was deleted\./);
  const facts = await text(page.locator('dl.facts'));
  assert.match(facts, /Reason Other/);
  assert.match(facts, /Pending changes Discarded/);
  assert.match(facts, /The integration's data Deleted at once/);
  assert.equal(await page.locator('#salesforce-side li').count(), 4);
  await screenshot(page, 'salesforce-uninstall-deleted');
  await assertTokensRevoked();
  assert.equal(await sfTitle(sfContacts[0]), 'Analyst', 'the change was not sent');

  // Nothing is kept: the page offers a new connection, and Disconnect leads back to it.
  await page.getByRole('link', { name: 'Back to Salesforce' }).click();
  await page.waitForURL(kontor.url(PAGE));
  assert.equal(await page.locator('#sf-kept').count(), 0);
  assert.equal(await page.locator('#sf-connect-button').count(), 1);
  await page.goto(kontor.url(UNINSTALL));
  assert.equal(page.url(), kontor.url(PAGE));
  await page.goto(kontor.url('/app/objects/contacts'));
  assert.match(await page.locator('main').innerText(), /1 record\b/);
});
