'use strict';
// Settings → Forms: an admin makes a form; a page of another website submits it from the
// browser (cross-origin, no token); the form's page lists the submission, which links to the
// contact it made.

const assert = require('node:assert/strict');
const http = require('node:http');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

// Another website: a plain page on another port (another origin) that embeds the form.
let website;

const { btest, kontor } = suite({
  async before() {
    website = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>Example Ltd</title><h1>Contact us</h1>');
    });
    await new Promise((resolve) => website.listen(0, '127.0.0.1', resolve));
  },
  async after() {
    website?.close();
  },
});

btest('an admin makes a form, a website submits it, and the contact is there', async ({ page }) => {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role: 'admin' });
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app'));
  await page.getByRole('link', { name: 'Forms' }).click();
  await assertHeading(page, 'Forms');
  await assertStyled(page);
  assert.match(await page.locator('main').innerText(), /No forms yet/);

  // E-mail is always asked and required; first and last name are offered.
  assert.ok(await page.getByLabel('Ask Email', { exact: true }).isChecked());
  assert.ok(await page.getByLabel('Email is required', { exact: true }).isChecked());
  await page.getByLabel('Name', { exact: true }).fill('Contact us');
  await page.getByLabel('Ask City', { exact: true }).check();
  await page.getByLabel('City is required', { exact: true }).check();
  await page.getByLabel('Message after submitting').fill('Thank you, we will write soon.');
  await screenshot(page, 'forms-create');
  await page.getByRole('button', { name: 'Create form' }).click();
  await page.waitForURL(/done=created-form/);
  await assertHeading(page, 'Contact us');
  const submitUrl = (await page.locator('#submit-url').innerText()).trim();
  assert.match(submitUrl, new RegExp(`^${kontor.url('')}/submissions/v3/integration/submit/${account.id}/[0-9a-f-]{36}$`));

  // Another website's page submits with fetch, across origins.
  const other = await page.context().newPage();
  await other.goto(`http://127.0.0.1:${website.address().port}/`);
  const answer = await other.evaluate(async (url) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        fields: [
          { objectTypeId: '0-1', name: 'email', value: 'lin@example.org' },
          { objectTypeId: '0-1', name: 'firstname', value: 'Lin' },
          { objectTypeId: '0-1', name: 'city', value: 'Lyon' },
        ],
        context: { pageUri: 'https://www.example.org/contact', pageName: 'Contact' },
      }),
    });
    return { status: res.status, body: await res.json() };
  }, submitUrl);
  assert.equal(answer.status, 200, JSON.stringify(answer));
  assert.equal(answer.body.inlineMessage, 'Thank you, we will write soon.');
  // A required field left out is refused, with HubSpot's error type.
  const refused = await other.evaluate(async (url) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fields: [{ name: 'email', value: 'no-city@example.org' }] }),
    });
    return { status: res.status, body: await res.json() };
  }, submitUrl);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.errors[0].errorType, 'REQUIRED_FIELD');
  await other.close();

  await page.reload();
  const row = page.locator('#latest ~ table tbody tr, section[aria-labelledby="latest"] tbody tr').first();
  assert.match(await row.innerText(), /lin@example\.org/);
  assert.match(await row.innerText(), /Contact/);
  await screenshot(page, 'forms-submissions');
  await row.getByRole('link').click();
  await page.waitForURL(/\/app\/objects\/contacts\/\d+$/);
  assert.match(await page.locator('main').innerText(), /lin@example\.org/);
  assert.match(await page.locator('main').innerText(), /Lyon/);
});

btest('a user who is not an admin cannot open the forms', async ({ page }) => {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, user);
  const res = await page.goto(kontor.url('/app/settings/forms'));
  assert.equal(res.status(), 403);
});
