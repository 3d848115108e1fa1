'use strict';
// sobject(...).updated(start, end) and .deleted(start, end) through jsforce, on the fake's frozen
// clock: minute-rounded windows, latestDateCovered as the next start, earliestDateAvailable after
// the delete log is purged, and the look-back limits.

const { test, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { useFake } = require('./lib/fake');

const fake = useFake();
const T0 = '2026-03-02T10:00:00Z';

const at = (iso) => new Date(iso);

beforeEach(async () => {
  await fake.control('POST', '/_fake/clock', { now: T0 });
  // Tokens must outlive the clock jumps below.
  await fake.control('POST', '/_fake/config', { access_token_ttl: 40 * 86400 });
});

async function advance(seconds) {
  await fake.control('POST', '/_fake/clock', { advance: seconds });
}

test('updated(): windows cover start <= SystemModstamp < latestDateCovered, minute-rounded', async () => {
  const conn = await fake.login();
  const contacts = conn.sobject('Contact');
  await advance(10);                                                  // 10:00:10
  const a = (await contacts.create({ LastName: 'A' })).id;
  await advance(60);                                                  // 10:01:10
  const b = (await contacts.create({ LastName: 'B' })).id;
  await advance(60);                                                  // 10:02:10
  await contacts.update({ Id: a, Title: 'Boss' });

  const first = await contacts.updated(at('2026-03-02T10:00:00Z'), at('2026-03-02T11:00:00Z'));
  // A moved to 10:02:10, past the current whole minute: it belongs to the next window.
  assert.deepEqual(first, { ids: [b], latestDateCovered: '2026-03-02T10:02:00.000+0000' });
  const [req] = await fake.requests('/sobjects/Contact/updated');
  assert.equal(req.query, 'start=2026-03-02T10%3A00%3A00%2B00%3A00&end=2026-03-02T11%3A00%3A00%2B00%3A00');

  await advance(60);                                                  // 10:03:10
  const next = await contacts.updated(first.latestDateCovered, at('2026-03-02T11:00:00Z'));
  assert.deepEqual(next, { ids: [a], latestDateCovered: '2026-03-02T10:03:00.000+0000' });

  // Seconds are ignored: a start of 10:01:59 means 10:01:00, so B (10:01:10) is in.
  const rounded = await contacts.updated('2026-03-02T10:01:59Z', '2026-03-02T10:02:30Z');
  assert.deepEqual(rounded, { ids: [b], latestDateCovered: '2026-03-02T10:02:00.000+0000' });
});

test('updated() sees rows loaded with older timestamps, and never lists deleted rows', async () => {
  const [old, older, gone] = await fake.load('Account', [
    { Name: 'Old', SystemModstamp: '2026-02-28T08:00:00Z' },
    { Name: 'Older', CreatedDate: '2026-02-20T08:00:00Z' },
    { Name: 'Gone', SystemModstamp: '2026-02-28T09:00:00Z' },
  ]);
  const conn = await fake.login();
  await conn.sobject('Account').destroy(gone);                        // SystemModstamp 10:00:00
  await advance(120);
  const res = await conn.sobject('Account').updated('2026-02-27T00:00:00Z', '2026-03-02T11:00:00Z');
  assert.deepEqual(res, { ids: [old], latestDateCovered: '2026-03-02T10:02:00.000+0000' });
  const early = await conn.sobject('Account').updated('2026-02-27T00:00:00Z', '2026-03-02T09:00:00Z');
  assert.deepEqual(early, { ids: [old], latestDateCovered: '2026-03-02T09:00:00.000+0000' }, 'end is before now');
  const wide = await conn.sobject('Account').updated('2026-02-10T00:00:00Z', '2026-03-02T09:00:00Z');
  assert.deepEqual(wide.ids.sort(), [old, older].sort());
});

test('deleted(): deletes with their deletedDate, earliestDateAvailable, latestDateCovered', async () => {
  const [keep, drop1, drop2] = await fake.load('Lead', [
    { LastName: 'Keep', Company: 'K' }, { LastName: 'Drop1', Company: 'D' }, { LastName: 'Drop2', Company: 'D' },
  ]);
  const conn = await fake.login();
  await advance(30);                                                  // 10:00:30
  await conn.sobject('Lead').destroy(drop1);
  await advance(75);                                                  // 10:01:45
  await conn.sobject('Lead').destroy([drop2]);
  await advance(60);                                                  // 10:02:45

  const res = await conn.sobject('Lead').deleted(at('2026-03-02T10:00:00Z'), at('2026-03-02T10:30:00Z'));
  assert.deepEqual(res, {
    deletedRecords: [
      { id: drop1, deletedDate: '2026-03-02T10:00:30.000+0000' },
      { id: drop2, deletedDate: '2026-03-02T10:01:45.000+0000' },
    ],
    earliestDateAvailable: '2026-02-15T10:02:00.000+0000',
    latestDateCovered: '2026-03-02T10:02:00.000+0000',
  });
  const later = await conn.sobject('Lead').deleted('2026-03-02T10:01:00Z', '2026-03-02T10:30:00Z');
  assert.deepEqual(later.deletedRecords.map((d) => d.id), [drop2]);
  const live = await conn.query('SELECT Id FROM Lead');
  assert.deepEqual(live.records.map((r) => r.Id), [keep]);
});

test('after the delete log is purged, earliestDateAvailable moves past the caller\'s start', async () => {
  const [first, second] = await fake.load('Contact', [{ LastName: 'First' }, { LastName: 'Second' }]);
  const conn = await fake.login();
  await advance(20);                                                  // 10:00:20
  await conn.sobject('Contact').destroy(first);
  await advance(120);                                                 // 10:02:20
  await conn.sobject('Contact').destroy(second);
  await advance(120);                                                 // 10:04:20

  await fake.control('POST', '/_fake/purge-deleted-log', { before: '2026-03-02T10:01:00Z', object: 'Contact' });
  const res = await conn.sobject('Contact').deleted('2026-03-02T10:00:00Z', '2026-03-02T10:30:00Z');
  assert.equal(res.earliestDateAvailable, '2026-03-02T10:01:00.000+0000');
  assert.ok(res.earliestDateAvailable > '2026-03-02T10:00:00.000+0000', 'a sync starting at 10:00 missed deletes');
  assert.deepEqual(res.deletedRecords, [{ id: second, deletedDate: '2026-03-02T10:02:20.000+0000' }]);
  // The purged row is gone from the recycle bin as well.
  const bin = await conn.query('SELECT Id FROM Contact', { scanAll: true });
  assert.deepEqual(bin.records.map((r) => r.Id), [second]);
  // Other objects keep the 15-day floor.
  const leads = await conn.sobject('Lead').deleted('2026-03-02T10:00:00Z', '2026-03-02T10:30:00Z');
  assert.equal(leads.earliestDateAvailable, '2026-02-15T10:04:00.000+0000');
});

test('windows too far back, or start not before end, are INVALID_REPLICATION_DATE', async () => {
  const conn = await fake.login();
  const contacts = conn.sobject('Contact');
  await assert.rejects(contacts.updated('2026-01-30T00:00:00Z', '2026-03-01T00:00:00Z'), {
    errorCode: 'INVALID_REPLICATION_DATE',
  });
  await assert.rejects(contacts.deleted('2026-02-14T00:00:00Z', '2026-03-01T00:00:00Z'), (err) => {
    assert.equal(err.errorCode, 'INVALID_REPLICATION_DATE');
    assert.match(err.message, /15 days/);
    return true;
  });
  // 29 days back is fine for updated(), 14 for deleted().
  assert.deepEqual((await contacts.updated('2026-02-02T00:00:00Z', '2026-03-01T00:00:00Z')).ids, []);
  assert.deepEqual((await contacts.deleted('2026-02-16T00:00:00Z', '2026-03-01T00:00:00Z')).deletedRecords, []);
  // Same minute once rounded.
  await assert.rejects(contacts.updated('2026-03-02T09:30:10Z', '2026-03-02T09:30:50Z'), {
    errorCode: 'INVALID_REPLICATION_DATE',
  });
});

test('more ids than the limit is EXCEEDED_ID_LIMIT', async () => {
  await fake.load('Contact', [{ LastName: 'a' }, { LastName: 'b' }, { LastName: 'c' }]);
  await fake.control('POST', '/_fake/config', { id_limit: 2 });
  const conn = await fake.login();
  await advance(60);
  await assert.rejects(conn.sobject('Contact').updated('2026-03-02T09:00:00Z', '2026-03-02T11:00:00Z'), {
    errorCode: 'EXCEEDED_ID_LIMIT',
  });
  const half = await conn.sobject('Contact').updated('2026-03-02T09:00:00Z', '2026-03-02T09:30:00Z');
  assert.deepEqual(half.ids, []);
});
