'use strict';
// The same round trip on jsforce's default API version (50.0) and on 62.0, plus the older
// versions where jsforce stops using sObject Collections (below 42.0) and where an upsert that
// updates answers 204 (below 46.0).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useFake } = require('./lib/fake');

const fake = useFake();

for (const [label, version] of [['jsforce default (50.0)', undefined], ['62.0', '62.0']]) {
  test(`round trip on ${label}`, async () => {
    const v = version ?? '50.0';
    await fake.control('POST', '/_fake/fields', { object: 'Contact', name: 'Ext__c', type: 'string', externalId: true, unique: true });
    await fake.load('Contact', Array.from({ length: 2001 }, (_, i) => ({ LastName: `P${i}` })));
    const conn = await fake.login(version ? { version } : {});
    assert.equal(conn.version, v);

    const one = await conn.sobject('Contact').create({ LastName: 'Single', Ext__c: 'e-0' });
    const rec = await conn.sobject('Contact').retrieve(one.id);
    assert.equal(rec.attributes.url, `/services/data/v${v}/sobjects/Contact/${one.id}`);
    const many = await conn.sobject('Contact').create([{ LastName: 'M1' }, { LastName: 'M2' }]);
    assert.ok(many.every((r) => r.success));
    const ups = await conn.sobject('Contact').upsert(
      [{ Ext__c: 'e-0', Title: 'Updated' }, { Ext__c: 'e-1', LastName: 'Inserted' }], 'Ext__c');
    assert.deepEqual(ups.map((r) => [r.success, r.created]), [[true, false], [true, true]]);
    assert.equal(ups[0].id, one.id);

    const page = await conn.query('SELECT Id FROM Contact');
    assert.equal(page.totalSize, 2001 + 4);
    const raw = await conn.request(`/query?q=${encodeURIComponent('SELECT Id FROM Contact')}`);
    assert.match(raw.nextRecordsUrl, new RegExp(`^/services/data/v${v.replace('.', '\\.')}/query/01g`));
    const all = await conn.query('SELECT Id FROM Contact', { autoFetch: true, maxFetch: 5000 });
    assert.equal(all.records.length, 2005);
    const describe = await conn.describe('Contact');
    assert.equal(describe.urls.describe, `/services/data/v${v}/sobjects/Contact/describe`);

    const paths = (await fake.requests()).filter((r) => r.path.startsWith('/services/data/')).map((r) => r.path);
    assert.ok(paths.every((p) => p.startsWith(`/services/data/v${v}/`)), paths.join('\n'));
    assert.ok(paths.includes(`/services/data/v${v}/composite/sobjects`));
    assert.ok(paths.includes(`/services/data/v${v}/composite/sobjects/Contact/Ext__c`));
  });
}

test('below 46.0 an upsert that updates answers 204, which jsforce reports as a bare success', async () => {
  await fake.control('POST', '/_fake/fields', { object: 'Contact', name: 'Ext__c', type: 'string', externalId: true, unique: true });
  const conn = await fake.login({ version: '45.0' });
  const created = await conn.sobject('Contact').upsert({ Ext__c: 'x-1', LastName: 'Old' }, 'Ext__c');
  assert.deepEqual(Object.keys(created).sort(), ['errors', 'id', 'success'], 'no "created" before 46.0');
  const updated = await conn.sobject('Contact').upsert({ Ext__c: 'x-1', LastName: 'New' }, 'Ext__c');
  assert.deepEqual(updated, { success: true, errors: [] });
  // Arrays are sent one record at a time: collection upsert needs 46.0.
  const both = await conn.sobject('Contact').upsert(
    [{ Ext__c: 'x-1', LastName: 'Newer' }, { Ext__c: 'x-2', LastName: 'Fresh' }], 'Ext__c');
  assert.deepEqual(both.map((r) => r.success), [true, true]);
  const statuses = (await fake.requests('/Ext__c/')).map((r) => r.status).sort();
  assert.deepEqual(statuses, [201, 201, 204, 204]);
  const rows = await conn.query('SELECT LastName FROM Contact ORDER BY Ext__c');
  assert.deepEqual(rows.records.map((r) => r.LastName), ['Newer', 'Fresh']);
});

test('below 42.0 jsforce sends arrays as single-record calls, and the fake has no collections', async () => {
  const conn = await fake.login({ version: '41.0' });
  const res = await conn.sobject('Contact').create([{ LastName: 'A' }, { FirstName: 'no last name' }]);
  assert.equal(res[0].success, true);
  assert.equal(res[1].success, false);
  assert.equal(res[1].errors[0].errorCode, 'REQUIRED_FIELD_MISSING', 'a thrown single-record error, turned into data by jsforce');
  const posts = (await fake.requests()).filter((r) => r.method === 'POST' && r.path.startsWith('/services/data/'));
  assert.deepEqual(posts.map((r) => r.path), ['/services/data/v41.0/sobjects/Contact', '/services/data/v41.0/sobjects/Contact']);
  await assert.rejects(conn.request({ method: 'POST', url: '/composite/sobjects', body: '{"records":[]}',
    headers: { 'content-type': 'application/json' } }), { errorCode: 'NOT_FOUND' });
});
