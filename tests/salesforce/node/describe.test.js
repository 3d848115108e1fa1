'use strict';
// describeGlobal and describe through jsforce, including a custom external-id field added
// through the control API.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useFake } = require('./lib/fake');

const fake = useFake();

function field(describe, name) {
  const f = describe.fields.find((x) => x.name === name);
  assert.ok(f, `${describe.name} has no field ${name}`);
  return f;
}

test('describeGlobal lists the standard objects with their key prefixes', async () => {
  const conn = await fake.login();
  const global = await conn.describeGlobal();
  assert.equal(global.encoding, 'UTF-8');
  assert.equal(global.maxBatchSize, 200);
  const byName = Object.fromEntries(global.sobjects.map((s) => [s.name, s]));
  for (const [name, prefix] of [['Account', '001'], ['Contact', '003'], ['User', '005'], ['Opportunity', '006'],
    ['Lead', '00Q'], ['Group', '00G'], ['Task', '00T']]) {
    assert.equal(byName[name]?.keyPrefix, prefix, name);
    assert.equal(byName[name].queryable, true);
  }
  assert.equal(byName.Contact.urls.sobject, '/services/data/v50.0/sobjects/Contact');
  assert.equal(byName.User.createable, false, 'users are not created over REST');
  assert.equal(byName.Lead.mergeable, true);
  // describeGlobal's result registers every object on the connection.
  assert.ok(conn.sobjects.Contact && conn.sobjects.Lead);
});

test('describe gives field types, lengths, required flags and references', async () => {
  const conn = await fake.login();
  const contact = await conn.sobject('Contact').describe();
  assert.equal(contact.name, 'Contact');
  assert.equal(contact.keyPrefix, '003');
  const types = Object.fromEntries(contact.fields.map((f) => [f.name, f.type]));
  assert.deepEqual(
    [types.Id, types.LastName, types.Email, types.Phone, types.AccountId, types.MailingStreet,
      types.LeadSource, types.SystemModstamp, types.IsDeleted],
    ['id', 'string', 'email', 'phone', 'reference', 'textarea', 'picklist', 'datetime', 'boolean'],
  );
  const last = field(contact, 'LastName');
  assert.equal(last.nillable, false);
  assert.equal(last.createable, true);
  assert.equal(last.length, 80);
  const account = field(contact, 'AccountId');
  assert.deepEqual(account.referenceTo, ['Account']);
  assert.equal(account.relationshipName, 'Account');
  const name = field(contact, 'Name');
  assert.equal(name.createable, false, 'Name is derived from FirstName + LastName');
  assert.equal(field(contact, 'MasterRecordId').referenceTo[0], 'Contact');

  const accountDescribe = await conn.describe('Account');
  const children = accountDescribe.childRelationships.filter((r) => r.relationshipName === 'Contacts');
  assert.deepEqual(children.map((r) => [r.childSObject, r.field]), [['Contact', 'AccountId']]);
  const revenue = field(accountDescribe, 'AnnualRevenue');
  assert.equal(revenue.type, 'currency');
  assert.equal(field(accountDescribe, 'NumberOfEmployees').type, 'int');
});

test('describe gives picklist values, defaults and restriction', async () => {
  const conn = await fake.login();
  const lead = await conn.describe('Lead');
  const status = field(lead, 'Status');
  assert.equal(status.type, 'picklist');
  assert.equal(status.restrictedPicklist, true);
  assert.deepEqual(status.picklistValues.map((v) => v.value),
    ['Open - Not Contacted', 'Working - Contacted', 'Closed - Converted', 'Closed - Not Converted']);
  assert.deepEqual(status.picklistValues.filter((v) => v.defaultValue).map((v) => v.value), ['Open - Not Contacted']);
  assert.ok(status.picklistValues.every((v) => v.active && v.label === v.value));
  const stage = field(await conn.describe('Opportunity'), 'StageName');
  assert.ok(stage.picklistValues.some((v) => v.value === 'Closed Won'));
  const owner = field(lead, 'OwnerId');
  assert.deepEqual(owner.referenceTo.sort(), ['Group', 'User'], 'a lead can be owned by a queue');
});

test('a custom external-id field added through the control API shows in describe', async () => {
  await fake.control('POST', '/_fake/fields', {
    object: 'Contact', name: 'Kontor_Id__c', type: 'string', length: 36, externalId: true, unique: true,
  });
  await fake.control('POST', '/_fake/fields', {
    object: 'Contact', name: 'Tier__c', type: 'picklist', picklistValues: ['Gold', 'Silver'],
  });
  const conn = await fake.login();
  const contact = await conn.describe('Contact');
  const ext = field(contact, 'Kontor_Id__c');
  assert.equal(ext.custom, true);
  assert.equal(ext.externalId, true);
  assert.equal(ext.unique, true);
  assert.equal(ext.idLookup, true);
  assert.equal(ext.length, 36);
  assert.equal(ext.type, 'string');
  assert.equal(field(contact, 'Email').externalId, false);
  assert.deepEqual(field(contact, 'Tier__c').picklistValues.map((v) => v.value), ['Gold', 'Silver']);

  // The new field is usable at once.
  const created = await conn.sobject('Contact').create({ LastName: 'Ext', Kontor_Id__c: 'k-1', Tier__c: 'Gold' });
  const rec = await conn.sobject('Contact').retrieve(created.id, { fields: ['Kontor_Id__c', 'Tier__c'] });
  assert.equal(rec.Kontor_Id__c, 'k-1');
  assert.equal(rec.Tier__c, 'Gold');
});

test('describing an unknown object is a 404 NOT_FOUND', async () => {
  const conn = await fake.login();
  await assert.rejects(conn.describe('Nope__c'), { errorCode: 'NOT_FOUND', name: 'NOT_FOUND' });
});
