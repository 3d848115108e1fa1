'use strict';
// Settings → Data Management → Backup with an SMTP server configured (KONTOR_SMTP_URL): the
// "Your backup is ready" e-mail goes to a real SMTP server process (aiosmtpd, delivering into
// a maildir), not to the outbox folder, and its link (on KONTOR_PUBLIC_URL) gives the archive.
//
// Needs Python's aiosmtpd: `python3 -m pip install aiosmtpd` (Debian: `apt-get install python3-aiosmtpd`).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startKontor, unique, sleep, waitForText } = require('./lib/kontor');
const { browserTest, signIn, assertHeading } = require('./lib/browser');

const STARTUP_TIMEOUT_MS = 30_000;

let smtp;
let kontor;

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

/** Resolves to the server's first line (the 220 greeting) once the port accepts connections. */
function greeting(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('no greeting')));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\n')) {
        socket.end('QUIT\r\n');
        resolve(data.split('\n')[0].trim());
      }
    });
    socket.on('error', reject);
  });
}

/** Fails with how to install aiosmtpd when `python3 -m aiosmtpd` does not run. */
function checkAiosmtpd() {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-m', 'aiosmtpd', '--version'], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(
          new Error(
            'this test needs a real SMTP server, `python3 -m aiosmtpd`, which does not run here ' +
              `(${(stderr || err.message).trim()}). Install it with \`python3 -m pip install aiosmtpd\` ` +
              '(or `apt-get install python3-aiosmtpd` on Debian).',
          ),
        );
      } else resolve(stdout.trim());
    });
  });
}

/**
 * Starts `python3 -m aiosmtpd` on a free port of 127.0.0.1, delivering into a new maildir;
 * waits for its greeting. Returns {port, maildir, log(), messages(), stop()}.
 */
async function startSmtp() {
  await checkAiosmtpd();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-smtp-'));
  // Maildir creates new/, cur/ and tmp/ only in a folder that does not exist yet.
  const maildir = path.join(dir, 'maildir');
  const port = await freePort();
  const child = spawn(
    'python3',
    ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (chunk) => {
    log += chunk.toString();
    if (log.length > 100_000) log = log.slice(-50_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  // A test file that crashes must not leave the SMTP server behind.
  const onExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.on('exit', onExit);

  const server = {
    port,
    maildir,
    log: () => log,
    async stop() {
      process.off('exit', onExit);
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exitPromise;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
    /** The delivered messages (new/ and cur/), decoded: [{file, to, rcptTo, subject, body}]. */
    async messages() {
      const files = ['new', 'cur'].flatMap((sub) => {
        const d = path.join(maildir, sub);
        return fs.existsSync(d) ? fs.readdirSync(d).map((f) => path.join(d, f)) : [];
      });
      if (files.length === 0) return [];
      const out = await new Promise((resolve, reject) => {
        execFile(
          'python3',
          [
            '-c',
            'import email, json, sys\n' +
              'from email import policy\n' +
              'out = []\n' +
              'for f in sys.argv[1:]:\n' +
              '    m = email.message_from_binary_file(open(f, "rb"), policy=policy.default)\n' +
              '    out.append({"file": f, "to": str(m["To"]), "rcptTo": str(m["X-RcptTo"]), "subject": str(m["Subject"]),\n' +
              '                "body": m.get_body(("plain",)).get_content()})\n' +
              'print(json.dumps(out))',
            ...files,
          ],
          { timeout: 30_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`reading the maildir: ${stderr || err.message}`)) : resolve(stdout)),
        );
      });
      return JSON.parse(out);
    },
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await server.stop();
      throw new Error(`aiosmtpd exited while starting (${JSON.stringify(exited)}):\n${log}`);
    }
    try {
      const line = await greeting(port);
      if (!line.startsWith('220')) throw new Error(`unexpected greeting ${JSON.stringify(line)}`);
      return server;
    } catch (e) {
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`aiosmtpd did not accept connections on port ${port} within ${STARTUP_TIMEOUT_MS} ms (${e.message}):\n${log}`);
      }
    }
    await sleep(100);
  }
}

before(async () => {
  smtp = await startSmtp();
  try {
    kontor = await startKontor({
      env: ({ port }) => ({
        KONTOR_SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
        // Not the address the server listens on, so the link shows it comes from here.
        KONTOR_PUBLIC_URL: `http://localhost:${port}/`,
      }),
    });
  } catch (e) {
    await smtp.stop();
    smtp = null;
    throw e;
  }
});
after(async () => {
  try {
    await kontor?.stop();
  } finally {
    await smtp?.stop();
  }
});

browserTest(
  test,
  () => kontor,
  'with an SMTP server configured, the backup e-mail is delivered over SMTP and not to the outbox',
  async ({ page }) => {
    const account = await kontor.account();
    const user = await kontor.user(account.id, { role: 'super-admin' });
    const token = await kontor.token(account.id);
    const email = `${unique('ada')}@example.com`;
    await kontor.contact(token, { email, firstname: 'Ada', lastname: 'Lovelace' });
    assert.match(kontor.log, new RegExp(`smtp://127\\.0\\.0\\.1:${smtp.port}`), 'the server says it sends mail over SMTP');

    // Create a backup through the console.
    await signIn(page, kontor, user);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Backup', exact: true }).click();
    await page.waitForURL(kontor.url('/app/settings/backups'));
    await assertHeading(page, 'Backup');
    await page.getByRole('link', { name: 'Create backup' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create a backup?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/\/app\/settings\/backups\?done=requested/);
    const rows = page.locator('table.backups tbody tr');
    assert.equal(await rows.count(), 1);
    const id = (await rows.first().getAttribute('id')).slice('backup-'.length);
    assert.match(id, /^\d+$/);
    await waitForText(page.locator(`#backup-${id} td.status`), /Completed/);

    // The e-mail arrives at the SMTP server.
    let messages = [];
    const deadline = Date.now() + 15_000;
    while (messages.length === 0) {
      messages = await smtp.messages();
      if (messages.length === 0 && Date.now() > deadline) {
        throw new Error(`no message reached the SMTP server within 15 s\n--- aiosmtpd ---\n${smtp.log()}`);
      }
      if (messages.length === 0) await sleep(200);
    }
    // Nothing else follows (a second delivery of the same notice would show up here).
    await sleep(1_000);
    messages = await smtp.messages();
    assert.equal(messages.length, 1, `exactly one message: ${JSON.stringify(messages, null, 2)}`);
    const [mail] = messages;
    assert.equal(mail.to, user.email);
    assert.equal(mail.rcptTo, user.email, 'the SMTP envelope goes to the admin');
    assert.match(mail.subject, /backup .* is ready/i);
    assert.ok(mail.subject.includes(account.name), `subject ${JSON.stringify(mail.subject)}`);
    assert.match(mail.body, /includes the values of sensitive properties/);
    const link = mail.body.match(/https?:\/\/\S+\/kontor\/v1\/backups\/(\d+)\/download\?\S*signature=\S+/);
    assert.ok(link, `no download link in:\n${mail.body}`);
    assert.equal(link[1], id);
    const publicBase = kontor.baseUrl.replace('127.0.0.1', 'localhost');
    assert.ok(link[0].startsWith(`${publicBase}/kontor/v1/`), `the link is on KONTOR_PUBLIC_URL: ${link[0]}`);

    // The link gives the zip.
    const res = await fetch(link[0]);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/zip');
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(bytes.subarray(0, 2).toString('latin1'), 'PK');

    // Nothing went to the outbox.
    const outbox = path.join(kontor.dataDir, 'outbox');
    const eml = fs.existsSync(outbox) ? fs.readdirSync(outbox).filter((f) => f.endsWith('.eml')) : [];
    assert.deepEqual(eml, [], 'no .eml in the outbox');
    assert.deepEqual(await kontor.mails(), []);
  },
);
