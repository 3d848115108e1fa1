'use strict';
// CRM objects basic API (/crm/v3/objects/{objectType}) through the official Node client:
// list with paging, property selection, history, associations, archived records, get by id
// or by a unique property, create, update, archive, and the getAll helper.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate, assertRecord, ids, sortedIds } = require('./lib/assertions');

let kontor;
before(async () => {
  kontor = await startKontor();
});
after(async () => {
  await kontor?.stop();
});

async function createContacts(client, n, extra = () => ({})) {
  const inputs = [];
  for (let i = 0; i < n; i++) {
    inputs.push({ properties: { email: `${unique('c')}@example.com`, firstname: `First${i}`, ...extra(i) } });
  }
  const out = [];
  for (let i = 0; i < inputs.length; i += 100) {
    const res = await client.crm.contacts.batchApi.create({ inputs: inputs.slice(i, i + 100) });
    out.push(...res.results);
  }
  return out;
}

describe('getPage', () => {
  let client;
  let created;
  before(async () => {
    ({ client } = await kontor.account('paging'));
    created = await createContacts(client, 7, (i) => ({ jobtitle: `Title ${i}` }));
  });

  it('pages through every record with limit and after, leaving paging out on the last page', async () => {
    const seen = [];
    let after;
    let pages = 0;
    for (;;) {
      const page = await client.crm.contacts.basicApi.getPage(3, after);
      pages += 1;
      assert.ok(page.results.length <= 3, `page has ${page.results.length} results for limit 3`);
      page.results.forEach(assertRecord);
      seen.push(...page.results);
      if (!page.paging) break;
      after = page.paging.next.after;
      assert.equal(typeof after, 'string');
      assert.ok(after.length > 0, 'paging.next.after is empty');
      assert.ok(pages < 10, 'paging does not end');
    }
    assert.equal(pages, 3);
    assert.deepEqual(sortedIds(seen), sortedIds(created));
    assert.equal(new Set(ids(seen)).size, 7, 'a record appeared on two pages');
  });

  it('defaults to 10 records per page', async () => {
    const page = await client.crm.contacts.basicApi.getPage();
    assert.equal(page.results.length, 7);
    assert.equal(page.paging, undefined);
  });

  it('returns the requested properties, and the default ones when none are requested', async () => {
    const page = await client.crm.contacts.basicApi.getPage(10, undefined, ['jobtitle', 'no_such_property']);
    assert.equal(page.results.length, 7);
    for (const r of page.results) {
      const mine = created.find((c) => c.id === r.id);
      assert.equal(r.properties.jobtitle, mine.properties.jobtitle);
      assert.equal(r.properties.firstname, undefined, 'firstname was not requested');
      assert.ok(!('no_such_property' in r.properties), 'unknown names are ignored');
    }
    const defaults = await client.crm.contacts.basicApi.getPage(1);
    const p = defaults.results[0].properties;
    for (const name of ['email', 'firstname', 'createdate', 'lastmodifieddate', 'hs_object_id']) {
      assert.ok(name in p, `default property ${name} missing`);
    }
    assert.equal(p.jobtitle, undefined, 'jobtitle is not a default property');
  });

  it('includes propertiesWithHistory and associations when asked', async () => {
    const company = await client.crm.companies.basicApi.create({ properties: { name: 'Paging Co' } });
    const target = created[0];
    await client.crm.associations.v4.basicApi.createDefault('contacts', target.id, 'companies', company.id);
    await client.crm.contacts.basicApi.update(target.id, { properties: { jobtitle: 'Changed' } });

    const page = await client.crm.contacts.basicApi.getPage(10, undefined, ['jobtitle'], ['jobtitle'], ['companies']);
    const r = page.results.find((x) => x.id === target.id);
    assert.ok(r, 'record on the page');
    assert.equal(r.properties.jobtitle, 'Changed');
    assert.deepEqual(r.propertiesWithHistory.jobtitle.map((h) => h.value), ['Changed', 'Title 0']);
    assert.deepEqual(r.associations.companies.results.map((a) => a.id).filter((id) => id === company.id), [company.id]);
    const other = page.results.find((x) => x.id === created[1].id);
    assert.ok(!other.associations?.companies?.results?.length, 'an unassociated contact lists no companies');
  });

  it('archived=true lists only archived records, with archivedAt', async () => {
    const [gone] = await createContacts(client, 1);
    await client.crm.contacts.basicApi.archive(gone.id);
    const live = await client.crm.contacts.getAll(undefined, undefined, undefined, undefined, undefined, false);
    assert.ok(!ids(live).includes(gone.id), 'an archived record is left out of the default list');
    const page = await client.crm.contacts.basicApi.getPage(100, undefined, undefined, undefined, undefined, true);
    assert.deepEqual(ids(page.results), [gone.id]);
    assert.equal(page.results[0].archived, true);
    assertDate(page.results[0].archivedAt, 'archivedAt');
  });
});

describe('getAll', () => {
  it('collects every page of a 105-record list', async () => {
    const { client } = await kontor.account('getall');
    const created = await createContacts(client, 105);
    const all = await client.crm.contacts.getAll();
    assert.equal(all.length, 105);
    assert.deepEqual(sortedIds(all), sortedIds(created));
  });

  it('honours a small page size and the properties list', async () => {
    const { client } = await kontor.account('getall-small');
    const created = await createContacts(client, 5, (i) => ({ lastname: `Last${i}` }));
    const all = await client.crm.contacts.getAll(2, undefined, ['lastname']);
    assert.deepEqual(sortedIds(all), sortedIds(created));
    for (const r of all) assert.equal(r.properties.lastname, created.find((c) => c.id === r.id).properties.lastname);
  });
});

describe('contacts basic API', () => {
  let client;
  before(async () => {
    ({ client } = await kontor.account('contacts'));
  });

  it('create answers 201 with the stored record', async () => {
    const email = `${unique('ada')}@example.com`;
    const res = await client.crm.contacts.basicApi.createWithHttpInfo({
      properties: { email, firstname: 'Ada', lastname: 'Lovelace', num_employees: 12 },
      associations: [],
    });
    assert.equal(res.httpStatusCode, 201);
    const r = res.data;
    assertRecord(r);
    assert.equal(r.properties.email, email);
    assert.equal(r.properties.firstname, 'Ada');
    assert.equal(r.properties.num_employees, '12', 'numbers come back as strings');
    assertDate(new Date(r.properties.createdate), 'createdate');
    assert.equal(new Date(r.properties.createdate).getTime(), r.createdAt.getTime());
    assert.equal(r.archived, false);
  });

  it('create with associations links the new record', async () => {
    const company = await client.crm.companies.basicApi.create({ properties: { name: 'Analytical Engines' } });
    const contact = await client.crm.contacts.basicApi.create({
      properties: { email: `${unique('c')}@example.com` },
      associations: [{ to: { id: company.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }],
    });
    const got = await client.crm.contacts.basicApi.getById(contact.id, undefined, undefined, ['companies']);
    const results = got.associations.companies.results;
    assert.ok(results.length >= 1);
    assert.ok(results.every((a) => a.id === company.id));
    assert.ok(results.every((a) => typeof a.type === 'string' && a.type.startsWith('contact_to_company')), JSON.stringify(results));
    const back = await client.crm.companies.basicApi.getById(company.id, undefined, undefined, ['contacts']);
    assert.deepEqual([...new Set(back.associations.contacts.results.map((a) => a.id))], [contact.id]);
  });

  it('getById returns requested properties, by id and by email', async () => {
    const email = `${unique('grace+hopper')}@example.com`;
    const c = await client.crm.contacts.basicApi.create({ properties: { email, firstname: 'Grace', jobtitle: 'Admiral' } });

    const byId = await client.crm.contacts.basicApi.getById(c.id, ['jobtitle', 'firstname']);
    assertRecord(byId);
    assert.equal(byId.id, c.id);
    assert.equal(byId.properties.jobtitle, 'Admiral');
    assert.equal(byId.properties.firstname, 'Grace');
    assert.equal(byId.associations, undefined, 'associations only when asked');
    assert.equal(byId.propertiesWithHistory, undefined, 'history only when asked');

    const byEmail = await client.crm.contacts.basicApi.getById(email, ['jobtitle'], undefined, undefined, false, 'email');
    assert.equal(byEmail.id, c.id);
    assert.equal(byEmail.properties.jobtitle, 'Admiral');

    await rejectsWith(client.crm.contacts.basicApi.getById(`${unique('nobody')}@example.com`, undefined, undefined, undefined, false, 'email'), 404);
  });

  it('getById without properties returns the contact default properties', async () => {
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('d')}@example.com`, firstname: 'D', jobtitle: 'J' } });
    const got = await client.crm.contacts.basicApi.getById(c.id);
    for (const name of ['firstname', 'lastname', 'email', 'createdate', 'lastmodifieddate', 'hs_object_id']) {
      assert.ok(name in got.properties, `default property ${name} missing`);
    }
    assert.equal(got.properties.jobtitle, undefined);
  });

  it('propertiesWithHistory lists every value, newest first', async () => {
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('h')}@example.com`, firstname: 'v1' } });
    await client.crm.contacts.basicApi.update(c.id, { properties: { firstname: 'v2' } });
    await client.crm.contacts.basicApi.update(c.id, { properties: { firstname: 'v3' } });
    const got = await client.crm.contacts.basicApi.getById(c.id, ['firstname'], ['firstname']);
    assert.equal(got.properties.firstname, 'v3');
    const history = got.propertiesWithHistory.firstname;
    assert.deepEqual(history.map((h) => h.value), ['v3', 'v2', 'v1']);
    for (const h of history) {
      assertDate(h.timestamp, 'history timestamp');
      assert.equal(typeof h.sourceType, 'string');
      assert.ok(h.sourceType.length > 0);
    }
    for (let i = 1; i < history.length; i++) {
      assert.ok(history[i - 1].timestamp.getTime() >= history[i].timestamp.getTime(), 'newest first');
    }
  });

  it('update merges properties, by id and by email, and clears with an empty string', async () => {
    const email = `${unique('u')}@example.com`;
    const c = await client.crm.contacts.basicApi.create({ properties: { email, firstname: 'Ann', lastname: 'Old', jobtitle: 'Clerk' } });
    const res = await client.crm.contacts.basicApi.updateWithHttpInfo(c.id, { properties: { lastname: 'New' } });
    assert.equal(res.httpStatusCode, 200);
    assert.equal(res.data.properties.lastname, 'New');
    assert.equal(res.data.properties.firstname, 'Ann', 'properties not in the update are kept');
    assert.ok(res.data.updatedAt.getTime() >= c.updatedAt.getTime());

    const byEmail = await client.crm.contacts.basicApi.update(email, { properties: { jobtitle: '' } }, 'email');
    assert.equal(byEmail.id, c.id);
    const got = await client.crm.contacts.basicApi.getById(c.id, ['jobtitle', 'lastname', 'firstname']);
    assert.ok(got.properties.jobtitle === null || got.properties.jobtitle === '' || got.properties.jobtitle === undefined, `jobtitle cleared, got ${got.properties.jobtitle}`);
    assert.equal(got.properties.lastname, 'New');
    assert.equal(got.properties.firstname, 'Ann');
  });

  it('accepts numbers, booleans and epoch-ms dates on input and answers with strings', async () => {
    const c = await client.crm.contacts.basicApi.create({
      properties: {
        email: `${unique('fmt')}@example.com`,
        num_employees: 42,
        hs_email_optout: true,
        date_of_birth: Date.UTC(1990, 3, 2),
        notes_last_contacted: String(Date.UTC(2024, 4, 1, 12, 34, 56, 789)),
      },
    });
    const got = await client.crm.contacts.basicApi.getById(c.id, ['num_employees', 'hs_email_optout', 'date_of_birth', 'notes_last_contacted']);
    assert.equal(got.properties.num_employees, '42');
    assert.equal(got.properties.hs_email_optout, 'true');
    assert.equal(got.properties.date_of_birth, '1990-04-02');
    assert.equal(new Date(got.properties.notes_last_contacted).toISOString(), '2024-05-01T12:34:56.789Z');
    assert.match(got.properties.notes_last_contacted, /^\d{4}-\d{2}-\d{2}T/, 'datetimes come back as ISO-8601');

    const iso = await client.crm.contacts.basicApi.update(c.id, { properties: { date_of_birth: '1991-07-15', hs_email_optout: false } });
    assert.equal(iso.properties.date_of_birth, '1991-07-15');
    assert.equal(iso.properties.hs_email_optout, 'false');
    // A date property holds a day: an instant that is not midnight UTC is refused.
    await rejectsWith(client.crm.contacts.basicApi.update(c.id, { properties: { date_of_birth: Date.UTC(1990, 3, 2, 15) } }), 400);
  });

  it('createdAt and updatedAt match createdate and lastmodifieddate', async () => {
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('ts')}@example.com` } });
    const u = await client.crm.contacts.basicApi.update(c.id, { properties: { firstname: 'Later' } });
    const got = await client.crm.contacts.basicApi.getById(c.id, ['createdate', 'lastmodifieddate']);
    assert.equal(new Date(got.properties.createdate).getTime(), got.createdAt.getTime());
    assert.equal(new Date(got.properties.lastmodifieddate).getTime(), got.updatedAt.getTime());
    assert.equal(got.updatedAt.getTime(), u.updatedAt.getTime());
    assert.equal(got.createdAt.getTime(), c.createdAt.getTime(), 'createdAt does not move on update');
  });

  it('update of a missing record is a 404', async () => {
    await rejectsWith(client.crm.contacts.basicApi.update('987654321', { properties: { firstname: 'x' } }), 404);
  });

  it('archive answers 204; the record is then gone unless archived=true is asked', async () => {
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('a')}@example.com` } });
    const res = await client.crm.contacts.basicApi.archiveWithHttpInfo(c.id);
    assert.equal(res.httpStatusCode, 204);
    await rejectsWith(client.crm.contacts.basicApi.getById(c.id), 404);
    const archived = await client.crm.contacts.basicApi.getById(c.id, undefined, undefined, undefined, true);
    assert.equal(archived.id, c.id);
    assert.equal(archived.archived, true);
    assertDate(archived.archivedAt, 'archivedAt');
    const search = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: 'hs_object_id', operator: 'EQ', value: c.id }] }],
    });
    assert.equal(search.total, 0, 'archived records are left out of search');
    // Archiving again is not an error.
    await client.crm.contacts.basicApi.archive(c.id);
  });
});

// Every object family: the dedicated API where the client has one, else the generic objects
// API with the object type as a path parameter.
const FAMILIES = [
  { type: 'contacts', api: (c) => c.crm.contacts, props: (m) => ({ email: `${m}@example.com`, firstname: m }), key: 'firstname', update: { lastname: 'Updated' }, created: 'createdate', modified: 'lastmodifieddate' },
  { type: 'companies', api: (c) => c.crm.companies, props: (m) => ({ name: m, domain: `${m}.example.com` }), key: 'name', update: { industry: 'Updated' }, created: 'createdate', modified: 'hs_lastmodifieddate' },
  { type: 'deals', api: (c) => c.crm.deals, props: (m) => ({ dealname: m, pipeline: 'default', dealstage: 'appointmentscheduled', amount: '1500' }), key: 'dealname', update: { dealstage: 'closedwon' }, created: 'createdate', modified: 'hs_lastmodifieddate' },
  { type: 'tickets', api: (c) => c.crm.tickets, props: (m) => ({ subject: m, hs_pipeline: '0', hs_pipeline_stage: '1' }), key: 'subject', update: { hs_pipeline_stage: '4' }, created: 'createdate', modified: 'hs_lastmodifieddate' },
  { type: 'products', api: (c) => c.crm.products, props: (m) => ({ name: m, price: '9.99' }), key: 'name', update: { price: '19.5' }, created: 'createdate', modified: 'hs_lastmodifieddate' },
  { type: 'calls', api: (c) => c.crm.objects.calls, props: (m) => ({ hs_timestamp: '2024-05-01T12:00:00.000Z', hs_call_title: m }), key: 'hs_call_title', update: { hs_call_direction: 'OUTBOUND' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
  { type: 'conversations', generic: true, props: (m) => ({ hs_timestamp: '2024-05-01T12:00:00.000Z', hs_conversation_subject: m }), key: 'hs_conversation_subject', update: { hs_conversation_status: 'CLOSED' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
  { type: 'tasks', api: (c) => c.crm.objects.tasks, props: (m) => ({ hs_timestamp: '2024-05-01T12:00:00.000Z', hs_task_subject: m, hs_task_status: 'NOT_STARTED' }), key: 'hs_task_subject', update: { hs_task_status: 'COMPLETED' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
  { type: 'notes', api: (c) => c.crm.objects.notes, props: (m) => ({ hs_timestamp: '2024-05-01T12:00:00.000Z', hs_note_body: m }), key: 'hs_note_body', update: { hs_timestamp: '2024-06-01T08:30:00.000Z' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
  { type: 'meetings', api: (c) => c.crm.objects.meetings, props: (m) => ({ hs_timestamp: '2024-05-01T12:00:00.000Z', hs_meeting_title: m }), key: 'hs_meeting_title', update: { hs_meeting_location: 'Room 2' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
  { type: 'emails', api: (c) => c.crm.objects.emails, props: (m) => ({ hs_timestamp: '2024-05-01T12:00:00.000Z', hs_email_subject: m }), key: 'hs_email_subject', update: { hs_email_direction: 'INCOMING_EMAIL' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
  { type: 'custom', custom: true, generic: true, props: (m) => ({ model: m, year: '1969' }), key: 'model', update: { year: '1970' }, created: 'hs_createdate', modified: 'hs_lastmodifieddate' },
];

/** Calls the dedicated API's method, or the generic objects API's with the object type. */
function binder(client, family, objectType) {
  if (family.generic) {
    const objects = client.crm.objects;
    return (api, method, ...args) => objects[api][method](objectType, ...args);
  }
  const dedicated = family.api(client);
  return (api, method, ...args) => dedicated[api][method](...args);
}

describe('every object family', () => {
  let client;
  let customType;
  before(async () => {
    ({ client } = await kontor.account('families'));
    const schema = await client.crm.schemas.coreApi.create({
      name: unique('cars'),
      labels: { singular: 'Car', plural: 'Cars' },
      primaryDisplayProperty: 'model',
      requiredProperties: ['model'],
      searchableProperties: ['model'],
      properties: [
        { name: 'model', label: 'Model', type: 'string', fieldType: 'text' },
        { name: 'year', label: 'Year', type: 'number', fieldType: 'number' },
      ],
      associatedObjects: ['CONTACT'],
    });
    customType = schema.objectTypeId;
  });

  for (const family of FAMILIES) {
    it(`${family.type}: create, get, list, search, update, archive`, async () => {
      const objectType = family.custom ? customType : family.type;
      const call = binder(client, family, objectType);
      const marker = unique('m');

      const created = await call('basicApi', 'createWithHttpInfo', { properties: family.props(marker) });
      assert.equal(created.httpStatusCode, 201);
      const rec = created.data;
      assertRecord(rec);
      assert.equal(rec.properties[family.key], marker);
      assert.ok(rec.properties[family.created], `${family.created} is set on create`);
      assert.ok(rec.properties[family.modified], `${family.modified} is set on create`);

      const got = await call('basicApi', 'getById', rec.id, [family.key]);
      assert.equal(got.id, rec.id);
      assert.equal(got.properties[family.key], marker);

      const defaults = await call('basicApi', 'getById', rec.id);
      for (const name of [family.created, family.modified, 'hs_object_id']) {
        assert.ok(name in defaults.properties, `${family.type} default property ${name} missing`);
      }

      const page = await call('basicApi', 'getPage', 100, undefined, [family.key]);
      assert.ok(page.results.some((r) => r.id === rec.id && r.properties[family.key] === marker), 'listed');

      const found = await call('searchApi', 'doSearch', {
        filterGroups: [{ filters: [{ propertyName: family.key, operator: 'EQ', value: marker }] }],
        properties: [family.key],
      });
      assert.equal(found.total, 1);
      assert.deepEqual(ids(found.results), [rec.id]);

      const updated = await call('basicApi', 'update', rec.id, { properties: family.update });
      for (const [k, v] of Object.entries(family.update)) {
        assert.equal(updated.properties[k], v, `${k} after update`);
      }
      assert.equal(updated.properties[family.key], marker, 'other properties are kept');

      const archived = await call('basicApi', 'archiveWithHttpInfo', rec.id);
      assert.equal(archived.httpStatusCode, 204);
      await rejectsWith(call('basicApi', 'getById', rec.id), 404);
    });
  }

  it('object types are also accepted by objectTypeId and singular name', async () => {
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('t')}@example.com` } });
    const byTypeId = await client.crm.objects.basicApi.getById('0-1', c.id);
    assert.equal(byTypeId.id, c.id);
    const bySingular = await client.crm.objects.basicApi.getById('contact', c.id);
    assert.equal(bySingular.id, c.id);
    const schema = await client.crm.schemas.coreApi.getById(customType);
    const car = await client.crm.objects.basicApi.create(schema.fullyQualifiedName, { properties: { model: 'Beetle' } });
    const back = await client.crm.objects.basicApi.getById(customType, car.id, ['model']);
    assert.equal(back.properties.model, 'Beetle');
  });
});
