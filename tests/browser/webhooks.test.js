'use strict';
// Settings → Webhooks, the delivery flow: apps (added with their client secret shown once,
// removed after a confirmation, in the page's dialog or on a page of its own), their
// subscriptions (subscribe, pause, resume), the delivery log; events reach a real receiver
// (lib/receiver.js: a separate node process on 127.0.0.1), signed with the secret the page
// showed; retries after 5xx answers, a 4xx that fails at once and is sent again from the page;
// and a plain user refused on every page and change. What the console shows is checked against
// the API and against what the receiver got. The forms (refusals next to their fields, the
// keyboard, the buttons' names, the inputs' looks) are in webhooks-forms.test.js.

const assert = require('node:assert/strict');
const { setUp, unique, escape } = require('./lib/kontor');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { startReceiver, signature } = require('./lib/receiver');
const {
  until, submit, logRows, assertMoment, watchLog, subRows, appRow, addApp, subscribe, removeInDialog,
} = require('./lib/webhooks');
const { suite } = require('./lib/suite');

let receiver;

const { btest, kontor } = suite({
  env: {
    // The receiver is on 127.0.0.1, which the server refuses as a target unless told; and
    // retries start 200 ms apart, so that attempts grow while a test watches.
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

// ---- the tests ----

btest('an admin adds an app, subscribes it, and its events reach a real receiver', async ({ page }) => {
  const { account, user, token } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const name = unique('Sync ');
  const target = receiver.url(`/hooks/${unique('app')}`);
  const mine = () => receiver.events().filter(({ request }) => receiver.url(request.url) === target);

  // Settings → Webhooks.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.waitForURL(kontor.url('/app/settings/webhooks'));
  await assertHeading(page, 'Webhooks');
  assert.match(await page.locator('main').innerText(), /No apps yet\./);
  assert.equal(await page.locator('#new-secret').count(), 0, 'no secret before an app is added');
  await assertStyled(page);

  // Add the app: its client secret is shown once.
  const app = await addApp(page, kontor, name, target);
  assert.match(app.secret, /^[0-9a-f]{64}$/, `secret ${JSON.stringify(app.secret)}`);
  assert.deepEqual(await appRow(page, app.id), {
    name: `${name} (app ${app.id})`, target, waiting: 0, delivered: 0, failed: 0,
  });
  assert.equal(
    await page.locator(`tr#app-${app.id}`).getByRole('link', { name }).getAttribute('href'),
    `/app/settings/webhooks/${app.id}`,
  );
  let api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.status, 200, api.text);
  assert.equal(api.body.name, name);
  assert.equal(api.body.targetUrl, target);
  assert.equal(api.body.clientSecret, undefined, 'the API does not show the secret either');
  await screenshot(page, 'webhooks-new-app');

  // "Choose what it subscribes to" leads to the app's page, which has no secret; neither has
  // the list when it is loaded again (a new GET: reloading the answer to the POST would send
  // the form again, as on the tokens page).
  await page.getByRole('link', { name: 'Choose what it subscribes to' }).click();
  await page.waitForURL(kontor.url(`/app/settings/webhooks/${app.id}`));
  await assertHeading(page, `${name} (app ${app.id})`);
  assert.ok(!(await page.content()).includes(app.secret), 'the secret is not on the app page');
  await page.goto(kontor.url('/app/settings/webhooks'));
  assert.equal(await page.locator('#new-secret').count(), 0, 'the secret is shown once');
  assert.ok(!(await page.content()).includes(app.secret), 'the secret is not in the page any more');
  await page.locator(`tr#app-${app.id}`).getByRole('link', { name }).click();
  await page.waitForURL(kontor.url(`/app/settings/webhooks/${app.id}`));
  assert.equal(await page.getByLabel('Target URL', { exact: true }).inputValue(), target);
  assert.equal(await page.getByLabel('Requests at once', { exact: true }).inputValue(), '10');
  assert.match(await page.locator('section[aria-labelledby="subs"]').innerText(), /No subscriptions: nothing is sent\./);
  assert.match(await page.locator('section[aria-labelledby="log"]').innerText(), /0 waiting, 0 delivered, 0 failed\./);

  // Subscribe to contacts' creation and to changes of their e-mail address.
  assert.equal(await subscribe(page, 'contact.creation'), 303);
  await page.waitForURL(/done=subscribed/);
  assert.match(await page.getByRole('status').innerText(), /Subscribed\./);
  assert.equal(await subscribe(page, 'contact.propertyChange', 'email'), 303);
  const subs = await subRows(page);
  assert.deepEqual(subs.map(({ event, property, state }) => [event, property, state]), [
    ['contact.creation', '', 'Active'],
    ['contact.propertyChange', 'email', 'Active'],
  ]);
  const subId = Object.fromEntries(subs.map((s) => [s.event, s.id]));
  api = await kontor.api(token, 'GET', `/webhooks/v3/${app.id}/subscriptions`);
  assert.equal(api.status, 200, api.text);
  assert.deepEqual(
    api.body.results.map((s) => [s.id, s.eventType, s.propertyName ?? null, s.active]).sort(),
    [
      [subId['contact.creation'], 'contact.creation', null, true],
      [subId['contact.propertyChange'], 'contact.propertyChange', 'email', true],
    ].sort(),
  );

  // A contact created in the console: both events are delivered, and the receiver got them,
  // signed with the secret the page showed.
  await page.goto(kontor.url('/app/objects/contacts/new'));
  const email = `${unique('ada')}@example.com`;
  await page.locator('#f-email').fill(email);
  await page.locator('#f-firstname').fill('Ada');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/\/app\/objects\/contacts\/\d+$/);
  const ada = page.url().match(/(\d+)$/)[1];

  let rows = await watchLog(page, kontor, app.id, 'both events of the new contact delivered', (rs) =>
    rs.filter((r) => r.record === ada).length === 2 && rs.every((r) => r.state === 'Delivered') && rs,
  );
  assert.deepEqual(rows.map((r) => r.type).sort(), ['contact.creation', 'contact.propertyChange']);
  for (const r of rows) {
    assert.equal(r.attempts, 1, `attempts of event ${r.event}`);
    assert.equal(r.answer, '200');
    const made = assertMoment(r.made, r.madeAt, `made of event ${r.event}`);
    assert.ok(Math.abs(made - Date.now()) < 5 * 60_000, `event ${r.event} made at ${r.madeAt}`);
  }
  assert.match(await page.locator('section[aria-labelledby="log"]').innerText(), /0 waiting, 2 delivered, 0 failed\./);
  assert.equal(await page.getByRole('button', { name: 'Send the failed events again' }).count(), 0);
  await assertStyled(page);
  await screenshot(page, 'webhooks-app-delivered');

  const got = await until('the receiver got both events', () => (mine().length >= 2 ? mine() : null));
  assert.equal(got.length, 2, `events: ${JSON.stringify(got.map((g) => g.event))}`);
  const byType = Object.fromEntries(got.map(({ event }) => [event.subscriptionType, event]));
  const rowOf = Object.fromEntries(rows.map((r) => [r.type, r]));
  assert.equal(String(byType['contact.creation'].eventId), rowOf['contact.creation'].event);
  assert.equal(String(byType['contact.creation'].objectId), ada);
  assert.equal(byType['contact.creation'].changeFlag, 'NEW');
  assert.equal(String(byType['contact.creation'].subscriptionId), subId['contact.creation']);
  assert.equal(String(byType['contact.creation'].portalId), account.id);
  assert.equal(String(byType['contact.propertyChange'].eventId), rowOf['contact.propertyChange'].event);
  assert.equal(byType['contact.propertyChange'].propertyName, 'email');
  assert.equal(byType['contact.propertyChange'].propertyValue, email);
  assert.equal(String(byType['contact.propertyChange'].subscriptionId), subId['contact.propertyChange']);
  for (const { event, request } of got) {
    assert.equal(event.attemptNumber, 0);
    assert.equal(request.method, 'POST');
    assert.match(request.contentType, /^application\/json/);
    assert.ok(request.signature && request.timestamp, 'signed, with a timestamp');
    assert.equal(
      request.signature,
      signature(app.secret, 'POST', target, request.body, request.timestamp),
      'the signature checks out with the secret shown on the page',
    );
    assert.ok(Math.abs(Number(request.timestamp) - Date.now()) < 5 * 60_000, `timestamp ${request.timestamp}`);
  }

  // The list counts them.
  await page.goto(kontor.url('/app/settings/webhooks'));
  assert.deepEqual(await appRow(page, app.id), {
    name: `${name} (app ${app.id})`, target, waiting: 0, delivered: 2, failed: 0,
  });

  // Pause the creation subscription: a new contact sends only its e-mail change. (Both come
  // from the same change, so once that one is there, a creation event would be too.)
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  await page.locator(`tr#sub-${subId['contact.creation']}`).getByRole('button', { name: 'Pause contact.creation', exact: true }).click();
  await page.waitForURL(/done=subscription/);
  assert.match(await page.getByRole('status').innerText(), /Subscription changed\./);
  assert.equal((await subRows(page)).find((s) => s.id === subId['contact.creation']).state, 'Paused');
  api = await kontor.api(token, 'GET', `/webhooks/v3/${app.id}/subscriptions/${subId['contact.creation']}`);
  assert.equal(api.status, 200, api.text);
  assert.equal(api.body.active, false);
  const quietEmail = `${unique('quiet')}@example.com`;
  const quiet = await kontor.contact(token, { email: quietEmail });
  await until('the e-mail change of the contact made while paused', () =>
    mine().find(({ event }) => String(event.objectId) === quiet && event.propertyValue === quietEmail),
  );
  assert.deepEqual(
    mine().filter(({ event }) => String(event.objectId) === quiet).map(({ event }) => event.subscriptionType),
    ['contact.propertyChange'],
    'no creation event while the subscription is paused',
  );
  rows = await watchLog(page, kontor, app.id, 'the e-mail change delivered', (rs) =>
    rs.some((r) => r.record === quiet) && rs.filter((r) => r.record === quiet).every((r) => r.state === 'Delivered') && rs,
  );
  assert.deepEqual(rows.filter((r) => r.record === quiet).map((r) => r.type), ['contact.propertyChange']);

  // Resumed, creations are sent again (and not the one made while paused).
  await page.getByRole('button', { name: 'Resume contact.creation', exact: true }).click();
  await page.waitForURL(/done=subscription/);
  assert.equal((await subRows(page)).find((s) => s.id === subId['contact.creation']).state, 'Active');
  const later = await kontor.contact(token, { email: `${unique('later')}@example.com` });
  await until('the creation of the contact made after resuming', () =>
    mine().find(({ event }) => String(event.objectId) === later && event.subscriptionType === 'contact.creation'),
  );
  assert.equal(
    mine().filter(({ event }) => String(event.objectId) === quiet && event.subscriptionType === 'contact.creation').length,
    0,
  );

  // The receiver answers 500: the event waits, and its attempts grow.
  receiver.answer(500);
  const before500 = Math.max(...(await logRows(page)).map((r) => Number(r.event)));
  const retriedEmail = `${unique('retried')}@example.com`;
  await kontor.updateContact(token, quiet, { email: retriedEmail });
  const isRetried = (r) => Number(r.event) > before500 && r.record === quiet;
  const first = await watchLog(page, kontor, app.id, 'the event waiting after a 500', (rs) =>
    rs.find((r) => isRetried(r) && r.state.startsWith('Waiting') && r.attempts >= 1),
  );
  assert.equal(first.type, 'contact.propertyChange');
  const next = first.state.match(/^Waiting \(next try (.+)\)$/);
  assert.ok(next, `state ${first.state}`);
  assert.ok(
    assertMoment(next[1], first.nextAt, 'next try') > assertMoment(first.made, first.madeAt, 'made'),
    `next try ${first.nextAt} after made ${first.madeAt}`,
  );
  assert.match(first.answer, /^500 the target answered 500$/);
  const grown = await watchLog(page, kontor, app.id, 'more attempts of the waiting event', (rs) =>
    rs.find((r) => r.event === first.event && r.state.startsWith('Waiting') && r.attempts > first.attempts),
  );
  assert.ok(grown.attempts > first.attempts, `attempts ${first.attempts} → ${grown.attempts}`);
  assert.match(await page.locator('section[aria-labelledby="log"]').innerText(), /1 waiting, \d+ delivered, 0 failed\./);
  await screenshot(page, 'webhooks-app-waiting');
  api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.body.events.pending, 1, api.text);

  // The receiver accepts again: the event is delivered, having been sent once per attempt
  // with the same id and a growing attempt number.
  receiver.answer(200);
  const done = await watchLog(page, kontor, app.id, 'the retried event delivered', (rs) =>
    rs.find((r) => r.event === first.event && r.state === 'Delivered'),
  );
  assert.equal(done.answer, '200');
  const tries = mine().filter(({ event }) => String(event.eventId) === first.event);
  assert.equal(tries.length, done.attempts, 'one request per attempt');
  assert.deepEqual(tries.map(({ event }) => event.attemptNumber), tries.map((_, i) => i));
  assert.deepEqual(tries.map(({ request }) => request.answered), [...tries.slice(1).map(() => 500), 200]);
  assert.ok(tries.every(({ event }) => event.propertyValue === retriedEmail));

  // A 400 is the receiver's refusal: the event fails at once, and is sent again from the page.
  receiver.answer(400);
  const before400 = Math.max(...(await logRows(page)).map((r) => Number(r.event)));
  await kontor.updateContact(token, quiet, { email: `${unique('refused')}@example.com` });
  const failed = await watchLog(page, kontor, app.id, 'the refused event failed', (rs) =>
    rs.find((r) => Number(r.event) > before400 && r.state === 'Failed'),
  );
  assert.equal(failed.attempts, 1);
  assert.match(failed.answer, /^400 the target answered 400$/);
  assert.match(await page.locator('section[aria-labelledby="log"]').innerText(), /0 waiting, \d+ delivered, 1 failed\./);
  await screenshot(page, 'webhooks-app-failed');
  await page.goto(kontor.url('/app/settings/webhooks'));
  assert.equal((await appRow(page, app.id)).failed, 1);
  await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  receiver.answer(200);
  await page.getByRole('button', { name: 'Send the failed events again' }).click();
  await page.waitForURL(/done=retried/);
  assert.match(await page.getByRole('status').innerText(), /The failed events will be sent again\./);
  await watchLog(page, kontor, app.id, 'the failed event delivered when sent again', (rs) =>
    rs.find((r) => r.event === failed.event && r.state === 'Delivered'),
  );
  assert.equal(await page.getByRole('button', { name: 'Send the failed events again' }).count(), 0);
  assert.match(await page.locator('section[aria-labelledby="log"]').innerText(), /0 waiting, \d+ delivered, 0 failed\./);

  // Remove the app, confirmed in the dialog: it is gone from the list, the API and its page.
  await removeInDialog(page, name, 'Remove');
  await page.waitForURL(kontor.url('/app/settings/webhooks?done=app-removed'));
  assert.match(await page.getByRole('status').innerText(), /App removed, with its subscriptions and events\./);
  assert.equal(await page.locator(`tr#app-${app.id}`).count(), 0);
  assert.equal(await page.getByRole('link', { name }).count(), 0);
  api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.status, 404, api.text);
  const gone = await page.goto(kontor.url(`/app/settings/webhooks/${app.id}`));
  assert.equal(gone.status(), 404);

  // Every change is in the audit log, by the admin.
  await page.goto(kontor.url('/app/settings/audit?action=webhooks.'));
  const audit = await page.locator('main table tbody tr').evaluateAll((trs) =>
    trs.map((r) => [...r.querySelectorAll('td')].map((td) => td.innerText.trim())),
  );
  const actions = audit.map((r) => r[2]);
  for (const a of [
    'webhooks.app.create',
    'webhooks.subscription.create',
    'webhooks.subscription.pause',
    'webhooks.subscription.resume',
    'webhooks.events.retry',
    'webhooks.app.delete',
  ]) {
    assert.ok(actions.includes(a), `${a} in the audit actions: ${actions}`);
  }
  for (const r of audit) {
    assert.match(r[1], new RegExp(escape(user.email)));
    assert.equal(r[3], `app:${app.id}`);
    assert.ok(!r.join(' ').includes(app.secret), 'the secret is not in the audit log');
  }
});

btest('removing an app asks first: in the page\'s dialog, or on a page of its own', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const name = unique('Asked ');
  const app = await addApp(page, kontor, name, '');
  const appPath = `/app/settings/webhooks/${app.id}`;
  const kept = async (what) => {
    const api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
    assert.equal(api.status, 200, `${what}: ${api.text}`);
  };
  await page.goto(kontor.url(appPath));

  // The dialog, cancelled: nothing is sent, the app stays.
  let posts = 0;
  page.on('request', (r) => {
    if (r.method() === 'POST') posts += 1;
  });
  await removeInDialog(page, name, 'Cancel', 'webhooks-remove-dialog');
  await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
  assert.equal(posts, 0, 'no request after Cancel');
  assert.equal(page.url(), kontor.url(appPath));
  await kept('after Cancel');

  // Enter right after the dialog opens is Cancel's (it has the focus): the dialog closes as
  // cancelled, which the script does not send.
  await page.getByRole('button', { name: `Remove ${name}`, exact: true }).click();
  await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
  await page.keyboard.press('Enter');
  await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#confirm-dialog').evaluate((d) => d.returnValue), 'cancel');
  assert.equal(posts, 0, 'no request after Enter');
  assert.equal(page.url(), kontor.url(appPath));
  await kept('after Enter');

  // Without the script's dialog (the form sent as is), the server asks on a page of its own,
  // whose Cancel leads back to the app.
  const ask = async () => {
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.locator('form[data-confirm]').evaluate((f) => f.submit()),
    ]);
    await page.waitForLoadState('load');
    assert.equal(res.status(), 200);
    await assertHeading(page, `Remove ${name}?`);
    assert.match(await page.locator('main').innerText(), /Its subscriptions and its events, sent or not, go with it\./);
    await kept('on the confirmation page');
  };
  await ask();
  await assertStyled(page);
  await screenshot(page, 'webhooks-remove-confirm-page');
  await page.getByRole('link', { name: 'Cancel', exact: true }).click();
  await page.waitForURL(kontor.url(appPath));
  await kept('after the page\'s Cancel');

  // Its Remove button removes the app.
  await ask();
  const res = await submit(page, page.locator('main').getByRole('button', { name: 'Remove', exact: true }));
  assert.equal(res.status(), 303);
  await page.waitForURL(kontor.url('/app/settings/webhooks?done=app-removed'));
  assert.equal(await page.locator(`tr#app-${app.id}`).count(), 0);
  const api = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${app.id}`);
  assert.equal(api.status, 404, api.text);
});

btest('a user cannot open or change webhooks', async ({ page }) => {
  const { account, token } = await setUp(kontor, 'admin');
  const created = await kontor.api(token, 'POST', '/kontor/v1/webhooks/apps', {
    name: unique('Theirs '),
    targetUrl: receiver.url('/hooks/theirs'),
  });
  assert.equal(created.status, 201, created.text);
  const appId = created.body.id;
  const plain = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, plain);
  assert.equal(
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks', exact: true }).count(),
    0,
    'no Webhooks link for a user',
  );
  for (const p of ['/app/settings/webhooks', `/app/settings/webhooks/${appId}`]) {
    const res = await page.goto(kontor.url(p));
    assert.equal(res.status(), 403, `${p} answered ${res.status()}`);
    await assertHeading(page, 'Not allowed');
  }
  await screenshot(page, 'webhooks-not-allowed');

  // With a valid form token of the user's own session, every change is still refused.
  await page.goto(kontor.url('/app/objects/contacts/new'));
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const was = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${appId}`);
  const tries = [
    ['/app/settings/webhooks', { name: 'Sneaky', target_url: receiver.url('/hooks/sneaky') }],
    [`/app/settings/webhooks/${appId}`, { action: 'settings', target_url: receiver.url('/hooks/sneaky'), max_concurrent: '1' }],
    [`/app/settings/webhooks/${appId}`, { action: 'subscribe', event_type: 'contact.creation' }],
    [`/app/settings/webhooks/${appId}`, { action: 'retry' }],
    [`/app/settings/webhooks/${appId}`, { action: 'delete' }],
  ];
  for (const [p, form] of tries) {
    const res = await page.request.post(kontor.url(p), { form: { _csrf: csrf, ...form }, maxRedirects: 0 });
    assert.equal(res.status(), 403, `${p} ${form.action || 'add'} answered ${res.status()}`);
    assert.match(await res.text(), /Not allowed/);
  }
  const now = await kontor.api(token, 'GET', `/kontor/v1/webhooks/apps/${appId}`);
  assert.deepEqual(now.body, was.body, 'nothing changed');
  const list = await kontor.api(token, 'GET', '/kontor/v1/webhooks/apps');
  assert.deepEqual(list.body.results.map((a) => a.id), [appId], 'no app was added');
  const subs = await kontor.api(token, 'GET', `/webhooks/v3/${appId}/subscriptions`);
  assert.deepEqual(subs.body.results, []);
});
