'use strict';
// Errors as a client sees them: an ApiException whose `code` is the HTTP status and whose
// body is HubSpot's JSON error envelope (message, correlationId, category), for validation
// errors (400), conflicts (409), bad credentials (401), and records of another account (404).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('@hubspot/api-client');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, ids } = require('./lib/assertions');

let kontor;
let client;
before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('errors'));
});
after(async () => {
  await kontor?.stop();
});

const email = () => `${unique('e')}@example.com`;
const countContacts = async (c = client) => (await c.crm.contacts.searchApi.doSearch({ limit: 1 })).total;

describe('400 validation errors', () => {
  it('an unknown property on create, update and batch create', async () => {
    const err = await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: email(), no_such_property: 'x' } }), 400);
    assert.equal(err.body.category, 'VALIDATION_ERROR');
    assert.match(err.body.message, /no_such_property/);

    const c = await client.crm.contacts.basicApi.create({ properties: { email: email() } });
    const upd = await rejectsWith(client.crm.contacts.basicApi.update(c.id, { properties: { no_such_property: 'x' } }), 400);
    assert.equal(upd.body.category, 'VALIDATION_ERROR');

    const before = await countContacts();
    await rejectsWith(client.crm.contacts.batchApi.create({
      inputs: [{ properties: { email: email() } }, { properties: { email: email(), no_such_property: 'x' } }],
    }), 400);
    assert.equal(await countContacts(), before, 'a refused batch creates nothing');
  });

  it('a value that is not an option of an enumeration property', async () => {
    const err = await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: email(), lifecyclestage: 'not_a_stage' } }), 400);
    assert.equal(err.body.category, 'VALIDATION_ERROR');
    assert.match(err.body.message, /lifecyclestage|not_a_stage/);
    const c = await client.crm.contacts.basicApi.create({ properties: { email: email(), lifecyclestage: 'lead' } });
    await rejectsWith(client.crm.contacts.basicApi.update(c.id, { properties: { lifecyclestage: 'not_a_stage' } }), 400);
    const still = await client.crm.contacts.basicApi.getById(c.id, ['lifecyclestage']);
    assert.equal(still.properties.lifecyclestage, 'lead');
    await rejectsWith(client.crm.deals.basicApi.create({ properties: { dealname: 'x', pipeline: 'default', dealstage: 'nope' } }), 400);
  });

  it('values of the wrong type for number, date and bool properties', async () => {
    await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: email(), num_employees: 'many' } }), 400);
    await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: email(), date_of_birth: 'yesterday' } }), 400);
    await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: email(), hs_email_optout: 'maybe' } }), 400);
  });

  it('writing a read-only property', async () => {
    await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: email(), hs_object_id: '5' } }), 400);
  });

  it('batches of more than 100 inputs', async () => {
    const inputs = Array.from({ length: 101 }, () => ({ properties: { email: email() } }));
    const before = await countContacts();
    const err = await rejectsWith(client.crm.contacts.batchApi.create({ inputs }), 400);
    assert.equal(err.body.category, 'VALIDATION_ERROR');
    assert.equal(await countContacts(), before, 'nothing was created');

    const idsIn = Array.from({ length: 101 }, (_, i) => ({ id: String(i + 1) }));
    await rejectsWith(client.crm.contacts.batchApi.read({ inputs: idsIn, properties: [], propertiesWithHistory: [] }), 400);
    await rejectsWith(client.crm.contacts.batchApi.update({ inputs: idsIn.map((x) => ({ ...x, properties: { firstname: 'x' } })) }), 400);
    await rejectsWith(client.crm.contacts.batchApi.upsert({ inputs: inputs.map((x) => ({ id: x.properties.email, idProperty: 'email', properties: {} })) }), 400);
    await rejectsWith(client.crm.contacts.batchApi.archive({ inputs: idsIn }), 400);

    // Exactly 100 is fine.
    const ok = await client.crm.contacts.batchApi.createWithHttpInfo({ inputs: inputs.slice(0, 100) });
    assert.equal(ok.httpStatusCode, 201);
    assert.equal(ok.data.results.length, 100);
  });

  it('a search limit above 200', async () => {
    const err = await rejectsWith(client.crm.contacts.searchApi.doSearch({ limit: 201 }), 400);
    assert.equal(err.body.category, 'VALIDATION_ERROR');
    await rejectsWith(client.crm.deals.searchApi.doSearch({ limit: 1000 }), 400);
  });

  it('a search with an unknown operator', async () => {
    await rejectsWith(client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'email', operator: 'LIKE', value: 'x' }] }] }), 400);
  });

  it('an unknown object type', async () => {
    await rejectsWith(client.crm.objects.basicApi.getPage('no_such_objects'), 400);
  });
});

describe('409 conflicts', () => {
  it('creating a contact with an e-mail address already in use', async () => {
    const addr = email();
    const first = await client.crm.contacts.basicApi.create({ properties: { email: addr } });
    const err = await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: addr, firstname: 'Again' } }), 409);
    assert.equal(err.body.category, 'CONFLICT');
    assert.match(err.body.message, new RegExp(`Existing ID: ${first.id}\\b`));
    const found = await client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: addr }] }] });
    assert.deepEqual(ids(found.results), [first.id], 'no second contact was created');
  });

  it('in a batch create, and when an update takes another contact\'s e-mail', async () => {
    const addr = email();
    const first = await client.crm.contacts.basicApi.create({ properties: { email: addr } });
    await rejectsWith(client.crm.contacts.batchApi.create({ inputs: [{ properties: { email: addr } }] }), 409);
    const second = await client.crm.contacts.basicApi.create({ properties: { email: email() } });
    await rejectsWith(client.crm.contacts.basicApi.update(second.id, { properties: { email: addr } }), 409);
    const byEmail = await client.crm.contacts.basicApi.getById(addr, undefined, undefined, undefined, false, 'email');
    assert.equal(byEmail.id, first.id);
  });
});

describe('401 authentication', () => {
  const calls = {
    'objects getPage': (c) => c.crm.contacts.basicApi.getPage(),
    'objects create': (c) => c.crm.contacts.basicApi.create({ properties: { email: 'x@example.com' } }),
    search: (c) => c.crm.contacts.searchApi.doSearch({}),
    'batch read': (c) => c.crm.contacts.batchApi.read({ inputs: [{ id: '1' }], properties: [], propertiesWithHistory: [] }),
    properties: (c) => c.crm.properties.coreApi.getAll('contacts'),
    schemas: (c) => c.crm.schemas.coreApi.getAll(),
    owners: (c) => c.crm.owners.ownersApi.getPage(),
    'v4 associations': (c) => c.crm.associations.v4.basicApi.getPage('contacts', '1', 'companies'),
    'v3 associations': (c) => c.crm.associations.batchApi.read('contacts', 'companies', { inputs: [{ id: '1' }] }),
  };

  it('a made-up token is refused on every endpoint family', async () => {
    const bad = kontor.client('not-a-real-token');
    for (const [name, call] of Object.entries(calls)) {
      const err = await rejectsWith(call(bad), 401).catch((e) => {
        throw new Error(`${name}: ${e.message}`);
      });
      assert.equal(err.body.category, 'INVALID_AUTHENTICATION', name);
    }
  });

  it('a well-formed token with the wrong secret is refused', async () => {
    const { token } = await kontor.account('token-owner');
    const forged = token.slice(0, -4) + (token.endsWith('aaaa') ? 'bbbb' : 'aaaa');
    await rejectsWith(kontor.client(forged).crm.contacts.basicApi.getPage(), 401);
  });

  it('no token at all is refused', async () => {
    const anonymous = new Client({ basePath: kontor.baseUrl });
    await rejectsWith(anonymous.crm.contacts.basicApi.getPage(), 401);
  });
});

describe('accounts are isolated', () => {
  let a;
  let b;
  let theirs;
  let foreignIds;
  let mine;

  before(async () => {
    a = await kontor.account('tenant-a');
    b = await kontor.account('tenant-b');
    // B creates more records than A, so some of B's record ids are not ids of A's records.
    const made = await b.client.crm.contacts.batchApi.create({
      inputs: Array.from({ length: 6 }, (_, i) => ({ properties: { email: `b${i}-${unique('iso')}@example.com`, firstname: 'Tenant B' } })),
    });
    theirs = made.results;
    theirs.push(await b.client.crm.companies.basicApi.create({ properties: { name: 'B Corp' } }));
    mine = await a.client.crm.contacts.basicApi.create({ properties: { email: `a-${unique('iso')}@example.com`, firstname: 'Tenant A' } });
    const myIds = new Set([mine.id]);
    foreignIds = theirs.map((r) => r.id).filter((id) => !myIds.has(id));
    assert.ok(foreignIds.length >= 5);
  });

  it("getById of another account's record is a 404", async () => {
    for (const id of foreignIds.slice(0, -1)) {
      const err = await rejectsWith(a.client.crm.contacts.basicApi.getById(id), 404);
      assert.equal(err.body.category, 'OBJECT_NOT_FOUND');
    }
    const company = theirs[theirs.length - 1];
    await rejectsWith(a.client.crm.companies.basicApi.getById(company.id), 404);
    await rejectsWith(a.client.crm.contacts.basicApi.getById(theirs[1].properties.email, undefined, undefined, undefined, false, 'email'), 404);
  });

  it('lists, getAll, search and batch read show only the own account', async () => {
    const page = await a.client.crm.contacts.basicApi.getPage(100);
    assert.deepEqual(ids(page.results), [mine.id]);
    assert.deepEqual(ids(await a.client.crm.contacts.getAll()), [mine.id]);
    const found = await a.client.crm.contacts.searchApi.doSearch({ query: 'Tenant', limit: 100 });
    assert.deepEqual(ids(found.results), [mine.id]);
    assert.equal(found.total, 1);
    const byName = await a.client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'firstname', operator: 'EQ', value: 'Tenant B' }] }] });
    assert.equal(byName.total, 0);
    const read = await a.client.crm.contacts.batchApi.readWithHttpInfo({ inputs: foreignIds.map((id) => ({ id })), properties: [], propertiesWithHistory: [] });
    assert.equal(read.httpStatusCode, 207);
    assert.equal(read.data.results.length, 0);
    assert.equal((await a.client.crm.companies.basicApi.getPage(100)).results.length, 0);
  });

  it("another account's records cannot be changed, archived or associated", async () => {
    const target = theirs.find((r) => foreignIds.includes(r.id) && r.properties.email);
    await rejectsWith(a.client.crm.contacts.basicApi.update(target.id, { properties: { firstname: 'Hijacked' } }), 404);
    const upd = await a.client.crm.contacts.batchApi.updateWithHttpInfo({ inputs: [{ id: target.id, properties: { firstname: 'Hijacked' } }] });
    assert.equal(upd.httpStatusCode, 207);
    assert.equal(upd.data.results.length, 0);
    assert.deepEqual(upd.data.errors[0].context.ids, [target.id]);
    // Archiving an id the account does not have may answer 204 (as for an already archived
    // record) or 404; either way nothing of the other account may change.
    for (const archive of [
      () => a.client.crm.contacts.basicApi.archiveWithHttpInfo(target.id),
      () => a.client.crm.contacts.batchApi.archiveWithHttpInfo({ inputs: [{ id: target.id }] }),
    ]) {
      const res = await archive().catch((e) => e);
      assert.ok(res.httpStatusCode === 204 || res.code === 404, `archive of a foreign id: ${res.httpStatusCode ?? res.code}`);
    }
    const company = theirs[theirs.length - 1];
    await rejectsWith(a.client.crm.associations.v4.basicApi.createDefault('contacts', mine.id, 'companies', company.id), 404);

    const still = await b.client.crm.contacts.basicApi.getById(target.id, ['firstname']);
    assert.equal(still.properties.firstname, 'Tenant B');
    assert.equal(still.archived, false);
    assert.equal((await b.client.crm.associations.v4.basicApi.getPage('companies', company.id, 'contacts')).results.length, 0);
  });

  it('upserting an e-mail used in another account creates a separate record', async () => {
    const addr = theirs[0].properties.email;
    const res = await a.client.crm.contacts.batchApi.upsert({ inputs: [{ id: addr, idProperty: 'email', properties: { firstname: 'Tenant A copy' } }] });
    assert.equal(res.results[0]._new, true);
    const original = await b.client.crm.contacts.basicApi.getById(theirs[0].id, ['firstname', 'email']);
    assert.equal(original.properties.firstname, 'Tenant B');
    // The same e-mail in two accounts is not a conflict.
    const created = await b.client.crm.contacts.basicApi.create({ properties: { email: mine.properties.email } });
    assert.equal(created.properties.email, mine.properties.email);
  });

  it('custom properties and schemas are per account', async () => {
    const prop = unique('b_only_');
    await b.client.crm.properties.coreApi.create('contacts', { name: prop, label: 'B only', type: 'string', fieldType: 'text', groupName: 'contactinformation' });
    await rejectsWith(a.client.crm.properties.coreApi.getByName('contacts', prop), 404);
    await rejectsWith(a.client.crm.contacts.basicApi.create({ properties: { email: email(), [prop]: 'x' } }), 400);

    const schema = await b.client.crm.schemas.coreApi.create({
      name: unique('secret'),
      labels: { singular: 'Secret', plural: 'Secrets' },
      primaryDisplayProperty: 'title',
      requiredProperties: [],
      properties: [{ name: 'title', label: 'Title', type: 'string', fieldType: 'text' }],
      associatedObjects: [],
    });
    await rejectsWith(a.client.crm.schemas.coreApi.getById(schema.objectTypeId), 404);
    assert.ok(!(await a.client.crm.schemas.coreApi.getAll()).results.some((s) => s.objectTypeId === schema.objectTypeId));
    const rec = await b.client.crm.objects.basicApi.create(schema.objectTypeId, { properties: { title: 'classified' } });
    const err = await a.client.crm.objects.basicApi.getById(schema.objectTypeId, rec.id).catch((e) => e);
    assert.equal(err.constructor?.name, 'ApiException');
    assert.ok([400, 404].includes(err.code), `a foreign custom object type: ${err.code}`);
  });
});
