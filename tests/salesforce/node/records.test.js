'use strict';
// Single-record CRUD and upsert through jsforce, arrays of records (which jsforce sends through
// sObject Collections), and the Sforce-Auto-Assign header with an assignment rule.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useFake } = require('./lib/fake');

const fake = useFake();

async function addExternalId(name = 'Kontor_Id__c', extra = { unique: true }) {
  await fake.control('POST', '/_fake/fields', { object: 'Contact', name, type: 'string', length: 64, externalId: true, ...extra });
}

async function writes() {
  return (await fake.requests()).filter((r) => r.method !== 'GET' && r.path.startsWith('/services/data/'));
}

test('create, retrieve, update and destroy one record', async () => {
  const conn = await fake.login();
  const contacts = conn.sobject('Contact');
  const created = await contacts.create({ FirstName: 'Grace', LastName: 'Hopper', Email: 'grace@example.com' });
  assert.equal(created.success, true);
  assert.deepEqual(created.errors, []);
  assert.match(created.id, /^003\w{15}$/);

  const rec = await contacts.retrieve(created.id);
  assert.equal(rec.Id, created.id);
  assert.equal(rec.Name, 'Grace Hopper');
  assert.equal(rec.IsDeleted, false);
  assert.equal(rec.attributes.type, 'Contact');
  assert.match(rec.CreatedDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$/);
  assert.equal(rec.OwnerId, conn.userInfo.id);

  const updated = await contacts.update({ Id: created.id, LastName: 'Murray Hopper', Email: null });
  assert.deepEqual(updated, { id: created.id, success: true, errors: [] });
  const [patch] = (await writes()).filter((r) => r.method === 'PATCH');
  assert.equal(patch.status, 204);
  const after = await contacts.retrieve(created.id, { fields: ['Name', 'Email'] });
  assert.deepEqual(Object.keys(after), ['attributes', 'Name', 'Email']);
  assert.equal(after.Name, 'Grace Murray Hopper');
  assert.equal(after.Email, null);

  // 15-character ids work in paths too.
  assert.equal((await contacts.retrieve(created.id.slice(0, 15))).Id, created.id);

  assert.deepEqual(await contacts.destroy(created.id), { id: created.id, success: true, errors: [] });
  await assert.rejects(contacts.retrieve(created.id), { errorCode: 'ENTITY_IS_DELETED', name: 'ENTITY_IS_DELETED' });
  await assert.rejects(contacts.update({ Id: created.id, LastName: 'x' }), { errorCode: 'ENTITY_IS_DELETED' });
  await assert.rejects(contacts.destroy(created.id), { errorCode: 'ENTITY_IS_DELETED' });
});

test('a record that fails validation is a thrown error with the fields', async () => {
  const conn = await fake.login();
  await assert.rejects(conn.sobject('Contact').create({ FirstName: 'No last name' }), (err) => {
    assert.equal(err.errorCode, 'REQUIRED_FIELD_MISSING');
    assert.deepEqual(err.data.fields, ['LastName']);
    return true;
  });
  await assert.rejects(conn.sobject('Contact').create({ LastName: 'x', Email: 'not-an-email' }), { errorCode: 'INVALID_EMAIL_ADDRESS' });
  await assert.rejects(conn.sobject('Lead').create({ LastName: 'x', Company: 'c', Status: 'Bogus' }),
    { errorCode: 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST' });
  await assert.rejects(conn.sobject('Contact').create({ LastName: 'x', Shoe_Size__c: 42 }), { errorCode: 'INVALID_FIELD' });
  await assert.rejects(conn.sobject('Contact').create({ LastName: 'x', AccountId: '003000000000000AAA' }),
    { errorCode: 'FIELD_INTEGRITY_EXCEPTION' });
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 0);
});

test('upsert on an external id creates, then updates', async () => {
  await addExternalId();
  const conn = await fake.login();
  const contacts = conn.sobject('Contact');
  const created = await contacts.upsert({ Kontor_Id__c: 'k-1', LastName: 'First' }, 'Kontor_Id__c');
  assert.equal(created.created, true);
  assert.equal(created.success, true);
  assert.match(created.id, /^003/);
  const again = await contacts.upsert({ Kontor_Id__c: 'k-1', LastName: 'Second' }, 'Kontor_Id__c');
  assert.deepEqual(again, { id: created.id, success: true, errors: [], created: false });
  const statuses = (await writes()).map((r) => [r.method, r.path, r.status]);
  assert.deepEqual(statuses, [
    ['PATCH', '/services/data/v50.0/sobjects/Contact/Kontor_Id__c/k-1', 201],
    ['PATCH', '/services/data/v50.0/sobjects/Contact/Kontor_Id__c/k-1', 200],
  ]);
  const rows = await conn.query("SELECT Id, LastName FROM Contact WHERE Kontor_Id__c = 'k-1'");
  assert.deepEqual(rows.records.map((r) => [r.Id, r.LastName]), [[created.id, 'Second']]);
  const byExt = await conn.request('/sobjects/Contact/Kontor_Id__c/k-1');
  assert.equal(byExt.Id, created.id);
});

test('upsert matching several records is a 300 MULTIPLE_CHOICES listing them', async () => {
  await addExternalId('Legacy_Id__c', { unique: false });
  const ids = await fake.load('Contact', [
    { LastName: 'Twin A', Legacy_Id__c: 'dup' }, { LastName: 'Twin B', Legacy_Id__c: 'dup' },
  ]);
  const conn = await fake.login();
  await assert.rejects(conn.sobject('Contact').upsert({ Legacy_Id__c: 'dup', LastName: 'Third' }, 'Legacy_Id__c'), (err) => {
    assert.equal(err.errorCode, 'MULTIPLE_CHOICES');
    assert.deepEqual(err.data, ids.map((id) => `/services/data/v50.0/sobjects/Contact/${id}`));
    return true;
  });
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 2, 'nothing written');
  const [call] = await writes();
  assert.equal(call.status, 300);

  // In a collection upsert the same conflict is a per-record error.
  const results = await conn.sobject('Contact').upsert(
    [{ Legacy_Id__c: 'dup', LastName: 'x' }, { Legacy_Id__c: 'fresh', LastName: 'y' }], 'Legacy_Id__c');
  assert.equal(results[0].success, false);
  assert.equal(results[0].errors[0].statusCode, 'DUPLICATE_EXTERNAL_ID');
  assert.deepEqual([results[1].success, results[1].created], [true, true]);
});

test('an array of records goes in one composite/sobjects call; record errors come back as data', async () => {
  const conn = await fake.login();
  const results = await conn.sobject('Contact').create([
    { LastName: 'Ok' },
    { FirstName: 'Missing' },
    { LastName: 'Bad', Email: 'nope' },
    { LastName: 'Also ok' },
  ]);
  assert.equal(results.length, 4);
  assert.deepEqual(results.map((r) => r.success), [true, false, false, true]);
  assert.deepEqual(results[1].errors, [{
    statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'],
  }]);
  assert.equal(results[2].errors[0].statusCode, 'INVALID_EMAIL_ADDRESS');
  assert.deepEqual(results[2].errors[0].fields, ['Email']);

  const calls = await writes();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].path, '/services/data/v50.0/composite/sobjects');
  assert.equal(calls[0].status, 200);
  const body = JSON.parse(calls[0].body);
  assert.equal(body.allOrNone, false);
  assert.equal(body.records.length, 4);
  assert.deepEqual(body.records[0], { attributes: { type: 'Contact' }, LastName: 'Ok' });

  const names = (await conn.query('SELECT LastName FROM Contact ORDER BY LastName')).records.map((r) => r.LastName);
  assert.deepEqual(names, ['Also ok', 'Ok']);
});

test('update, retrieve and destroy arrays through collections', async () => {
  const ids = await fake.load('Contact', [{ LastName: 'One' }, { LastName: 'Two' }, { LastName: 'Three' }]);
  const conn = await fake.login();
  const contacts = conn.sobject('Contact');
  const updated = await contacts.update([
    { Id: ids[0], Title: 'CEO' }, { Id: ids[1], Email: 'broken' }, { Id: ids[2], Title: 'CTO' },
  ]);
  assert.deepEqual(updated.map((r) => [r.id, r.success]), [[ids[0], true], [ids[1], false], [ids[2], true]]);
  assert.equal(updated[1].errors[0].statusCode, 'INVALID_EMAIL_ADDRESS');

  await contacts.destroy(ids[2]);
  const fetched = await contacts.retrieve([ids[0], ids[2], ids[1]], { fields: ['LastName', 'Title'] });
  assert.equal(fetched.length, 3);
  assert.deepEqual([fetched[0].LastName, fetched[0].Title], ['One', 'CEO']);
  assert.equal(fetched[1], null, 'a deleted record comes back as null');
  assert.deepEqual([fetched[2].LastName, fetched[2].Title], ['Two', null]);

  const destroyed = await contacts.destroy([ids[0], ids[2]]);
  assert.deepEqual(destroyed[0], { id: ids[0], success: true, errors: [] });
  assert.equal(destroyed[1].success, false);
  assert.equal(destroyed[1].errors[0].statusCode, 'ENTITY_IS_DELETED');
  const del = (await writes()).filter((r) => r.method === 'DELETE');
  assert.deepEqual(del.map((r) => [r.path, r.query]), [
    [`/services/data/v50.0/sobjects/Contact/${ids[2]}`, ''],
    ['/services/data/v50.0/composite/sobjects', `ids=${ids[0]},${ids[2]}`],
  ]);
});

test('find("*") selects every field; find().update() and find().destroy() write what they found', async () => {
  await fake.load('Contact', [
    { LastName: 'Keep', Department: 'Ops' }, { LastName: 'Promote', Department: 'Sales' },
    { LastName: 'Promote too', Department: 'Sales' }, { LastName: 'Drop', Department: 'Temp' },
  ]);
  const conn = await fake.login();
  const contacts = conn.sobject('Contact');
  const [full] = await contacts.find({ LastName: 'Keep' }, '*');
  const described = (await conn.describe$('Contact')).fields.map((f) => f.name);
  assert.deepEqual(Object.keys(full).filter((k) => k !== 'attributes'), described);

  const promoted = await contacts.find({ Department: 'Sales' }).update({ Title: 'Lead' });
  assert.deepEqual(promoted.map((r) => r.success), [true, true]);
  const dropped = await contacts.find({ Department: 'Temp' }).destroy();
  assert.deepEqual(dropped.map((r) => r.success), [true]);
  const rows = await conn.query('SELECT LastName, Title FROM Contact ORDER BY LastName');
  assert.deepEqual(rows.records.map((r) => [r.LastName, r.Title]),
    [['Keep', null], ['Promote', 'Lead'], ['Promote too', 'Lead']]);
  const collectionCalls = (await writes()).map((r) => [r.method, r.path]);
  assert.deepEqual(collectionCalls, [
    ['PATCH', '/services/data/v50.0/composite/sobjects'],
    ['DELETE', '/services/data/v50.0/composite/sobjects'],
  ]);
});

test('allOrNone: one bad record rolls back the others', async () => {
  const conn = await fake.login();
  const results = await conn.sobject('Contact').create(
    [{ LastName: 'Good' }, { LastName: 'x'.repeat(81) }, { LastName: 'Fine' }], { allOrNone: true });
  assert.deepEqual(results.map((r) => r.success), [false, false, false]);
  assert.equal(results[0].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
  assert.equal(results[1].errors[0].statusCode, 'STRING_TOO_LONG');
  assert.equal(results[2].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
  assert.equal(JSON.parse((await writes())[0].body).allOrNone, true);
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 0);

  const ids = await fake.load('Contact', [{ LastName: 'A' }, { LastName: 'B' }]);
  const upd = await conn.sobject('Contact').update(
    [{ Id: ids[0], LastName: 'A2' }, { Id: ids[1], LastName: null }], { allOrNone: true });
  assert.deepEqual(upd.map((r) => r.errors[0].statusCode), ['ALL_OR_NONE_OPERATION_ROLLED_BACK', 'REQUIRED_FIELD_MISSING']);
  const names = (await conn.query('SELECT LastName FROM Contact ORDER BY LastName')).records.map((r) => r.LastName);
  assert.deepEqual(names, ['A', 'B']);
});

test('more than 200 records in one call is refused with EXCEEDED_ID_LIMIT', async () => {
  const conn = await fake.login();
  const rows = Array.from({ length: 201 }, (_, i) => ({ LastName: `R${i}` }));
  await assert.rejects(conn.sobject('Contact').create(rows), (err) => {
    assert.equal(err.errorCode, 'EXCEEDED_ID_LIMIT');
    assert.match(err.message, /cannot submit more than 200 records/);
    return true;
  });
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 0);

  // jsforce's allowRecursive splits the batch into 200 + 1.
  await fake.control('DELETE', '/_fake/requests');
  const results = await conn.sobject('Contact').create(rows, { allowRecursive: true });
  assert.equal(results.filter((r) => r.success).length, 201);
  assert.deepEqual((await writes()).map((r) => JSON.parse(r.body).records.length), [200, 1]);
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 201);
});

test('validation failures set up through the control API: thrown for one record, data in arrays', async () => {
  await fake.control('POST', '/_fake/record-failures', {
    object: 'Contact', field: 'Department', equals: 'Blocked', statusCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
    message: 'Department is blocked',
  });
  const conn = await fake.login();
  await assert.rejects(conn.sobject('Contact').create({ LastName: 'x', Department: 'Blocked' }), {
    errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', message: 'Department is blocked',
  });
  const res = await conn.sobject('Contact').create([{ LastName: 'y', Department: 'Blocked' }, { LastName: 'z' }]);
  assert.deepEqual(res[0].errors, [{ statusCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', message: 'Department is blocked', fields: ['Department'] }]);
  assert.equal(res[1].success, true);
});

test('Sforce-Auto-Assign: FALSE keeps the owner an assignment rule would replace', async () => {
  const { ids: [rep, other] } = await fake.control('POST', '/_fake/users', [
    { username: 'rep@example.com', name: 'Rita Rep' }, { username: 'other@example.com', name: 'Otto Other' },
  ]);
  const { id: queue } = await fake.control('POST', '/_fake/queues', { name: 'Inbound Leads' });
  await fake.control('POST', '/_fake/assignment-rule', { object: 'Lead', ownerId: queue });
  const conn = await fake.login();
  const leads = conn.sobject('Lead');
  const noAssign = { headers: { 'Sforce-Auto-Assign': 'FALSE' } };

  const kept = await leads.create({ LastName: 'Kept', Company: 'K', OwnerId: rep }, noAssign);
  const ruled = await leads.create({ LastName: 'Ruled', Company: 'R', OwnerId: rep });
  const owners = async (...ids) => (await leads.retrieve(ids, { fields: ['OwnerId'] })).map((r) => r.OwnerId);
  assert.deepEqual(await owners(kept.id, ruled.id), [rep, queue]);

  await leads.update({ Id: kept.id, OwnerId: other }, noAssign);
  await leads.update({ Id: ruled.id, OwnerId: other });
  assert.deepEqual(await owners(kept.id, ruled.id), [other, queue]);

  const batch = await leads.create([
    { LastName: 'B1', Company: 'B', OwnerId: rep }, { LastName: 'B2', Company: 'B', OwnerId: other },
  ], noAssign);
  assert.deepEqual(await owners(batch[0].id, batch[1].id), [rep, other]);

  const retrieves = (r) => r.path === '/services/data/v50.0/composite/sobjects/Lead';
  const sent = (await writes()).filter((r) => !retrieves(r)).map((r) => [r.method, r.path.replace(/\/00Q\w+$/, '/ID'), r.headers['Sforce-Auto-Assign'] ?? null]);
  assert.deepEqual(sent, [
    ['POST', '/services/data/v50.0/sobjects/Lead', 'FALSE'],
    ['POST', '/services/data/v50.0/sobjects/Lead', null],
    ['PATCH', '/services/data/v50.0/sobjects/Lead/ID', 'FALSE'],
    ['PATCH', '/services/data/v50.0/sobjects/Lead/ID', null],
    ['POST', '/services/data/v50.0/composite/sobjects', 'FALSE'],
  ]);
});
