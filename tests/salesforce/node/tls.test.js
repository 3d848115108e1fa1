'use strict';
// jsforce over the fake's TLS listener. jsforce 3 (node-fetch on node's https) has no option for
// a CA of its own; it honours NODE_EXTRA_CA_CERTS, which node reads only at start-up, so the
// client runs in a child process started with it.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { useFake } = require('./lib/fake');

const fake = useFake();
const PROBE = path.join(__dirname, 'lib', 'tls-probe.js');

function probe(extraCa) {
  const env = { ...process.env, FAKE_HTTP: fake.http, FAKE_HTTPS: fake.https };
  delete env.NODE_EXTRA_CA_CERTS;
  if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
  return new Promise((resolve) => {
    execFile(process.execPath, [PROBE], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop();
      resolve({ exit: err ? err.code : 0, out: line ? JSON.parse(line) : null, stderr });
    });
  });
}

test('with NODE_EXTRA_CA_CERTS naming the fake CA, jsforce works over https', async () => {
  const { exit, out, stderr } = await probe(fake.ca);
  assert.equal(exit, 0, JSON.stringify(out) + stderr);
  assert.equal(out.instanceUrl, fake.https);
  assert.equal(out.username, 'admin@example.com');
  assert.deepEqual(out.created, [true, true]);
  assert.equal(out.count, 2);
  assert.equal(out.refreshed, 1);
  assert.deepEqual(out.names, ['Tls1', 'Tls2']);
  assert.equal(out.limitInfo.apiUsage.limit, 15000);

  const calls = (await fake.requests()).filter((r) => !r.path.startsWith('/_fake'));
  assert.ok(calls.length >= 6);
  assert.ok(calls.every((r) => r.listener === 'https'), JSON.stringify(calls.map((r) => [r.path, r.listener])));
  assert.deepEqual(calls.filter((r) => r.path === '/services/oauth2/token').map((r) => r.status), [200, 200]);
});

test('without the CA the TLS handshake is refused: the certificate is really checked', async () => {
  const { exit, out } = await probe(null);
  assert.equal(exit, 3);
  assert.equal(out.error.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assert.match(out.error.message, /unable to verify the first certificate/);
  const calls = (await fake.requests()).filter((r) => !r.path.startsWith('/_fake'));
  assert.deepEqual(calls, [], 'no request got through');
});
