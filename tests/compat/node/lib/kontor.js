'use strict';
// Starts a real kontor server for a test file and hands out accounts, tokens and official
// HubSpot clients pointed at it.
//
//   const kontor = await startKontor();
//   const { client } = await kontor.account('Acme');
//   ...
//   await kontor.stop();
//
// KONTOR_BIN selects the binary (default: the release build of this workspace). Database
// settings such as KONTOR_DATABASE_US/EU/DIRECTORY are inherited from the environment, so the
// same suite runs against SQLite (the default, in a fresh temporary data folder) or PostgreSQL.

const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const { Client } = require('@hubspot/api-client');

const execFileP = promisify(execFile);

const KONTOR_BIN = process.env.KONTOR_BIN || path.resolve(__dirname, '../../../../target/release/kontor');
const STARTUP_TIMEOUT_MS = 30_000;

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

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

class Kontor {
  // No API rate limits unless a test starts a server with its own (KONTOR_API_LIMITS).
  constructor(dataDir, { apiLimits = 'off' } = {}) {
    this.apiLimits = apiLimits;
    this.dataDir = dataDir;
    this.child = null;
    this.baseUrl = null;
    this.log = [];
  }

  async cli(...args) {
    try {
      const { stdout } = await execFileP(KONTOR_BIN, ['--data-dir', this.dataDir, ...args], {
        env: process.env,
      });
      return stdout.trim();
    } catch (e) {
      throw new Error(`kontor ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  }

  /** Creates an account (enterprise unless told) with one API token; returns {id, token, client}. */
  async account(name, { region = 'us', tier = 'enterprise' } = {}) {
    const id = await this.cli('admin', 'account', 'create', '--name', name, '--region', region, '--tier', tier);
    if (!/^\d+$/.test(id)) throw new Error(`unexpected account id output: ${JSON.stringify(id)}`);
    const token = await this.cli('admin', 'token', 'create', '--account', id, '--name', `${name} token`);
    if (!token || /\s/.test(token)) throw new Error(`unexpected token output: ${JSON.stringify(token)}`);
    return { id, token, client: this.client(token) };
  }

  /** Creates a user (and so an owner) in an account; returns the user id. */
  async user(accountId, { email, firstName = '', lastName = '', role = 'user' }) {
    const out = await this.cli(
      'admin', 'user', 'create', '--account', String(accountId), '--email', email, '--role', role,
      '--first-name', firstName, '--last-name', lastName, '--generate-password',
    );
    const userId = out.split('\n')[0].trim();
    if (!/^\d+$/.test(userId)) throw new Error(`unexpected user id output: ${JSON.stringify(out)}`);
    return Number(userId);
  }

  /** A client of the token; `options` go to the client (e.g. numberOfApiCallRetries). */
  client(accessToken, options = {}) {
    return new Client({ accessToken, basePath: this.baseUrl, ...options });
  }

  async start() {
    if (!fs.existsSync(KONTOR_BIN)) {
      throw new Error(`kontor binary not found at ${KONTOR_BIN}; build it or set KONTOR_BIN`);
    }
    // Open (and migrate) the databases before the server does, and check the CLI works.
    this.bootstrapAccount = await this.account('bootstrap');
    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      try {
        await this.spawnOn(port);
        return this;
      } catch (e) {
        lastError = e;
        await this.kill();
      }
    }
    throw lastError;
  }

  async spawnOn(port) {
    const listen = `127.0.0.1:${port}`;
    const child = spawn(KONTOR_BIN, ['--data-dir', this.dataDir, 'serve', '--listen', listen], {
      env: {
        ...process.env,
        KONTOR_API_LIMITS: this.apiLimits,
        // Webhooks may go to receivers the tests run on 127.0.0.1, and a failed delivery is
        // retried after 200 ms rather than a minute (webhooks.test.js).
        KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS: '1',
        KONTOR_WEBHOOKS_RETRY_BASE_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (chunk) => {
      this.log.push(chunk.toString());
      if (this.log.length > 200) this.log.shift();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let exited = null;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    const url = `http://${listen}`;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(`kontor exited during startup (${JSON.stringify(exited)}):\n${this.log.join('')}`);
      }
      try {
        const res = await fetch(`${url}/healthz`);
        if (res.status === 200) {
          this.baseUrl = url;
          return;
        }
      } catch {
        // not listening yet
      }
      await delay(25);
    }
    throw new Error(`kontor did not answer /healthz within ${STARTUP_TIMEOUT_MS} ms:\n${this.log.join('')}`);
  }

  /** Stops the server and removes its data folder. */
  async stop() {
    await this.kill();
    running.delete(this);
    this.cleanup();
  }

  async kill() {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }

  cleanup() {
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const running = new Set();
process.on('exit', () => {
  for (const k of running) {
    if (k.child) k.child.kill('SIGKILL');
    k.cleanup();
  }
});

/** Starts a server; `{ apiLimits }` sets its KONTOR_API_LIMITS (none met by default). */
async function startKontor(options = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-compat-'));
  const k = new Kontor(dataDir, options);
  running.add(k);
  try {
    await k.start();
  } catch (e) {
    await k.stop();
    throw e;
  }
  return k;
}

module.exports = { startKontor, KONTOR_BIN };
