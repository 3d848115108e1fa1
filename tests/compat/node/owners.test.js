'use strict';
// Owners (/crm/v3/owners/): every user of an account is an owner records can be assigned to.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate } = require('./lib/assertions');

let kontor;
let client;
let accountId;
const users = [];
before(async () => {
  kontor = await startKontor();
  ({ client, id: accountId } = await kontor.account('owners'));
  for (const [firstName, lastName] of [['Ada', 'Lovelace'], ['Grace', 'Hopper'], ['Alan', 'Turing']]) {
    const email = `${unique(firstName.toLowerCase())}@example.com`;
    const userId = await kontor.user(accountId, { email, firstName, lastName });
    users.push({ email, firstName, lastName, userId });
  }
});
after(async () => {
  await kontor?.stop();
});

const owners = () => client.crm.owners.ownersApi;

describe('owners', () => {
  it('getPage lists every user as a PERSON owner', async () => {
    const page = await owners().getPage();
    assert.equal(page.results.length, users.length);
    for (const u of users) {
      const o = page.results.find((x) => x.email === u.email);
      assert.ok(o, `owner for ${u.email}`);
      assert.match(o.id, /^\d+$/);
      assert.equal(o.firstName, u.firstName);
      assert.equal(o.lastName, u.lastName);
      assert.equal(o.type, 'PERSON');
      assert.equal(o.userId, u.userId);
      assert.equal(o.archived, false);
      assertDate(o.createdAt, 'createdAt');
      assertDate(o.updatedAt, 'updatedAt');
    }
    assert.equal(page.paging, undefined);
  });

  it('getPage filters by email', async () => {
    const page = await owners().getPage(users[1].email);
    assert.deepEqual(page.results.map((o) => o.email), [users[1].email]);
    const none = await owners().getPage('nobody@example.com');
    assert.equal(none.results.length, 0);
  });

  it('getPage pages with limit and after', async () => {
    const seen = [];
    let after;
    for (let i = 0; i < 10; i++) {
      const page = await owners().getPage(undefined, after, 2);
      assert.ok(page.results.length <= 2);
      seen.push(...page.results.map((o) => o.email));
      if (!page.paging) break;
      after = page.paging.next.after;
    }
    assert.deepEqual([...seen].sort(), users.map((u) => u.email).sort());
  });

  it('getById by owner id and by userId; unknown ids are 404', async () => {
    const page = await owners().getPage(users[0].email);
    const owner = page.results[0];
    const byId = await owners().getById(Number(owner.id));
    assert.equal(byId.id, owner.id);
    assert.equal(byId.email, users[0].email);
    const byUser = await owners().getById(users[0].userId, 'userId');
    assert.equal(byUser.id, owner.id);
    await rejectsWith(owners().getById(99999999), 404);
  });

  it('records take an owner in hubspot_owner_id', async () => {
    const owner = (await owners().getPage(users[2].email)).results[0];
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('o')}@example.com`, hubspot_owner_id: owner.id } });
    const got = await client.crm.contacts.basicApi.getById(c.id, ['hubspot_owner_id']);
    assert.equal(got.properties.hubspot_owner_id, owner.id);
    const found = await client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'hubspot_owner_id', operator: 'EQ', value: owner.id }] }] });
    assert.deepEqual(found.results.map((r) => r.id), [c.id]);
  });

  it("another account's owners are not visible", async () => {
    const other = await kontor.account('owners-other');
    const emails = [];
    // More users than this account has, so that at least one of their owner ids is not
    // also an owner id here.
    for (let i = 0; i <= users.length; i++) {
      const email = `${unique('stranger')}@example.com`;
      await kontor.user(other.id, { email, firstName: 'Other', lastName: `Person${i}` });
      emails.push(email);
    }
    const mine = await owners().getPage();
    assert.deepEqual(mine.results.map((o) => o.email).sort(), users.map((u) => u.email).sort());
    const theirs = await other.client.crm.owners.ownersApi.getPage();
    assert.deepEqual(theirs.results.map((o) => o.email).sort(), [...emails].sort());
    const myIds = new Set(mine.results.map((o) => o.id));
    const foreign = theirs.results.filter((o) => !myIds.has(o.id));
    assert.ok(foreign.length > 0);
    for (const o of foreign) await rejectsWith(owners().getById(Number(o.id)), 404);
    for (const o of theirs.results) {
      const seen = await owners().getById(Number(o.id)).catch(() => null);
      assert.ok(!seen || !emails.includes(seen.email), `owner ${o.id} of the other account is visible`);
    }
  });
});
