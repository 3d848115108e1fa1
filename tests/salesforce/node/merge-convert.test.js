'use strict';
// Merges and lead conversions happen in the Salesforce UI, so they are done through the control
// API here; what a sync engine then sees through jsforce is checked: the deleted feed, queryAll
// with MasterRecordId, re-parented children, ConvertedContactId and friends.

const { test, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { useFake } = require('./lib/fake');

const fake = useFake();

beforeEach(async () => {
  await fake.control('POST', '/_fake/clock', { now: '2026-05-11T08:00:00Z' });
});

async function advance(seconds) {
  await fake.control('POST', '/_fake/clock', { advance: seconds });
}

test('an account merge: loser deleted with MasterRecordId, children moved, feeds tell it', async () => {
  const [master, loser] = await fake.load('Account', [{ Name: 'Acme' }, { Name: 'ACME Inc.' }]);
  const [c1, c2] = await fake.load('Contact', [
    { LastName: 'Kept', AccountId: master }, { LastName: 'Moved', AccountId: loser },
  ]);
  const [task] = await fake.load('Task', [{ Subject: 'Call', WhatId: loser, WhoId: c2 }]);
  await advance(30);                                                  // 08:00:30
  const merged = await fake.control('POST', '/_fake/merge', { object: 'Account', master, losers: [loser] });
  assert.deepEqual(merged.mergedRecordIds, [loser]);
  await advance(90);                                                  // 08:02:00

  const conn = await fake.login();
  await assert.rejects(conn.sobject('Account').retrieve(loser), { errorCode: 'ENTITY_IS_DELETED' });
  const live = await conn.query('SELECT Id FROM Account');
  assert.deepEqual(live.records.map((r) => r.Id), [master]);
  const all = await conn.query('SELECT Id, Name, IsDeleted, MasterRecordId FROM Account ORDER BY Name', { scanAll: true });
  assert.deepEqual(all.records.map(({ attributes, ...r }) => r), [
    { Id: master, Name: 'Acme', IsDeleted: false, MasterRecordId: null },
    { Id: loser, Name: 'ACME Inc.', IsDeleted: true, MasterRecordId: master },
  ]);

  const deleted = await conn.sobject('Account').deleted('2026-05-11T08:00:00Z', '2026-05-11T09:00:00Z');
  assert.deepEqual(deleted.deletedRecords, [{ id: loser, deletedDate: '2026-05-11T08:00:30.000+0000' }]);
  const contacts = await conn.query(`SELECT Id, AccountId FROM Contact WHERE Id IN ('${c1}', '${c2}') ORDER BY LastName`);
  assert.deepEqual(contacts.records.map((r) => r.AccountId), [master, master]);
  assert.equal((await conn.sobject('Task').retrieve(task)).WhatId, master);

  // Re-parenting is a change of the child (new SystemModstamp); the master is touched too.
  const stamps = await conn.sobject('Contact').retrieve([c1, c2], { fields: ['SystemModstamp'] });
  assert.deepEqual(stamps.map((r) => r.SystemModstamp), ['2026-05-11T08:00:00.000+0000', '2026-05-11T08:00:30.000+0000']);
  const masterNow = await conn.sobject('Account').retrieve(master, { fields: ['SystemModstamp'] });
  assert.equal(masterNow.SystemModstamp, '2026-05-11T08:00:30.000+0000');
  const after = await conn.sobject('Account').updated('2026-05-11T08:00:00Z', '2026-05-11T09:00:00Z');
  assert.deepEqual(after, { ids: [master], latestDateCovered: '2026-05-11T08:02:00.000+0000' });
});

test('a contact merge with two losers lists both in the deleted feed', async () => {
  const [master, l1, l2] = await fake.load('Contact', [
    { LastName: 'Lovelace', Email: 'ada@example.com' }, { LastName: 'Lovelace' }, { LastName: 'Byron' },
  ]);
  await advance(61);                                                  // 08:01:01
  await fake.control('POST', '/_fake/merge', { object: 'Contact', master, losers: [l1, l2] });
  await advance(60);
  const conn = await fake.login();
  const feed = await conn.sobject('Contact').deleted('2026-05-11T08:01:00Z', '2026-05-11T08:30:00Z');
  assert.deepEqual(feed.deletedRecords.map((d) => d.id).sort(), [l1, l2].sort());
  assert.ok(feed.deletedRecords.every((d) => d.deletedDate === '2026-05-11T08:01:01.000+0000'));
  const losers = await conn.query('SELECT Id, MasterRecordId FROM Contact WHERE IsDeleted = true', { scanAll: true });
  assert.deepEqual(losers.records.map((r) => r.MasterRecordId), [master, master]);
  // Following a stale link to a loser ends in ENTITY_IS_DELETED, the cue to re-match.
  await assert.rejects(conn.sobject('Contact').update({ Id: l2, Title: 'x' }), { errorCode: 'ENTITY_IS_DELETED' });
});

test('a lead conversion: ConvertedContactId and friends, task moved, the lead frozen', async () => {
  const conn = await fake.login();
  const lead = await conn.sobject('Lead').create({
    FirstName: 'Alan', LastName: 'Turing', Company: 'Bletchley', Email: 'alan@example.com', LeadSource: 'Web',
  });
  const task = await conn.sobject('Task').create({ Subject: 'Follow up', WhoId: lead.id });
  await advance(120);                                                 // 08:02:00
  const converted = await fake.control('POST', '/_fake/convert-lead', { leadId: lead.id });

  const rec = await conn.sobject('Lead').retrieve(lead.id);
  assert.equal(rec.IsConverted, true);
  assert.equal(rec.Status, 'Closed - Converted');
  assert.equal(rec.ConvertedContactId, converted.contactId);
  assert.equal(rec.ConvertedAccountId, converted.accountId);
  assert.equal(rec.ConvertedOpportunityId, converted.opportunityId);
  assert.equal(rec.ConvertedDate, '2026-05-11');

  const contact = await conn.sobject('Contact').retrieve(converted.contactId);
  assert.deepEqual([contact.Name, contact.Email, contact.AccountId, contact.LeadSource],
    ['Alan Turing', 'alan@example.com', converted.accountId, 'Web']);
  assert.equal((await conn.sobject('Account').retrieve(converted.accountId)).Name, 'Bletchley');
  const opp = await conn.sobject('Opportunity').retrieve(converted.opportunityId);
  assert.deepEqual([opp.Name, opp.StageName, opp.CloseDate], ['Bletchley-', 'Prospecting', '2026-06-30']);
  assert.equal((await conn.sobject('Task').retrieve(task.id)).WhoId, converted.contactId);

  const open = await conn.query('SELECT Id FROM Lead WHERE IsConverted = false');
  assert.equal(open.totalSize, 0);
  const byLead = await conn.query(`SELECT ConvertedContactId FROM Lead WHERE Email = 'alan@example.com'`);
  assert.equal(byLead.records[0].ConvertedContactId, converted.contactId);
  await assert.rejects(conn.sobject('Lead').update({ Id: lead.id, Title: 'Dr' }), { errorCode: 'CANNOT_UPDATE_CONVERTED_LEAD' });

  await advance(60);
  const newContacts = await conn.sobject('Contact').updated('2026-05-11T08:01:00Z', '2026-05-11T09:00:00Z');
  assert.deepEqual(newContacts.ids, [converted.contactId]);
  const leads = await conn.sobject('Lead').updated('2026-05-11T08:01:00Z', '2026-05-11T09:00:00Z');
  assert.deepEqual(leads.ids, [lead.id], 'the conversion is a change of the lead');
  const gone = await conn.sobject('Lead').deleted('2026-05-11T08:00:00Z', '2026-05-11T09:00:00Z');
  assert.deepEqual(gone.deletedRecords, [], 'a converted lead is not deleted');
});

test('converting into an existing contact fills only its blanks', async () => {
  const [account] = await fake.load('Account', [{ Name: 'Existing Co' }]);
  const [contact] = await fake.load('Contact', [{ LastName: 'Hamilton', Email: 'margaret@example.com', AccountId: account }]);
  const [lead] = await fake.load('Lead', [{
    FirstName: 'Margaret', LastName: 'Ham', Company: 'MIT', Email: 'mh@example.com', Phone: '+1 555 0100',
  }]);
  const res = await fake.control('POST', '/_fake/convert-lead', {
    leadId: lead, contactId: contact, accountId: account, createOpportunity: false,
  });
  assert.equal(res.opportunityId, null);
  const conn = await fake.login();
  const c = await conn.sobject('Contact').retrieve(contact, { fields: ['FirstName', 'LastName', 'Email', 'Phone', 'AccountId'] });
  assert.deepEqual([c.FirstName, c.LastName, c.Email, c.Phone, c.AccountId],
    ['Margaret', 'Hamilton', 'margaret@example.com', '+1 555 0100', account]);
  const l = await conn.sobject('Lead').retrieve(lead, { fields: ['ConvertedContactId', 'ConvertedAccountId', 'ConvertedOpportunityId'] });
  assert.deepEqual([l.ConvertedContactId, l.ConvertedAccountId, l.ConvertedOpportunityId], [contact, account, null]);
  assert.equal((await conn.query('SELECT COUNT() FROM Account')).totalSize, 1);
});
