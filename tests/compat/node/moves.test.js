'use strict';
// An account moved to another region while the official client writes to it: every write the
// client saw succeed is there afterwards with the same id, and a refusal during the move's
// freeze is an ApiException with code 477, Retry-After and HubSpot's error body.

const { it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith } = require('./lib/assertions');

let kontor;
before(async () => {
  kontor = await startKontor();
});
after(async () => {
  await kontor?.stop();
});

it('writes during a move are kept, with their ids', async () => {
  const { id, client } = await kontor.account('moving');
  const acked = [];
  const refused = [];
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      const email = `${unique('mv')}@example.com`;
      try {
        const made = await client.crm.contacts.basicApi.create({ properties: { email } });
        acked.push([made.id, email]);
      } catch (e) {
        assert.equal(e.code, 477, `unexpected ${e.code}: ${JSON.stringify(e.body)}`);
        refused.push(e);
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  await kontor.cli('migration', 'run', '--account', id, '--to', 'eu');
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await writer;

  assert.ok(acked.length > 10, `${acked.length} writes`);
  for (const e of refused) {
    assert.ok(Number(e.headers['retry-after']) > 0, JSON.stringify(e.headers));
    assert.equal(e.body.category, 'MIGRATION_IN_PROGRESS');
  }
  for (const [recordId, email] of acked) {
    const got = await client.crm.contacts.basicApi.getById(recordId, ['email']);
    assert.equal(got.properties.email, email);
  }
  assert.match(await kontor.cli('migration', 'list', '--account', id), /\teu\tdone\t/);
});

it('a frozen account answers 477 with Retry-After', async () => {
  const { id, client } = await kontor.account('frozen');
  await kontor.cli('admin', 'account', 'set-state', '--account', id, '--state', 'migrating');
  try {
    const err = await rejectsWith(client.crm.contacts.basicApi.getPage(1), 477);
    assert.ok(Number(err.headers['retry-after']) > 0);
    assert.equal(err.body.category, 'MIGRATION_IN_PROGRESS');
  } finally {
    await kontor.cli('admin', 'account', 'set-state', '--account', id, '--state', 'active');
  }
  await client.crm.contacts.basicApi.getPage(1);
});
