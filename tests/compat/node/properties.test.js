'use strict';
// Property definitions and property groups (/crm/v3/properties/{objectType}): core CRUD,
// batch read/create/archive, groups CRUD, and how custom properties behave on records.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate } = require('./lib/assertions');

let kontor;
let client;
before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('properties'));
});
after(async () => {
  await kontor?.stop();
});

const core = () => client.crm.properties.coreApi;
const batch = () => client.crm.properties.batchApi;
const groups = () => client.crm.properties.groupsApi;

function assertProperty(p) {
  for (const k of ['name', 'label', 'type', 'fieldType', 'groupName', 'description']) {
    assert.equal(typeof p[k], 'string', `${k} is a string on ${p.name}`);
  }
  assert.ok(Array.isArray(p.options), `options is an array on ${p.name}`);
  assert.equal(typeof p.modificationMetadata?.archivable, 'boolean');
  assert.equal(typeof p.modificationMetadata?.readOnlyValue, 'boolean');
  assert.equal(typeof p.modificationMetadata?.readOnlyDefinition, 'boolean');
}

describe('built-in properties', () => {
  it('getAll lists the HubSpot-defined contact properties', async () => {
    const res = await core().getAll('contacts');
    res.results.forEach(assertProperty);
    const byName = Object.fromEntries(res.results.map((p) => [p.name, p]));
    for (const name of ['email', 'firstname', 'lastname', 'createdate', 'lastmodifieddate', 'hs_object_id', 'lifecyclestage']) {
      assert.ok(byName[name], `${name} is listed`);
      assert.equal(byName[name].hubspotDefined, true);
    }
    assert.equal(byName.email.hasUniqueValue, true);
    assert.equal(byName.lifecyclestage.type, 'enumeration');
    assert.ok(byName.lifecyclestage.options.some((o) => o.value === 'customer' && typeof o.label === 'string'));
    assert.equal(byName.hs_object_id.modificationMetadata.readOnlyValue, true);
    assert.equal(byName.email.modificationMetadata.archivable, false);
  });

  it('getByName returns one property; an unknown name is a 404', async () => {
    const p = await core().getByName('deals', 'dealstage');
    assertProperty(p);
    assert.equal(p.name, 'dealstage');
    assert.equal(p.type, 'enumeration');
    assert.ok(p.options.some((o) => o.value === 'closedwon'));
    await rejectsWith(core().getByName('deals', 'no_such_property'), 404);
  });

  it('HubSpot-defined properties cannot be archived', async () => {
    await rejectsWith(core().archive('contacts', 'email'), 400);
    const still = await core().getByName('contacts', 'email');
    assert.equal(still.archived, false);
  });
});

describe('custom properties', () => {
  it('create answers 201 with the full definition; the value is usable on records', async () => {
    const name = unique('favourite_colour_');
    const res = await core().createWithHttpInfo('contacts', {
      name,
      label: 'Favourite colour',
      type: 'string',
      fieldType: 'text',
      groupName: 'contactinformation',
      description: 'What they like',
    });
    assert.equal(res.httpStatusCode, 201);
    const p = res.data;
    assertProperty(p);
    assert.equal(p.name, name);
    assert.equal(p.label, 'Favourite colour');
    assert.equal(p.type, 'string');
    assert.equal(p.fieldType, 'text');
    assert.equal(p.groupName, 'contactinformation');
    assert.equal(p.description, 'What they like');
    assert.equal(p.hubspotDefined, false);
    assert.equal(p.archived, false);
    assertDate(p.createdAt, 'createdAt');

    const all = await core().getAll('contacts');
    assert.ok(all.results.some((x) => x.name === name));

    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('p')}@example.com`, [name]: 'teal' } });
    const got = await client.crm.contacts.basicApi.getById(c.id, [name]);
    assert.equal(got.properties[name], 'teal');
    const found = await client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: name, operator: 'EQ', value: 'teal' }] }] });
    assert.deepEqual(found.results.map((r) => r.id), [c.id]);
  });

  it('a duplicate name is a 409', async () => {
    const name = unique('dup_');
    const def = { name, label: 'Dup', type: 'string', fieldType: 'text', groupName: 'contactinformation' };
    await core().create('contacts', def);
    await rejectsWith(core().create('contacts', def), 409);
  });

  it('enumeration options are enforced on records; update changes label and options', async () => {
    const name = unique('tier_');
    await core().create('companies', {
      name,
      label: 'Tier',
      type: 'enumeration',
      fieldType: 'select',
      groupName: 'companyinformation',
      options: [
        { label: 'Gold', value: 'gold', hidden: false, displayOrder: 0 },
        { label: 'Silver', value: 'silver', hidden: false, displayOrder: 1 },
      ],
    });
    const co = await client.crm.companies.basicApi.create({ properties: { name: 'Tiered', [name]: 'gold' } });
    assert.equal(co.properties[name], 'gold');
    await rejectsWith(client.crm.companies.basicApi.update(co.id, { properties: { [name]: 'bronze' } }), 400);

    const res = await core().updateWithHttpInfo('companies', name, {
      label: 'Customer tier',
      options: [
        { label: 'Gold', value: 'gold', hidden: false, displayOrder: 0 },
        { label: 'Silver', value: 'silver', hidden: false, displayOrder: 1 },
        { label: 'Bronze', value: 'bronze', hidden: false, displayOrder: 2 },
      ],
    });
    assert.equal(res.httpStatusCode, 200);
    assert.equal(res.data.label, 'Customer tier');
    assert.deepEqual(res.data.options.map((o) => o.value), ['gold', 'silver', 'bronze']);
    const again = await core().getByName('companies', name);
    assert.equal(again.label, 'Customer tier');
    const updated = await client.crm.companies.basicApi.update(co.id, { properties: { [name]: 'bronze' } });
    assert.equal(updated.properties[name], 'bronze');
  });

  it('multi-select (checkbox) values are joined with ;', async () => {
    const name = unique('tags_');
    await core().create('contacts', {
      name, label: 'Tags', type: 'enumeration', fieldType: 'checkbox', groupName: 'contactinformation',
      options: ['red', 'green', 'blue'].map((v, i) => ({ label: v, value: v, hidden: false, displayOrder: i })),
    });
    const c = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('m')}@example.com`, [name]: 'red;blue' } });
    const got = await client.crm.contacts.basicApi.getById(c.id, [name]);
    assert.deepEqual(got.properties[name].split(';').sort(), ['blue', 'red']);
    await rejectsWith(client.crm.contacts.basicApi.update(c.id, { properties: { [name]: 'red;purple' } }), 400);
  });

  it('a unique-value property rejects duplicates and serves as idProperty', async () => {
    const name = unique('badge_');
    const p = await core().create('contacts', {
      name, label: 'Badge', type: 'string', fieldType: 'text', groupName: 'contactinformation', hasUniqueValue: true,
    });
    assert.equal(p.hasUniqueValue, true);
    const a = await client.crm.contacts.basicApi.create({ properties: { email: `${unique('u')}@example.com`, [name]: 'B-1' } });
    const err = await rejectsWith(client.crm.contacts.basicApi.create({ properties: { email: `${unique('u')}@example.com`, [name]: 'B-1' } }), 400);
    assert.equal(err.body.category, 'VALIDATION_ERROR');
    const got = await client.crm.contacts.basicApi.getById('B-1', undefined, undefined, undefined, false, name);
    assert.equal(got.id, a.id);
  });

  it('archive answers 204; archived properties are listed only with archived=true', async () => {
    const name = unique('gone_');
    await core().create('deals', { name, label: 'Gone', type: 'number', fieldType: 'number', groupName: 'dealinformation' });
    const res = await core().archiveWithHttpInfo('deals', name);
    assert.equal(res.httpStatusCode, 204);
    await rejectsWith(core().getByName('deals', name), 404);
    const live = await core().getAll('deals');
    assert.ok(!live.results.some((p) => p.name === name));
    const archived = await core().getAll('deals', true);
    const p = archived.results.find((x) => x.name === name);
    assert.ok(p, 'listed with archived=true');
    assert.equal(p.archived, true);
    const one = await core().getByName('deals', name, true);
    assert.equal(one.archived, true);
    // Writing a value for an archived property is refused.
    await rejectsWith(client.crm.deals.basicApi.create({ properties: { dealname: 'x', [name]: '1' } }), 400);
  });

  it('works on a custom object type', async () => {
    const schema = await client.crm.schemas.coreApi.create({
      name: unique('boats'),
      labels: { singular: 'Boat', plural: 'Boats' },
      primaryDisplayProperty: 'hull',
      requiredProperties: [],
      properties: [{ name: 'hull', label: 'Hull', type: 'string', fieldType: 'text' }],
      associatedObjects: [],
    });
    const groupsOf = await groups().getAll(schema.objectTypeId);
    const groupName = groupsOf.results[0]?.name;
    assert.ok(groupName, 'a custom object has a property group');
    await core().create(schema.objectTypeId, { name: 'length_m', label: 'Length', type: 'number', fieldType: 'number', groupName });
    const boat = await client.crm.objects.basicApi.create(schema.objectTypeId, { properties: { hull: 'steel', length_m: '12.5' } });
    assert.equal(boat.properties.length_m, '12.5');
    const all = await core().getAll(schema.objectTypeId);
    assert.ok(all.results.some((p) => p.name === 'hull'));
    assert.ok(all.results.some((p) => p.name === 'length_m'));
  });
});

describe('properties batch API', () => {
  it('create answers 201, read answers 200, archive answers 204', async () => {
    const names = [unique('b1_'), unique('b2_')];
    const created = await batch().createWithHttpInfo('contacts', {
      inputs: names.map((name) => ({ name, label: name, type: 'string', fieldType: 'text', groupName: 'contactinformation' })),
    });
    assert.equal(created.httpStatusCode, 201);
    assert.equal(created.data.status, 'COMPLETE');
    assert.deepEqual(created.data.results.map((p) => p.name).sort(), [...names].sort());
    created.data.results.forEach(assertProperty);

    const read = await batch().readWithHttpInfo('contacts', { archived: false, inputs: [...names, 'email'].map((name) => ({ name })) });
    assert.equal(read.httpStatusCode, 200);
    assert.deepEqual(read.data.results.map((p) => p.name).sort(), [...names, 'email'].sort());

    const archived = await batch().archiveWithHttpInfo('contacts', { inputs: names.map((name) => ({ name })) });
    assert.equal(archived.httpStatusCode, 204);
    for (const name of names) await rejectsWith(core().getByName('contacts', name), 404);
  });

  it('read answers 207 when a name does not exist', async () => {
    const res = await batch().readWithHttpInfo('contacts', { archived: false, inputs: [{ name: 'email' }, { name: 'no_such_property' }] });
    assert.equal(res.httpStatusCode, 207);
    assert.deepEqual(res.data.results.map((p) => p.name), ['email']);
    assert.equal(res.data.numErrors, 1);
    assert.ok(res.data.errors[0].context.ids?.includes('no_such_property') || JSON.stringify(res.data.errors[0]).includes('no_such_property'));
  });
});

describe('property groups', () => {
  it('create (201), getAll, getByName, update (200), archive (204)', async () => {
    const name = unique('grp_');
    const res = await groups().createWithHttpInfo('contacts', { name, label: 'Research', displayOrder: 3 });
    assert.equal(res.httpStatusCode, 201);
    assert.equal(res.data.name, name);
    assert.equal(res.data.label, 'Research');
    assert.equal(res.data.displayOrder, 3);
    assert.equal(res.data.archived, false);

    const all = await groups().getAll('contacts');
    assert.ok(all.results.some((g) => g.name === name));
    assert.ok(all.results.some((g) => g.name === 'contactinformation'));

    const one = await groups().getByName('contacts', name);
    assert.equal(one.label, 'Research');

    const upd = await groups().updateWithHttpInfo('contacts', name, { label: 'Research & Development', displayOrder: 7 });
    assert.equal(upd.httpStatusCode, 200);
    assert.equal(upd.data.label, 'Research & Development');
    assert.equal(upd.data.displayOrder, 7);
    assert.equal((await groups().getByName('contacts', name)).label, 'Research & Development');

    const prop = await core().create('contacts', { name: unique('in_group_'), label: 'In group', type: 'string', fieldType: 'text', groupName: name });
    assert.equal(prop.groupName, name);
    assert.ok((await core().getAll('contacts')).results.some((p) => p.name === prop.name && p.groupName === name));
    await core().archive('contacts', prop.name);

    const del = await groups().archiveWithHttpInfo('contacts', name);
    assert.equal(del.httpStatusCode, 204);
    await rejectsWith(groups().getByName('contacts', name), 404);
    assert.ok(!(await groups().getAll('contacts')).results.some((g) => g.name === name));
  });

  it('a property in an unknown group is refused', async () => {
    await rejectsWith(core().create('contacts', { name: unique('orphan_'), label: 'Orphan', type: 'string', fieldType: 'text', groupName: 'no_such_group' }), 400);
  });
});
