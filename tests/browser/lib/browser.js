'use strict';
// Headless Chromium (Debian's /usr/bin/chromium) through playwright-core: a fresh profile
// folder and browser context for every test, sign-in helpers and screenshots.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];
const SCREENSHOTS = path.resolve(__dirname, '..', 'screenshots');

/** Opens Chromium with a new, empty profile; returns {context, page, close}. */
async function openBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 800 },
      locale: 'en-US',
      timezoneId: 'UTC',
    });
  } catch (e) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  // Anything the Content-Security-Policy refused: the console ships no inline script or style,
  // so every refusal is a defect (or an attack), and fails the test it happened in.
  const cspViolations = [];
  const watch = (p) => {
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    p.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    p.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${p.url()}: ${m.text()}`);
    });
  };
  context.on('page', watch);
  watch(page);
  return {
    context,
    page,
    problems,
    cspViolations,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A test with its own browser. On failure it keeps a screenshot of the page as it was
 * (screenshots/failed-<name>.png) and adds the end of the server's log to the error.
 */
function browserTest(test, kontorRef, name, fn, options = {}) {
  const { expectCspViolations, ...testOptions } = options;
  test(name, { timeout: 120_000, ...testOptions }, async (t) => {
    const b = await openBrowser();
    try {
      await fn({ ...b, t });
      if (!expectCspViolations) {
        assert.deepEqual(b.cspViolations, [], 'nothing on the pages was refused by the Content-Security-Policy');
      }
    } catch (e) {
      try {
        const file = path.join(SCREENSHOTS, `failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)}.png`);
        fs.mkdirSync(SCREENSHOTS, { recursive: true });
        await b.page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
        e.message += `\n(page ${b.page.url()}, screenshot ${file})`;
      } catch {
        // no page to show
      }
      const k = kontorRef();
      if (k && k.log) e.message += `\n--- end of the server log ---\n${k.log.slice(-4_000)}`;
      if (b.problems.length) e.message += `\n--- browser problems ---\n${b.problems.join('\n')}`;
      throw e;
    } finally {
      await b.close();
    }
  });
}

/** A full-page PNG of the page in screenshots/NAME.png. */
async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Fills in the sign-in form and submits it; waits for the next page. */
async function submitSignIn(page, kontor, user, password = user.password) {
  if (!page.url().startsWith(kontor.url('/app/login'))) {
    await page.goto(kontor.url('/app/login'));
  }
  await page.locator('#email').fill(user.email);
  await page.locator('#password').fill(password);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === kontor.url('/app/login') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.waitForLoadState('load');
  return res;
}

/** Signs a user without a second factor in; ends on the contacts list. */
async function signIn(page, kontor, user) {
  await page.goto(kontor.url('/app/login'));
  await submitSignIn(page, kontor, user);
  await page.waitForURL(kontor.url('/app/objects/contacts'));
  await assertHeading(page, 'Contacts');
}

/** The page's first-level heading is exactly this text. */
async function assertHeading(page, text) {
  const h1 = page.locator('h1');
  await h1.first().waitFor();
  assert.equal((await h1.first().innerText()).trim(), text, `heading of ${page.url()}`);
}

/** The stylesheet was applied (a page without it would still "work" but look broken). */
async function assertStyled(page) {
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(245, 247, 250)', `body background of ${page.url()} (is app.css loaded?)`);
}

/** Goes to a path and returns the HTTP status of the document. */
async function visit(page, kontor, p) {
  const res = await page.goto(kontor.url(p));
  return res.status();
}

module.exports = {
  openBrowser,
  browserTest,
  screenshot,
  signIn,
  submitSignIn,
  assertHeading,
  assertStyled,
  visit,
  SCREENSHOTS,
};
