'use strict';
// Custom object schemas (/crm-object-schemas/v3/schemas): create, get by id and by fully
// qualified name, list, update, association definitions, archive.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate } = require('./lib/assertions');

let kontor;
let client;
before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('schemas'));
});
after(async () => {
  await kontor?.stop();
});

const schemas = () => client.crm.schemas.coreApi;

function egg(name, extra = {}) {
  return {
    name,
    description: 'Vehicles in the fleet',
    labels: { singular: 'Car', plural: 'Cars' },
    primaryDisplayProperty: 'model',
    secondaryDisplayProperties: ['year'],
    requiredProperties: ['model'],
    searchableProperties: ['model'],
    properties: [
      { name: 'model', label: 'Model', type: 'string', fieldType: 'text' },
      { name: 'year', label: 'Year', type: 'number', fieldType: 'number' },
      { name: 'fuel', label: 'Fuel', type: 'enumeration', fieldType: 'select', options: [
        { label: 'Petrol', value: 'petrol', hidden: false, displayOrder: 0 },
        { label: 'Electric', value: 'electric', hidden: false, displayOrder: 1 },
      ] },
    ],
    associatedObjects: ['CONTACT'],
    ...extra,
  };
}

describe('schemas', () => {
  let schema;
  const name = unique('cars');

  it('create answers 201 with the whole schema', async () => {
    const res = await schemas().createWithHttpInfo(egg(name));
    assert.equal(res.httpStatusCode, 201);
    schema = res.data;
    assert.match(schema.id, /^\d+$/);
    assert.match(schema.objectTypeId, /^2-\d+$/);
    assert.equal(schema.name, name);
    assert.equal(typeof schema.fullyQualifiedName, 'string');
    assert.ok(schema.fullyQualifiedName.endsWith(`_${name}`), schema.fullyQualifiedName);
    assert.deepEqual({ ...schema.labels }, { singular: 'Car', plural: 'Cars' });
    assert.equal(schema.primaryDisplayProperty, 'model');
    assert.deepEqual(schema.requiredProperties, ['model']);
    assert.deepEqual(schema.searchableProperties, ['model']);
    const props = Object.fromEntries(schema.properties.map((p) => [p.name, p]));
    assert.equal(props.model?.type, 'string');
    assert.equal(props.year?.type, 'number');
    assert.deepEqual(props.fuel?.options.map((o) => o.value), ['petrol', 'electric']);
    for (const sys of ['hs_object_id', 'hs_createdate', 'hs_lastmodifieddate']) assert.ok(props[sys], `${sys} is defined`);
    for (const p of schema.properties) {
      assert.equal(typeof p.description, 'string', `${p.name}.description`);
      assert.ok(Array.isArray(p.options), `${p.name}.options`);
    }
    assert.ok(schema.associations.some((a) => a.fromObjectTypeId === schema.objectTypeId && a.toObjectTypeId === '0-1'),
      `an association definition to contacts: ${JSON.stringify(schema.associations)}`);
    assert.equal(schema.archived, false);
    assertDate(schema.createdAt, 'createdAt');
  });

  it('getById accepts the objectTypeId and the fullyQualifiedName', async () => {
    const byId = await schemas().getById(schema.objectTypeId);
    assert.equal(byId.id, schema.id);
    assert.equal(byId.name, name);
    const byName = await schemas().getById(schema.fullyQualifiedName);
    assert.equal(byName.objectTypeId, schema.objectTypeId);
    await rejectsWith(schemas().getById('2-99999999'), 404);
  });

  it('getAll lists it', async () => {
    const all = await schemas().getAll();
    const mine = all.results.find((s) => s.objectTypeId === schema.objectTypeId);
    assert.ok(mine);
    assert.equal(mine.name, name);
    assert.ok(Array.isArray(mine.properties) && mine.properties.length > 0);
  });

  it('records of the new type can be created, read and searched', async () => {
    const car = await client.crm.objects.basicApi.create(schema.objectTypeId, { properties: { model: 'Model T', year: '1908', fuel: 'petrol' } });
    assert.equal(car.properties.model, 'Model T');
    const byName = await client.crm.objects.basicApi.getById(schema.fullyQualifiedName, car.id, ['model', 'year']);
    assert.equal(byName.properties.year, '1908');
    const found = await client.crm.objects.searchApi.doSearch(schema.objectTypeId, {
      filterGroups: [{ filters: [{ propertyName: 'year', operator: 'LT', value: '1950' }] }],
      properties: ['model'],
    });
    assert.deepEqual(found.results.map((r) => r.properties.model), ['Model T']);
    await rejectsWith(client.crm.objects.basicApi.create(schema.objectTypeId, { properties: { model: 'x', fuel: 'steam' } }), 400);
  });

  it('update answers 200 with the changed definition', async () => {
    const res = await schemas().updateWithHttpInfo(schema.objectTypeId, {
      labels: { singular: 'Automobile', plural: 'Automobiles' },
      searchableProperties: ['model', 'year'],
    });
    assert.equal(res.httpStatusCode, 200);
    assert.equal(res.data.labels.singular, 'Automobile');
    assert.equal(res.data.labels.plural, 'Automobiles');
    assert.equal(res.data.objectTypeId, schema.objectTypeId);
    const again = await schemas().getById(schema.objectTypeId);
    assert.equal(again.labels.plural, 'Automobiles');
    assert.deepEqual([...again.searchableProperties].sort(), ['model', 'year']);
    assert.equal(again.name, name, 'the name does not change');
  });

  it('createAssociation answers 201 with a definition usable for record associations', async () => {
    const res = await schemas().createAssociationWithHttpInfo(schema.objectTypeId, {
      fromObjectTypeId: schema.objectTypeId,
      toObjectTypeId: '0-2',
      name: `${name}_to_company`,
    });
    assert.equal(res.httpStatusCode, 201);
    const def = res.data;
    assert.match(def.id, /^\d+$/);
    assert.equal(def.fromObjectTypeId, schema.objectTypeId);
    assert.equal(def.toObjectTypeId, '0-2');

    const again = await schemas().getById(schema.objectTypeId);
    assert.ok(again.associations.some((a) => a.toObjectTypeId === '0-2' && a.id === def.id), JSON.stringify(again.associations));

    const labels = await client.crm.associations.v4.schema.definitionsApi.getAll(schema.objectTypeId, 'companies');
    assert.ok(labels.results.some((l) => String(l.typeId) === def.id), JSON.stringify(labels.results));

    const car = await client.crm.objects.basicApi.create(schema.objectTypeId, { properties: { model: 'Beetle' } });
    const co = await client.crm.companies.basicApi.create({ properties: { name: 'Volkswagen' } });
    await client.crm.associations.v4.basicApi.create(schema.objectTypeId, car.id, 'companies', co.id, [
      { associationCategory: labels.results.find((l) => String(l.typeId) === def.id).category, associationTypeId: Number(def.id) },
    ]);
    const page = await client.crm.associations.v4.basicApi.getPage(schema.objectTypeId, car.id, 'companies');
    assert.deepEqual(page.results.map((r) => String(r.toObjectId)), [co.id]);
    const back = await client.crm.associations.v4.basicApi.getPage('companies', co.id, schema.objectTypeId);
    assert.deepEqual(back.results.map((r) => String(r.toObjectId)), [car.id]);
  });

  it('an invalid or taken name is refused', async () => {
    await rejectsWith(schemas().create(egg('9lives')), 400);
    await rejectsWith(schemas().create(egg('has-dash')), 400);
    await rejectsWith(schemas().create(egg(name)), 409);
  });
});

describe('archiving a schema', () => {
  it('answers 204; the schema is then gone from get and getAll', async () => {
    const s = await schemas().create(egg(unique('tmp')));
    const res = await schemas().archiveWithHttpInfo(s.objectTypeId);
    assert.equal(res.httpStatusCode, 204);
    await rejectsWith(schemas().getById(s.objectTypeId), 404);
    const all = await schemas().getAll();
    assert.ok(!all.results.some((x) => x.objectTypeId === s.objectTypeId));
    const archived = await schemas().getAll(true);
    assert.ok(archived.results.some((x) => x.objectTypeId === s.objectTypeId && x.archived === true));
  });

  it('is refused while the type still has live records', async () => {
    const s = await schemas().create(egg(unique('busy')));
    const rec = await client.crm.objects.basicApi.create(s.objectTypeId, { properties: { model: 'Busy' } });
    await rejectsWith(schemas().archive(s.objectTypeId), 400);
    assert.equal((await schemas().getById(s.objectTypeId)).objectTypeId, s.objectTypeId);
    assert.equal((await client.crm.objects.basicApi.getById(s.objectTypeId, rec.id, ['model'])).properties.model, 'Busy');
    await client.crm.objects.basicApi.archive(s.objectTypeId, rec.id);
    await schemas().archive(s.objectTypeId);
    await rejectsWith(schemas().getById(s.objectTypeId), 404);
  });

  it('archiveAssociation answers 204 and removes the definition', async () => {
    const s = await schemas().create(egg(unique('assoc'), { associatedObjects: [] }));
    const def = await schemas().createAssociation(s.objectTypeId, { fromObjectTypeId: s.objectTypeId, toObjectTypeId: '0-3', name: 'to_deal' });
    const res = await schemas().archiveAssociationWithHttpInfo(s.objectTypeId, def.id);
    assert.equal(res.httpStatusCode, 204);
    const again = await schemas().getById(s.objectTypeId);
    assert.ok(!again.associations.some((a) => a.id === def.id), JSON.stringify(again.associations));
  });
});
