'use strict';
// Merging records and erasing a contact for good, as the client's contacts basicApi sends them.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');

let kontor;
let client;

before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('merge'));
});
after(async () => {
  await kontor?.stop();
});

describe('merge and gdpr-delete', () => {
  it('merges two contacts; the old id leads to the primary', async () => {
    const api = client.crm.contacts.basicApi;
    const a = await api.create({ properties: { email: 'grace@example.com', firstname: 'Grace' } });
    const b = await api.create({ properties: { email: 'g.hopper@example.com', lastname: 'Hopper' } });
    const merged = await api.merge({ primaryObjectId: a.id, objectIdToMerge: b.id });
    assert.equal(merged.id, a.id);
    const read = await api.getById(b.id, ['firstname', 'lastname', 'hs_merged_object_ids']);
    assert.equal(read.id, a.id);
    assert.equal(read.properties.lastname, 'Hopper');
    assert.equal(read.properties.hs_merged_object_ids, b.id);
    await assert.rejects(api.merge({ primaryObjectId: a.id, objectIdToMerge: a.id }), (e) => e.code === 400);
  });

  it('erases a contact by e-mail and blocks the address', async () => {
    const api = client.crm.contacts.basicApi;
    const c = await api.create({ properties: { email: 'forget.me@example.com' } });
    await api.purge({ objectId: 'forget.me@example.com', idProperty: 'email' });
    await assert.rejects(api.getById(c.id), (e) => e.code === 404);
    await assert.rejects(
      api.create({ properties: { email: 'Forget.Me@example.com' } }),
      (e) => e.code === 400 && /GDPR/.test(e.body.message),
    );
  });
});
