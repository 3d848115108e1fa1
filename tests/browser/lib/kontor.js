'use strict';
// Starts a real kontor server for one test file, on 127.0.0.1 with a free port and a fresh
// temporary data folder, and creates accounts, users and tokens with the kontor CLI.
//
//   const kontor = await startKontor();
//   const account = await kontor.account('Acme');
//   const user = await kontor.user(account.id, { role: 'admin' });
//   ...
//   await kontor.stop();
//
// KONTOR_BIN selects the binary (default: the release build of this workspace). The rest of
// the environment is passed through, so KONTOR_DATABASE_US/EU/DIRECTORY run the suite on
// PostgreSQL; every e-mail address and name is unique per run, so a shared database is fine.
// `startKontor({ env })` adds variables to the server's environment only (not the CLI's), e.g.
// KONTOR_SMTP_URL; `env` may be a function of {port, baseUrl}, for KONTOR_PUBLIC_URL.
// `startKontor({ dataDir: other.dataDir })` starts a second node on another's databases (it
// leaves them in place when it stops), e.g. one that runs the jobs of a node started with
// KONTOR_JOB_WORKERS=0. A test file's own server is usually started by lib/suite.js.
// `setUp(kontor, role)`: a new account with a user of the role and an API token. Small helpers
// the test files share: unique names, sleep, escape (a string as a regular expression that
// matches it as it is) and waitForText.

const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const KONTOR_BIN = process.env.KONTOR_BIN || path.resolve(__dirname, '../../../target/release/kontor');
const STARTUP_TIMEOUT_MS = 30_000;

let counter = 0;
/** A string unique within this run (and across runs), for e-mails and names. */
function unique(prefix = 'x') {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${counter}`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs the CLI; resolves to its trimmed standard output, rejects with its error output.
 * `input`, when given, is written to its standard input (not a terminal, so the CLI reads a
 * password from there); otherwise standard input is closed.
 */
function run(args, input) {
  return new Promise((resolve, reject) => {
    const child = execFile(KONTOR_BIN, args, { env: process.env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kontor ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
    // A command that does not read its input may exit before the write lands (EPIPE):
    // that is not an error of the command, whose exit status tells.
    child.stdin.on('error', () => {});
    child.stdin.end(input === undefined ? undefined : input);
  });
}

const running = new Set();
// A test file that crashes must not leave its server behind.
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

class Kontor {
  constructor(dataDir, { env = {}, owned = true } = {}) {
    this.dataDir = dataDir;
    this.owned = owned;
    this.env = env;
    this.child = null;
    this.baseUrl = null;
    this.log = '';
  }

  cli(args, input) {
    return run(['--data-dir', this.dataDir, ...args], input);
  }

  async start() {
    const port = await freePort();
    this.baseUrl = `http://127.0.0.1:${port}`;
    const extra = typeof this.env === 'function' ? this.env({ port, baseUrl: this.baseUrl }) : this.env;
    this.child = spawn(KONTOR_BIN, ['--data-dir', this.dataDir, 'serve', '--listen', `127.0.0.1:${port}`], {
      // Every browser in the suite signs in from 127.0.0.1: the per-client sign-in limit is
      // raised so that only the test that checks it (which sets its own) meets it.
      // API rate limits likewise.
      env: {
        KONTOR_SIGN_IN_PER_CLIENT_PER_MINUTE: '1000',
        KONTOR_API_LIMITS: 'off',
        ...process.env,
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this.child);
    const keep = (chunk) => {
      this.log += chunk.toString();
      if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    let exited = null;
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        exited = { code, signal };
        running.delete(this.child);
        resolve(exited);
      });
    });
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (exited) {
        throw new Error(`kontor exited while starting (${JSON.stringify(exited)}):\n${this.log}`);
      }
      try {
        const res = await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return this;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`kontor did not answer /healthz within ${STARTUP_TIMEOUT_MS} ms:\n${this.log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exitPromise;
      clearTimeout(t);
    }
    if (this.owned) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  url(p) {
    return `${this.baseUrl}${p}`;
  }

  /**
   * Creates an account (enterprise tier in the us region unless told otherwise); returns
   * {id, name, tier, region}.
   */
  async account(name = unique('Account '), { tier = 'enterprise', region = 'us' } = {}) {
    const id = await this.cli(['admin', 'account', 'create', '--name', name, '--region', region, '--tier', tier]);
    if (!/^\d+$/.test(id)) throw new Error(`unexpected account id output: ${JSON.stringify(id)}`);
    return { id, name, tier, region };
  }

  /**
   * The e-mails the server wrote to its outbox (`<data dir>/outbox/*.eml`, the default when no
   * SMTP server is configured), decoded: [{file, to, subject, body}], oldest first.
   */
  async mails() {
    const dir = path.join(this.dataDir, 'outbox');
    if (!fs.existsSync(dir)) return [];
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.eml'))
      .map((f) => path.join(dir, f))
      .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
    const out = [];
    for (const file of files) {
      // Python's e-mail parser undoes the transfer encoding (quoted-printable or base64).
      const json = await new Promise((resolve, reject) => {
        execFile(
          'python3',
          [
            '-c',
            'import email, json, sys\n' +
              'from email import policy\n' +
              'm = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)\n' +
              'print(json.dumps({"to": str(m["To"]), "subject": str(m["Subject"]), "body": m.get_body(("plain",)).get_content()}))',
            file,
          ],
          { timeout: 30_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`reading ${file}: ${stderr || err.message}`)) : resolve(stdout)),
        );
      });
      out.push({ file, ...JSON.parse(json) });
    }
    return out;
  }

  /** Creates a user with a password; returns {id, email, password, role, accountId}. */
  async user(accountId, { role = 'user', email = `${unique('user')}@example.com`, password = `pw-${unique('secret')}` } = {}) {
    const out = await this.cli(
      ['admin', 'user', 'create', '--account', String(accountId), '--email', email, '--role', role],
      `${password}\n`,
    );
    const id = out.split('\n')[0].trim();
    if (!/^\d+$/.test(id)) throw new Error(`unexpected user id output: ${JSON.stringify(out)}`);
    return { id, email, password, role, accountId: String(accountId) };
  }

  /** Creates an API token with the CLI; returns the token. */
  async token(accountId, name = unique('token ')) {
    const token = await this.cli(['admin', 'token', 'create', '--account', String(accountId), '--name', name]);
    if (!token || /\s/.test(token)) throw new Error(`unexpected token output: ${JSON.stringify(token)}`);
    return token;
  }

  /** A request to the HubSpot-compatible API with a bearer token; returns {status, body}. */
  async api(token, method, p, body) {
    const res = await fetch(this.url(p), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, body: json, text };
  }

  /**
   * Asks for a backup through the API and waits until it is completed (the server's job
   * runner takes it up); returns its id.
   */
  async backup(token, timeoutMs = 60_000) {
    const r = await this.api(token, 'POST', '/kontor/v1/backups');
    if (r.status !== 202) throw new Error(`asking for a backup answered ${r.status}: ${r.text}`);
    const { id } = r.body;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const b = await this.api(token, 'GET', `/kontor/v1/backups/${id}`);
      if (b.body?.status === 'COMPLETED') return String(id);
      if (b.body?.status === 'FAILED' || Date.now() > deadline) throw new Error(`backup ${id}: ${b.text}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Changes a contact's properties through the API (an empty string clears a value). */
  async updateContact(token, id, properties) {
    const r = await this.api(token, 'PATCH', `/crm/v3/objects/contacts/${id}`, { properties });
    if (r.status !== 200) throw new Error(`updating contact ${id} answered ${r.status}: ${r.text}`);
    return r.body;
  }

  /** Creates a contact through the API; returns its id. */
  async contact(token, properties) {
    const r = await this.api(token, 'POST', '/crm/v3/objects/contacts', { properties });
    if (r.status !== 201) throw new Error(`creating a contact answered ${r.status}: ${r.text}`);
    return r.body.id;
  }
}

/**
 * Starts a server on a free port with a fresh data folder and waits for /healthz. `env`: more
 * variables for the server (an object, or a function of {port, baseUrl} returning one).
 */
async function startKontor({ env, dataDir } = {}) {
  if (!fs.existsSync(KONTOR_BIN)) {
    throw new Error(`no kontor binary at ${KONTOR_BIN}: run \`cargo build --release\` or set KONTOR_BIN`);
  }
  const owned = !dataDir;
  const dir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-browser-'));
  const k = new Kontor(dir, { env, owned });
  try {
    await k.start();
  } catch (e) {
    if (owned) fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return k;
}

/** A new account with a user of this role and an API token: {account, user, token}. */
async function setUp(kontor, role = 'admin') {
  const account = await kontor.account();
  const user = await kontor.user(account.id, { role });
  const token = await kontor.token(account.id);
  return { account, user, token };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A regular expression matching the string as it is. */
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Waits until `locator`'s text matches, without touching the page: it may reload itself
 * meanwhile (a text read during a reload is retried).
 */
async function waitForText(locator, re, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      last = await locator.innerText({ timeout: 2_000 });
      if (re.test(last)) return last;
    } catch {
      // between two loads of the page
    }
    if (Date.now() > deadline) throw new Error(`text did not match ${re} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

module.exports = { startKontor, setUp, unique, sleep, escape, waitForText, KONTOR_BIN };
