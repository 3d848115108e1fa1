'use strict';
// Starts the fake Salesforce server (../../fake/server.py) for one test file, and talks to its
// control API. Require this module before jsforce: it clears proxy variables, which jsforce
// reads once when it loads and would otherwise send loopback traffic through.

for (const name of ['https_proxy', 'http_proxy', 'HTTPS_PROXY', 'HTTP_PROXY']) {
  delete process.env[name];
}

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after, beforeEach } = require('node:test');
const jsforce = require('jsforce');

const SERVER = path.join(__dirname, '..', '..', 'fake', 'server.py');
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

const CLIENT_ID = 'kontor-test-client';
const CLIENT_SECRET = 'kontor-test-secret';
const ADMIN = { username: 'admin@example.com', password: 'password' };
const REDIRECT_URI = 'http://127.0.0.1/callback';

// Every server this process started, so none outlives it even if an `after` hook never ran.
const running = new Set();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

class FakeSalesforce {
  constructor() {
    this.proc = null;
    this.http = this.https = this.ca = null;
    this.stderr = '';
    this.tmp = null;
  }

  /** Spawns the server on free ports and waits for its JSON ready line. */
  start() {
    // The throwaway CA goes to a directory of ours, removed again in stop().
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-salesforce-node-'));
    const args = [SERVER, '--host', '127.0.0.1', '--http-port', '0', '--https-port', '0',
      '--ca-out', path.join(this.tmp, 'ca.pem')];
    const proc = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      this.stderr += chunk;
    });
    proc.on('exit', () => running.delete(proc));
    return new Promise((resolve, reject) => {
      let out = '';
      let settled = false;
      const timer = setTimeout(() => fail('no ready line in time'), READY_TIMEOUT_MS);
      function fail(why) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        proc.kill('SIGKILL');
        reject(new Error(`fake Salesforce did not start: ${why}`));
      }
      proc.on('error', (err) => fail(err.message));
      proc.on('exit', (code) => fail(`exited with ${code}\n${this.stderr}`));
      proc.stdout.setEncoding('utf8');
      proc.stdout.on('data', (chunk) => {
        if (settled) return;
        out += chunk;
        const nl = out.indexOf('\n');
        if (nl < 0) return;
        let ready;
        try {
          ready = JSON.parse(out.slice(0, nl));
        } catch {
          fail(`unreadable ready line ${JSON.stringify(out)}`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        Object.assign(this, { http: ready.http, https: ready.https, ca: ready.ca });
        resolve(this);
      });
    });
  }

  /** SIGTERM, then SIGKILL if the server has not gone within a few seconds. */
  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await gone;
      clearTimeout(timer);
    }
    if (this.tmp) {
      fs.rmSync(this.tmp, { recursive: true, force: true });
      this.tmp = null;
    }
  }

  /** A control-API call (`/_fake/...`) over plain HTTP; resolves to the decoded JSON body. */
  async control(method, urlPath, body) {
    const p = urlPath.startsWith('/_fake/') ? urlPath : `/_fake/${urlPath.replace(/^\//, '')}`;
    const res = await fetch(this.http + p, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`control ${method} ${p} -> ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** The request log, newest last; `filter` keeps entries whose path contains it. */
  async requests(filter) {
    const { requests } = await this.control('GET', '/_fake/requests');
    return filter ? requests.filter((r) => r.path.includes(filter)) : requests;
  }

  /** Inserts rows straight into the org (not an API call); resolves to their ids. */
  async load(sobject, rows) {
    return (await this.control('POST', `/_fake/records/${sobject}`, rows)).ids;
  }

  /** A jsforce connection with the connected app's credentials, not yet logged in. */
  connection({ base = this.http, version, ...rest } = {}) {
    return new jsforce.Connection({
      loginUrl: base,
      oauth2: { loginUrl: base, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: REDIRECT_URI },
      ...(version ? { version } : {}),
      ...rest,
    });
  }

  /** A connection logged in as the seeded admin through the OAuth password grant. */
  async login(options = {}) {
    const conn = this.connection(options);
    await conn.login(ADMIN.username, ADMIN.password);
    return conn;
  }
}

/**
 * One server for the calling test file: started before its tests, stopped after them (always),
 * and reset to a fresh org before each test.
 */
function useFake() {
  const fake = new FakeSalesforce();
  before(() => fake.start());
  after(() => fake.stop());
  beforeEach(() => fake.control('POST', '/_fake/reset'));
  return fake;
}

module.exports = { FakeSalesforce, useFake, jsforce, CLIENT_ID, CLIENT_SECRET, ADMIN, REDIRECT_URI };
