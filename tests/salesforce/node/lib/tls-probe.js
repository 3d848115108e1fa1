'use strict';
// Run as a child process by tls.test.js, with NODE_EXTRA_CA_CERTS naming the fake's CA (or not):
// node reads that variable only at start-up. Drives jsforce against the TLS listener and prints
// one JSON line with what it saw, or {"error": ...}.

const { FakeSalesforce } = require('./fake');

async function main() {
  const fake = new FakeSalesforce();
  fake.http = process.env.FAKE_HTTP;           // control API, plain HTTP
  const conn = await fake.login({ base: process.env.FAKE_HTTPS });
  const identity = await conn.identity();
  const created = await conn.sobject('Contact').create([{ LastName: 'Tls1' }, { LastName: 'Tls2' }]);
  const count = await conn.query('SELECT COUNT() FROM Contact');
  // An expired token is refreshed over TLS too (a password login logs in again).
  await fake.control('POST', '/_fake/clock', { now: new Date().toISOString() });
  await fake.control('POST', '/_fake/clock', { advance: 3 * 3600 });
  let refreshed = 0;
  conn.on('refresh', () => refreshed++);
  const after = await conn.query('SELECT LastName FROM Contact ORDER BY LastName');
  return {
    instanceUrl: conn.instanceUrl, username: identity.username,
    created: created.map((r) => r.success), count: count.totalSize,
    refreshed, names: after.records.map((r) => r.LastName), limitInfo: conn.limitInfo,
  };
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    // node-fetch puts the TLS error's code on the error; fetch (undici) on its cause.
    const code = err.code ?? err.cause?.code;
    const message = [err.message, err.cause?.message].filter(Boolean).join(': ');
    console.log(JSON.stringify({ error: { name: err.name, code, message } }));
    process.exitCode = 3;
  },
);
