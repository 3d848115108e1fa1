'use strict';
// The fake Salesforce (tests/salesforce/fake/server.py) for salesforce.test.js, and the
// Settings → Salesforce page's steps: connecting through the fake's login page, and a sync
// round asked for with "Sync now" and watched by reloading the page.
//
//   const fake = new FakeSalesforce();          // its HTTP port is chosen now
//   const { btest, kontor } = suite({ env: fake.env(), before: () => fake.start(), after: () => fake.stop() });
//
// The server's environment must name the fake's URL when the suite starts the server, so the
// port is chosen (synchronously) when the file loads, and the fake started on it in `before`.
// Its control API: fake.control(method, '/_fake/...', body).

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const { sleep } = require('./kontor');

const SERVER = path.resolve(__dirname, '../../salesforce/fake/server.py');
const PAGE = '/app/settings/integrations/salesforce';

/** A free TCP port on 127.0.0.1, found synchronously (in a child node process). */
function freePortSync() {
  const script = "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})";
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

class FakeSalesforce {
  constructor() {
    this.port = freePortSync();
    this.base = `http://127.0.0.1:${this.port}`;
    this.proc = null;
    this.stderr = '';
  }

  /** The server's environment: the connected app, its login URL, rounds only when asked. */
  env() {
    return {
      KONTOR_SALESFORCE_CLIENT_ID: 'kontor-test-client',
      KONTOR_SALESFORCE_CLIENT_SECRET: 'kontor-test-secret',
      KONTOR_SALESFORCE_LOGIN_URL: this.base,
      KONTOR_SALESFORCE_INTERVAL_SECONDS: '3600',
      KONTOR_SALESFORCE_CLAIM_SECONDS: '3',
    };
  }

  /** Starts the fake on its port (TLS on any port, its CA in a folder of ours). */
  async start() {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-fake-sf-'));
    const args = [SERVER, '--host', '127.0.0.1', '--http-port', String(this.port), '--https-port', '0',
      '--ca-out', path.join(this.tmp, 'ca.pem')];
    const proc = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    proc.on('exit', () => running.delete(proc));
    proc.stderr.on('data', (c) => {
      this.stderr = (this.stderr + c).slice(-20_000);
    });
    const ready = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the fake Salesforce did not start:\n${this.stderr}`)), 30_000);
      proc.on('exit', (code) => reject(new Error(`the fake Salesforce exited (${code}):\n${this.stderr}`)));
      proc.stdout.on('data', (c) => {
        out += c;
        const nl = out.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)));
        } catch (e) {
          reject(e);
        }
      });
    });
    assert.equal(ready.http, this.base, 'the fake listens where the server was told');
  }

  async stop() {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(t);
    }
    if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  /** A call of the control API (`p` starts with /_fake/); its JSON answer. */
  async control(method, p, body) {
    const res = await fetch(`${this.base}${p}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${p} answered ${res.status}: ${JSON.stringify(json)}`);
    return json;
  }

  /** Inserts records of a type (not counted as API calls); their ids in order. */
  async insert(type, records) {
    return (await this.control('POST', `/_fake/records/${type}`, records)).ids;
  }

  /**
   * A new empty org for a test, its clock frozen at now, with the server's callback as a
   * redirect URI. (Each test connects an account of its own to it.)
   */
  async fresh(kontor) {
    await this.control('POST', '/_fake/reset');
    await this.control('POST', '/_fake/config', { redirect_uris: [kontor.url(`${PAGE}/callback`)] });
    await this.control('POST', '/_fake/clock', { now: new Date().toISOString() });
  }
}

/** The moment of the last round the page shows (its <time datetime>), or null ("Not yet"). */
async function lastRound(page) {
  const t = page.locator('#sf-last-round time');
  return (await t.count()) ? t.getAttribute('datetime') : null;
}

/** Reloads the page until `done()` is true (or throws after `timeoutMs`). */
async function reloadUntil(page, what, done, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
    await sleep(300);
    await page.reload();
  }
}

/**
 * Connects the signed-in admin's account from the page: the Connect button, the fake's login
 * page, and back with the flash; then waits for the first round, which a connection starts.
 */
async function connect(page, kontor) {
  await page.goto(kontor.url(PAGE));
  await page.locator('#sf-connect-button').click();
  await page.waitForURL(/\/services\/oauth2\/authorize\?/, { timeout: 10_000 });
  await logIn(page, kontor);
}

/** On the fake's login page: logs in as its admin; waits for the page and the first round. */
async function logIn(page, kontor) {
  await page.locator('#username').waitFor();
  assert.match(page.url(), /\/services\/oauth2\/authorize\?/, 'the Salesforce login page');
  await page.locator('#username').fill('admin@example.com');
  await page.locator('#password').fill('password');
  await page.locator('#Login').click();
  await page.waitForURL(kontor.url(`${PAGE}?done=connected`));
  assert.match(await page.getByRole('status').innerText(), /^Salesforce connected\. The first sync has started/);
  await reloadUntil(page, 'the first round', async () => (await lastRound(page)) !== null);
}

/**
 * Waits for a round that ends after `since` (ms), reloading the page. The rounds a test asks
 * for (connect, "Sync now", "Retry all") each start one; every test waits for it before the
 * next, so none is running when another is asked for.
 */
async function roundAfter(page, since) {
  await reloadUntil(page, 'a new sync round', async () => {
    const t = await lastRound(page);
    return t !== null && Date.parse(t) > since;
  });
}

/**
 * A round a minute later on Salesforce's clock: what changed there before that minute is
 * read. Clicks "Sync now" and reloads until the page shows a newer round.
 */
async function syncRound(page, kontor, fake) {
  await fake.control('POST', '/_fake/clock', { advance: 60 });
  await page.goto(kontor.url(PAGE));
  const since = Date.now();
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.waitForURL(kontor.url(`${PAGE}?done=sync`));
  assert.match(await page.getByRole('status').innerText(), /A sync round starts in a moment\./);
  await roundAfter(page, since);
}

/** The lines of the "Linked records" list. */
const counts = (page) => page.locator('#sf-counts li').allInnerTexts();

module.exports = { FakeSalesforce, PAGE, connect, logIn, syncRound, roundAfter, lastRound, reloadUntil, counts };
