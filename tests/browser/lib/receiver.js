'use strict';
// A webhook receiver for the browser tests: a separate node process on 127.0.0.1 that logs
// every request it gets and answers 200, or the status its control file holds.
//
//   const receiver = await startReceiver();
//   ... target: receiver.url('/hooks/x') ...
//   receiver.events();      // every event of every request, with its request
//   receiver.answer(500);   // from now on
//   await receiver.stop();
//
// A process of its own (not a server in the test's process) so that what the server sends is
// seen as any receiver would see it, whatever the test process is busy with.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/**
 * The receiver's program, run as `node -e` in a process of its own: an HTTP server on a free
 * port of 127.0.0.1 that appends every request as a JSON line to the log file (before it
 * answers) and answers the status in the control file, or 200 when there is none.
 */
function receiverMain() {
  const http = require('node:http');
  const fs = require('node:fs');
  const [log, control] = process.argv.slice(1);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let status = 200;
      try {
        const n = Number(fs.readFileSync(control, 'utf8').trim());
        if (n >= 200 && n <= 599) status = n;
      } catch {
        // no control file: 200
      }
      fs.appendFileSync(
        log,
        `${JSON.stringify({
          at: Date.now(),
          method: req.method,
          url: req.url,
          contentType: req.headers['content-type'] || null,
          signature: req.headers['x-hubspot-signature-v3'] || null,
          timestamp: req.headers['x-hubspot-request-timestamp'] || null,
          answered: status,
          body: Buffer.concat(chunks).toString('utf8'),
        })}\n`,
      );
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'not now');
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

/**
 * Starts the receiver; resolves to {url(p), requests(), events(), answer(status), stop()}.
 * `requests()` are the logged requests, `events()` every event of every request with the
 * request it came in (`{event, request}`).
 */
async function startReceiver() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-receiver-'));
  const log = path.join(dir, 'requests.jsonl');
  const control = path.join(dir, 'answer');
  fs.writeFileSync(log, '');
  const child = spawn(process.execPath, ['-e', `(${receiverMain.toString()})()`, log, control], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A test file that crashes must not leave the receiver behind.
  const kill = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', kill);
  let output = '';
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the receiver did not start: ${output}`)), 15_000);
    const keep = (chunk) => {
      output += chunk.toString();
      const m = output.match(/listening (\d+)/);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`the receiver exited (${code}): ${output}`));
    });
  });
  return {
    url: (p) => `http://127.0.0.1:${port}${p}`,
    requests() {
      return fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line));
    },
    events() {
      return this.requests().flatMap((request) => JSON.parse(request.body).map((event) => ({ event, request })));
    },
    /** From now on, answers this status (200 removes the control file). */
    answer(status) {
      if (status === 200) fs.rmSync(control, { force: true });
      else fs.writeFileSync(control, String(status));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(kill, 5_000);
        await exited;
        clearTimeout(t);
      }
      process.removeListener('exit', kill);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** X-HubSpot-Signature-v3 as a receiver computes it. */
function signature(secret, method, url, body, timestamp) {
  return crypto.createHmac('sha256', secret).update(`${method}${url}${body}${timestamp}`).digest('base64');
}

module.exports = { startReceiver, signature };
