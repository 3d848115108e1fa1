'use strict';
// Settings → Webhooks, the forms: refusals next to their fields with what was typed kept (the
// add form, the target form, subscriptions), the keyboard, the buttons' names, and the inputs'
// looks. The delivery flow, removing an app and a plain user's refusal are in webhooks.test.js.
// What the console shows is checked against the API.

const assert = require('node:assert/strict');
const { setUp, unique } = require('./lib/kontor');
const { screenshot, signIn } = require('./lib/browser');
const { startReceiver } = require('./lib/receiver');
const { submit, subRows, appRow, addApp, subscribe } = require('./lib/webhooks');
const { suite } = require('./lib/suite');

let receiver;

const { btest, kontor } = suite({
  env: {
    // The targets are the receiver's, on 127.0.0.1, which the server refuses unless told; and
    // the same retry pace as webhooks.test.js.
    KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS: '1',
    KONTOR_WEBHOOKS_RETRY_BASE_MS: '200',
  },
  async before() {
    receiver = await startReceiver();
  },
  async after() {
    await receiver?.stop();
  },
});

/** The field's error: its text, and that the input is marked invalid and described by it. */
async function fieldError(page, id) {
  const input = page.locator(`#${id}`);
  const error = page.locator(`#${id}-error`);
  assert.equal(await error.getAttribute('role'), 'alert', `#${id}-error is an alert`);
  assert.equal(await input.getAttribute('aria-invalid'), 'true', `#${id} is marked invalid`);
  assert.ok(
    ((await input.getAttribute('aria-describedby')) || '').split(' ').includes(`${id}-error`),
    `#${id} is described by its error`,
  );
  return (await error.innerText()).trim();
}

// ---- the tests ----

btest('refusals come back next to their fields, with what was typed', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'super-admin');
  await signIn(page, kontor, user);

  // The add form: no name (only spaces pass the browser's check) and an ftp:// target.
  await page.goto(kontor.url('/app/settings/webhooks'));
  await page.getByLabel('Name', { exact: true }).fill('   ');
  await page.getByLabel('Target URL', { exact: true }).fill('ftp://x');
  let res = await submit(page, page.getByRole('button', { name: 'Add app' }));
  assert.equal(res.status(), 400);
  assert.match(await fieldError(page, 'name'), /Give the app a name\./);
  assert.match(await fieldError(page, 'target_url'), /The target URL "ftp:\/\/x" must be an http or https URL\./);
  assert.equal(await page.locator('#target_url').inputValue(), 'ftp://x', 'the input is kept');
  assert.equal(await page.locator('#new-secret').count(), 0);
  let api = await kontor.api(token, 'GET', '/kontor/v1/webhooks/apps');
  assert.deepEqual(api.body.results, [], 'no app was added');

  // With a name, the target alone is refused.
  const name = unique('Errors ');
  await page.getByLabel('Name', { exact: true }).fill(name);
  res = await submit(page, page.getByRole('button', { name: 'Add app' }));
  assert.equal(res.status(), 400);
  assert.equal(await page.locator('#name-error').count(), 0);
  assert.equal(await page.locator('#name').getAttribute('aria-invalid'), null);
  assert.match(await fieldError(page, 'target_url'), /must be an http or https URL/);
  await screenshot(page, 'webhooks-add-refused');

  // Without a target, the app is added; its events wait.
  const app = await addApp(page, kontor, name, '');
  assert.match((await appRow(page, app.id)).target, /None: events wait/);
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));

  // The target form: an ftp:// URL, and 0 requests at once.
  await page.getByLabel('Target URL', { exact: true }).fill('ftp://x');
  res = await submit(page, page.getByRole('button', { name: 'Save target' }));
  assert.equal(res.status(), 400);
  assert.match(await fieldError(page, 'target_url'), /must be an http or https URL/);
  assert.equal(await page.locator('#target_url').inputValue(), 'ftp://x', 'the input is kept');
  const good = receiver.url(`/hooks/${unique('errors')}`);
  await page.getByLabel('Target URL', { exact: true }).fill(good);
  await page.getByLabel('Requests at once', { exact: true }).fill('0');
  res = await submit(page, page.getByRole('button', { name: 'Save target' }));
  assert.equal(res.status(), 400);
  assert.match(await fieldError(page, 'max_concurrent'), /Give a number from 1 to 100\./);
  assert.equal(await page.locator('#target_url-error').count(), 0, 'only the bad field has an error');
  assert.equal(await page.locator('#target_url').inputValue(), good);
  api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.body.targetUrl, null, 'nothing was saved');
  assert.equal(api.body.maxConcurrentRequests, 10);
  await page.getByLabel('Requests at once', { exact: true }).fill('3');
  res = await submit(page, page.getByRole('button', { name: 'Save target' }));
  assert.equal(res.status(), 303);
  await page.waitForURL(/done=target/);
  assert.match(await page.getByRole('status').innerText(), /Target saved\./);
  assert.equal(await page.getByLabel('Target URL', { exact: true }).inputValue(), good);
  assert.equal(await page.getByLabel('Requests at once', { exact: true }).inputValue(), '3');
  api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.body.targetUrl, good);
  assert.equal(api.body.maxConcurrentRequests, 3);

  // Subscriptions: a property change without a property, an unknown property, a property
  // for a creation; and one subscription twice.
  assert.equal(await subscribe(page, 'contact.propertyChange', ''), 400);
  assert.match(await fieldError(page, 'property_name'), /contact\.propertyChange needs the property whose changes are sent/);
  assert.equal(await page.locator('#event_type').inputValue(), 'contact.propertyChange', 'the choice is kept');
  assert.equal(await subscribe(page, 'contact.propertyChange', 'no_such_property'), 400);
  assert.match(await fieldError(page, 'property_name'), /The property no_such_property does not exist on contact/);
  assert.equal(await page.locator('#property_name').inputValue(), 'no_such_property', 'the input is kept');
  await screenshot(page, 'webhooks-subscribe-refused');
  assert.equal(await subscribe(page, 'contact.creation', 'email'), 400);
  assert.match(await fieldError(page, 'property_name'), /is only for property changes, not contact\.creation/);
  assert.equal(await subscribe(page, 'contact.creation', ''), 303);
  assert.equal(await subscribe(page, 'contact.creation', ''), 409);
  assert.match(await fieldError(page, 'event_type'), /already subscribes to contact\.creation/);
  api = await kontor.api(token, 'GET', `/webhooks/v3/${app.id}/subscriptions`);
  assert.deepEqual(api.body.results.map((s) => s.eventType), ['contact.creation'], 'only the good one was made');

  // Removing a subscription.
  const [sub] = await subRows(page);
  await page.locator(`tr#sub-${sub.id}`).getByRole('button', { name: 'Remove contact.creation', exact: true }).click();
  await page.waitForURL(/done=subscription/);
  assert.equal(await page.locator(`tr#sub-${sub.id}`).count(), 0);
  api = await kontor.api(token, 'GET', `/webhooks/v3/${app.id}/subscriptions`);
  assert.deepEqual(api.body.results, []);
});

btest('the forms work from the keyboard, their labels name their inputs', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/settings/webhooks'));
  // Every visible input, select and button of both pages has an accessible name.
  const unnamed = async () =>
    page.locator('main input:not([type=hidden]), main select, main button').evaluateAll((els) =>
      els
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.innerText.trim())
        .map((e) => e.outerHTML),
    );
  assert.deepEqual(await unnamed(), []);

  // Name, Tab, target, Enter: the app is added.
  const name = unique('Keys ');
  await page.locator('#name').focus();
  await page.keyboard.type(name);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'target_url', 'Tab goes from the name to the target');
  await page.keyboard.type(receiver.url('/hooks/keys'));
  await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.keyboard.press('Enter')]);
  await page.waitForLoadState('load');
  const m = (await page.getByRole('status').innerText()).match(/\(app id (\d+)\)/);
  assert.ok(m, 'the app was added');
  const id = m[1];

  // The app's page: subscribe with the keyboard only.
  await page.goto(kontor.url(`/app/settings/webhooks/${id}`));
  assert.deepEqual(await unnamed(), []);
  await page.locator('#event_type').focus();
  // contact.creation, .deletion, .privacyDeletion, .propertyChange: three down.
  for (let i = 0; i < 3; i += 1) await page.keyboard.press('ArrowDown');
  assert.equal(await page.locator('#event_type').inputValue(), 'contact.propertyChange');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'property_name');
  await page.keyboard.type('firstname');
  await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.keyboard.press('Enter')]);
  await page.waitForURL(/done=subscribed/);
  const api = await kontor.api(token, 'GET', `/webhooks/v3/${id}/subscriptions`);
  assert.deepEqual(api.body.results.map((s) => [s.eventType, s.propertyName]), [['contact.propertyChange', 'firstname']]);
  // The Pause button works with the space bar.
  const pause = page.getByRole('button', { name: 'Pause contact.propertyChange of firstname', exact: true });
  await pause.focus();
  await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.keyboard.press('Space')]);
  await page.waitForURL(/done=subscription/);
  assert.equal((await subRows(page))[0].state, 'Paused');
});

btest('each subscription\'s buttons say which subscription they change', async ({ page }) => {
  const { user } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const app = await addApp(page, kontor, unique('Names '), '');
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  assert.equal(await subscribe(page, 'contact.propertyChange', 'email'), 303);
  assert.equal(await subscribe(page, 'contact.propertyChange', 'firstname'), 303);
  assert.equal(await subscribe(page, 'contact.creation'), 303);
  const subs = Object.fromEntries((await subRows(page)).map((s) => [s.property || s.event, s.id]));
  const names = await page
    .locator('section[aria-labelledby="subs"] tbody button')
    .evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label') || b.innerText.trim()));
  assert.deepEqual(names.sort(), [
    'Pause contact.creation',
    'Pause contact.propertyChange of email',
    'Pause contact.propertyChange of firstname',
    'Remove contact.creation',
    'Remove contact.propertyChange of email',
    'Remove contact.propertyChange of firstname',
  ]);
  // Each changes its own subscription only.
  await page.getByRole('button', { name: 'Pause contact.propertyChange of firstname', exact: true }).click();
  await page.waitForURL(/done=subscription/);
  assert.deepEqual((await subRows(page)).map((s) => [s.property || s.event, s.state]).sort(), [
    ['contact.creation', 'Active'],
    ['email', 'Active'],
    ['firstname', 'Paused'],
  ]);
  assert.equal(
    await page.locator(`tr#sub-${subs.firstname}`).getByRole('button', { name: 'Resume contact.propertyChange of firstname', exact: true }).count(),
    1,
  );
  await page.getByRole('button', { name: 'Remove contact.propertyChange of email', exact: true }).click();
  await page.waitForURL(/done=subscription/);
  assert.deepEqual((await subRows(page)).map((s) => s.property || s.event).sort(), ['contact.creation', 'firstname']);
});

btest('a refused requests-at-once value is kept in its input', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const app = await addApp(page, kontor, unique('Kept '), receiver.url('/hooks/kept'));
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  for (const typed of ['0', '101']) {
    await page.getByLabel('Requests at once', { exact: true }).fill(typed);
    const res = await submit(page, page.getByRole('button', { name: 'Save target' }));
    assert.equal(res.status(), 400);
    assert.match(await fieldError(page, 'max_concurrent'), /Give a number from 1 to 100\./);
    assert.equal(await page.locator('#max_concurrent').inputValue(), typed, 'the input is kept');
    assert.equal(await page.locator('#target_url').inputValue(), receiver.url('/hooks/kept'));
  }
  const api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.body.maxConcurrentRequests, 10, 'nothing was saved');
  // Loaded again, the page shows what is stored.
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  assert.equal(await page.locator('#max_concurrent').inputValue(), '10');
  assert.equal(await page.locator('#max_concurrent-error').count(), 0);
});

btest('the target URL inputs look like the other inputs', async ({ page }) => {
  const { user } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const look = (sel) =>
    page.locator(sel).evaluate((e) => {
      const s = getComputedStyle(e);
      return { border: s.borderTopColor, radius: s.borderTopLeftRadius, padding: s.paddingLeft, width: s.width };
    });
  const app = await addApp(page, kontor, unique('Looks '), '');
  assert.deepEqual(await look('#target_url'), await look('#name'));
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  assert.deepEqual(await look('#target_url'), await look('#property_name'));
});
