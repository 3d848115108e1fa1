'use strict';
// SOQL through jsforce: paging past 2,000 rows (autoFetch, maxFetch, queryMore), the batch-size
// header, scanAll (queryAll) with deleted rows, COUNT(), jsforce's SOQL builder, and the errors
// Salesforce gives for bad queries.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useFake, jsforce } = require('./lib/fake');

const fake = useFake();
const TOTAL = 2500;

/** 2,500 contacts, L0000..L2499, plus `deleted` more that sit in the recycle bin. */
async function seed({ deleted = 0 } = {}) {
  const rows = Array.from({ length: TOTAL }, (_, i) => ({
    LastName: `L${String(i).padStart(4, '0')}`, Email: `c${i}@example.com`,
  }));
  for (let i = 0; i < deleted; i++) rows.push({ LastName: `Gone${i}`, IsDeleted: true });
  return fake.load('Contact', rows);
}

async function queryCalls() {
  return (await fake.requests()).filter((r) => r.path.includes('/query'));
}

test('one query call answers 2,000 rows, then queryMore(nextRecordsUrl) the rest', async () => {
  const ids = await seed();
  const conn = await fake.login();
  const first = await conn.query('SELECT Id, LastName FROM Contact');
  assert.equal(first.totalSize, TOTAL);
  assert.equal(first.done, false);
  assert.equal(first.records.length, 2000);
  // jsforce rebuilds the URL from the locator; Salesforce's own is host-relative.
  assert.match(first.nextRecordsUrl, new RegExp(`^${fake.http}/services/data/v50\\.0/query/01g\\w{15}-2000$`));
  assert.deepEqual(first.records.slice(0, 2).map((r) => r.LastName), ['L0000', 'L0001']);
  assert.equal(first.records[0].attributes.type, 'Contact');
  assert.equal(first.records[0].attributes.url, `/services/data/v50.0/sobjects/Contact/${ids[0]}`);

  const rest = await conn.queryMore(first.nextRecordsUrl);
  assert.equal(rest.done, true);
  assert.equal(rest.nextRecordsUrl, undefined);
  assert.equal(rest.records.length, TOTAL - 2000);
  assert.deepEqual([...first.records, ...rest.records].map((r) => r.Id), ids);
  assert.deepEqual((await queryCalls()).map((r) => r.path.replace(/01g\w+/, 'LOCATOR')),
    ['/services/data/v50.0/query', '/services/data/v50.0/query/LOCATOR-2000']);
  const raw = await conn.request(`/query?q=${encodeURIComponent('SELECT Id FROM Contact')}`);
  assert.match(raw.nextRecordsUrl, /^\/services\/data\/v50\.0\/query\/01g\w{15}-2000$/);
});

test('autoFetch follows the locator; maxFetch stops early', async () => {
  const ids = await seed();
  const conn = await fake.login();
  const all = await conn.query('SELECT Id FROM Contact', { autoFetch: true, maxFetch: 10000 });
  assert.equal(all.records.length, TOTAL);
  assert.equal(all.done, true);
  assert.deepEqual(all.records.map((r) => r.Id), ids);

  await fake.control('DELETE', '/_fake/requests');
  const some = await conn.query('SELECT Id FROM Contact ORDER BY LastName DESC', { autoFetch: true, maxFetch: 2100 });
  assert.equal(some.records.length, 2100);
  assert.equal(some.totalSize, TOTAL);
  assert.equal(some.records[0].Id, ids[TOTAL - 1]);
  assert.equal(some.records[2099].Id, ids[TOTAL - 2100]);
  assert.equal((await queryCalls()).length, 2, 'stops after the page that reached maxFetch');

  // The record stream emits every row across pages.
  let streamed = 0;
  await new Promise((resolve, reject) => {
    conn.query('SELECT Id FROM Contact')
      .on('record', () => streamed++)
      .on('end', resolve)
      .on('error', reject)
      .run({ autoFetch: true, maxFetch: 5000 });
  });
  assert.equal(streamed, TOTAL);
});

test('Sforce-Query-Options batchSize sets the page size on every page', async () => {
  await seed();
  const conn = await fake.login();
  await fake.control('DELETE', '/_fake/requests');
  const res = await conn.query('SELECT Id FROM Contact', {
    autoFetch: true, maxFetch: 10000, headers: { 'Sforce-Query-Options': 'batchSize=600' },
  });
  assert.equal(res.records.length, TOTAL);
  const calls = await queryCalls();
  assert.equal(calls.length, 5, '600 + 600 + 600 + 600 + 100');
  assert.deepEqual(calls.slice(1).map((c) => c.path.split('-').pop()), ['600', '1200', '1800', '2400']);
  assert.ok(calls.every((c) => c.headers['Sforce-Query-Options'] === 'batchSize=600'));

  // Below 200 is raised to 200.
  const small = await conn.query('SELECT Id FROM Contact', { headers: { 'Sforce-Query-Options': 'batchSize=10' } });
  assert.equal(small.records.length, 200);
});

test('scanAll (queryAll) returns deleted rows with IsDeleted, and pages under /query/', async () => {
  await seed({ deleted: 3 });
  const conn = await fake.login();
  const [victim] = (await conn.query("SELECT Id FROM Contact WHERE LastName = 'L0007'")).records;
  const destroyed = await conn.sobject('Contact').destroy(victim.Id);
  assert.deepEqual(destroyed, { id: victim.Id, success: true, errors: [] });

  const live = await conn.query('SELECT COUNT() FROM Contact');
  assert.equal(live.totalSize, TOTAL - 1);
  await fake.control('DELETE', '/_fake/requests');
  const all = await conn.query('SELECT Id, LastName, IsDeleted FROM Contact', { scanAll: true, autoFetch: true, maxFetch: 10000 });
  assert.equal(all.totalSize, TOTAL + 3);
  assert.equal(all.records.length, TOTAL + 3);
  const gone = all.records.filter((r) => r.IsDeleted).map((r) => r.LastName).sort();
  assert.deepEqual(gone, ['Gone0', 'Gone1', 'Gone2', 'L0007']);
  // jsforce rebuilds the next page's URL under /query/ even for queryAll.
  const paths = (await queryCalls()).map((c) => c.path.replace(/01g\w+/, 'LOCATOR'));
  assert.deepEqual(paths, ['/services/data/v50.0/queryAll', '/services/data/v50.0/query/LOCATOR-2000']);

  const deletedOnly = await conn.query('SELECT Id FROM Contact WHERE IsDeleted = true', { scanAll: true });
  assert.equal(deletedOnly.totalSize, 4);
  assert.equal((await conn.query('SELECT Id FROM Contact WHERE IsDeleted = true')).totalSize, 0);
});

test('SELECT COUNT() answers totalSize with no records', async () => {
  await seed();
  const conn = await fake.login();
  const res = await conn.query('SELECT COUNT() FROM Contact');
  assert.deepEqual(res, { records: [], totalSize: TOTAL, done: true });
  assert.equal((await conn.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'L24%'")).totalSize, 100);
  assert.equal(await conn.sobject('Contact').count({ Email: 'c42@example.com' }), 1);
});

test("queries built by jsforce's SOQL builder run as written", async () => {
  const before = new Date();
  await seed();
  const conn = await fake.login();
  const q = conn.sobject('Contact')
    .find({
      LastName: { $like: 'L00%' },
      CreatedDate: { $gte: jsforce.SfDate.toDateTimeLiteral(new Date(before.getTime() - 60_000)) },
      Email: { $in: ['c1@example.com', 'c2@example.com', 'c3@example.com', 'c900@example.com'] },
    }, ['Id', 'LastName', 'Email'])
    .sort({ LastName: -1 })
    .limit(2)
    .skip(1);
  assert.match(await q.toSOQL(), /CreatedDate >= \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
  const rows = await q;
  assert.deepEqual(rows.map((r) => r.LastName), ['L0002', 'L0001']);

  const one = await conn.sobject('Contact').findOne({ Email: 'c77@example.com' }, ['LastName']);
  assert.equal(one.LastName, 'L0077');
  const none = await conn.sobject('Contact').find({ CreatedDate: { $lt: jsforce.SfDate.toDateTimeLiteral(new Date(before.getTime() - 86_400_000)) } });
  assert.deepEqual(none, []);
});

test('a malformed query is MALFORMED_QUERY with the caret message', async () => {
  const conn = await fake.login();
  await assert.rejects(conn.query('SELECT Id FROM Contact WHERE'), (err) => {
    assert.equal(err.errorCode, 'MALFORMED_QUERY');
    assert.equal(err.name, 'MALFORMED_QUERY');
    assert.match(err.message, /ERROR at Row:1:Column:\d+/);
    return true;
  });
  await assert.rejects(conn.query('SELECT Id, Account.Name FROM Contact'), { errorCode: 'MALFORMED_QUERY' });
  await assert.rejects(conn.query('SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:7'), { errorCode: 'MALFORMED_QUERY' });
});

test('an unknown field is INVALID_FIELD and an unknown object INVALID_TYPE', async () => {
  const conn = await fake.login();
  await assert.rejects(conn.query('SELECT Id, Nope__c FROM Contact'), (err) => {
    assert.equal(err.errorCode, 'INVALID_FIELD');
    assert.match(err.message, /No such column 'Nope__c' on entity 'Contact'/);
    return true;
  });
  await assert.rejects(conn.query('SELECT Id FROM Widget__c'), (err) => {
    assert.equal(err.errorCode, 'INVALID_TYPE');
    assert.match(err.message, /sObject type 'Widget__c' is not supported/);
    return true;
  });
});

test('an unknown locator is INVALID_QUERY_LOCATOR', async () => {
  const conn = await fake.login();
  await assert.rejects(conn.queryMore('01gFk0000000099AAA-2000'), { errorCode: 'INVALID_QUERY_LOCATOR' });
});
