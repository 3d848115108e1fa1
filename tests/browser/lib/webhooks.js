'use strict';
// Page helpers for Settings → Webhooks (webhooks.test.js and webhooks-forms.test.js): an app
// added on the list page, subscriptions made on the app's page, the app removed in the page's
// dialog, and the list, the subscriptions and the delivery log read back (the log watched by
// loading the page again). The server is passed in, as to lib/browser.js's signIn.

const assert = require('node:assert/strict');
const { sleep, escape } = require('./kontor');
const { screenshot } = require('./browser');

/** Calls `fn` until it returns something truthy; fails with `what` and the last value. */
async function until(what, fn, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last && (!Array.isArray(last) || last.length)) return last;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    }
    await sleep(150);
  }
}

/** Submits a form with its button; returns the response of the POST, the page loaded. */
async function submit(page, button) {
  const [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), button.click()]);
  await page.waitForLoadState('load');
  return res;
}

/**
 * The rows of the app's delivery log, newest first; `madeAt` and `nextAt` are the datetime
 * attributes of the <time> elements of "Made" and "Waiting (next try …)".
 */
async function logRows(page) {
  return page.locator('section[aria-labelledby="log"] tbody tr').evaluateAll((trs) =>
    trs.map((r) => {
      const tds = [...r.querySelectorAll('td')];
      const c = tds.map((td) => td.innerText.trim());
      const at = (td) => td.querySelector('time')?.getAttribute('datetime') ?? null;
      return {
        id: r.id.replace(/^event-/, ''),
        event: c[0],
        type: c[1],
        record: c[2],
        state: c[3],
        attempts: Number(c[4]),
        answer: c[5],
        made: c[6],
        madeAt: at(tds[6]),
        nextAt: at(tds[3]),
      };
    }),
  );
}

/** A moment of the log: shown to the second in UTC, its <time> in ISO 8601; returns its ms. */
function assertMoment(shown, iso, what) {
  assert.match(iso ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${what}: datetime ${iso}`);
  assert.equal(shown, `${iso.slice(0, 19).replace('T', ' ')} UTC`, `${what} as shown`);
  return Date.parse(iso);
}

/**
 * Loads the app's page again and again until `check(rows)` returns something truthy (which is
 * returned): the delivery log is server-rendered, so a reload is how one watches it.
 */
async function watchLog(page, kontor, appId, what, check, timeoutMs = 30_000) {
  return until(
    what,
    async () => {
      await page.goto(kontor.url(`/app/settings/webhooks/${appId}`));
      return check(await logRows(page));
    },
    timeoutMs,
  );
}

/** The subscriptions table as {id, event, property, state}. */
async function subRows(page) {
  return page.locator('section[aria-labelledby="subs"] tbody tr').evaluateAll((trs) =>
    trs.map((r) => {
      const c = [...r.querySelectorAll('td')].map((td) => td.innerText.trim());
      return { id: r.id.replace(/^sub-/, ''), event: c[0], property: c[1], state: c[2] };
    }),
  );
}

/** An app's row in the list as {name, target, waiting, delivered, failed}. */
async function appRow(page, id) {
  const cells = await page.locator(`tr#app-${id} td`).allInnerTexts();
  const [name, target, waiting, delivered, failed] = cells.map((c) => c.trim());
  return { name, target, waiting: Number(waiting), delivered: Number(delivered), failed: Number(failed) };
}

/** Adds an app on the list page; returns {id, name, secret}. */
async function addApp(page, kontor, name, targetUrl) {
  await page.goto(kontor.url('/app/settings/webhooks'));
  await page.getByLabel('Name', { exact: true }).fill(name);
  if (targetUrl) await page.getByLabel('Target URL', { exact: true }).fill(targetUrl);
  const res = await submit(page, page.getByRole('button', { name: 'Add app' }));
  assert.equal(res.status(), 200);
  const status = await page.getByRole('status').innerText();
  const m = status.match(new RegExp(`App ${escape(name)} added \\(app id (\\d+)\\)\\. Copy its client secret now`));
  assert.ok(m, `flash: ${status}`);
  return { id: m[1], name, secret: (await page.locator('p.secret#new-secret').innerText()).trim() };
}

/** Subscribes the app (its page open) to an event; returns the response's status. */
async function subscribe(page, eventType, propertyName = '') {
  await page.getByLabel('Event', { exact: true }).selectOption(eventType);
  await page.getByLabel('Property', { exact: true }).fill(propertyName);
  const res = await submit(page, page.getByRole('button', { name: 'Subscribe', exact: true }));
  return res.status();
}

/**
 * Clicks the app's Remove button (its page open); the page's dialog asks, and is answered
 * with its button `answer` ("Remove" or "Cancel"); `shot` names a screenshot of the dialog.
 */
async function removeInDialog(page, name, answer, shot) {
  await page.getByRole('button', { name: `Remove ${name}`, exact: true }).click();
  const dialog = page.locator('#confirm-dialog');
  await dialog.waitFor({ state: 'visible' });
  // Cancel has the focus (autofocus): Enter right after the dialog opens keeps the app.
  const focused = await dialog
    .getByRole('button', { name: 'Cancel', exact: true })
    .evaluate((b) => b === document.activeElement || String(document.activeElement?.outerHTML).slice(0, 200));
  assert.equal(focused, true, `Cancel has the focus when the dialog opens, not ${focused}`);
  assert.equal(
    await page.locator('#confirm-text').innerText(),
    `Remove ${name} with its subscriptions and its events, sent or not?`,
  );
  if (shot) await screenshot(page, shot);
  await dialog.getByRole('button', { name: answer, exact: true }).click();
}

module.exports = {
  until,
  submit,
  logRows,
  assertMoment,
  watchLog,
  subRows,
  appRow,
  addApp,
  subscribe,
  removeInDialog,
};
