'use strict';
// Search (POST /crm/v3/objects/{objectType}/search): every filter operator, AND within a
// filter group and OR across groups, the three sort forms, free-text query, property
// selection, paging with after, and total.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { rejectsWith, assertRecord, ids } = require('./lib/assertions');

let kontor;
let client;
// name -> record id
const id = {};
let before1910;
let startedAt;

const PEOPLE = [
  { key: 'ada', firstname: 'Ada', lastname: 'Lovelace', email: 'ada@analytical.example', num_employees: '5', lifecyclestage: 'lead', date_of_birth: '1815-12-10', jobtitle: 'Countess of Lovelace' },
  { key: 'grace', firstname: 'Grace', lastname: 'Hopper', email: 'grace@navy.example', num_employees: '10', lifecyclestage: 'customer', date_of_birth: '1906-12-09', jobtitle: 'Rear Admiral' },
  { key: 'alan', firstname: 'Alan', lastname: 'Turing', email: 'alan@bletchley.example', num_employees: '9', lifecyclestage: 'lead' },
  { key: 'katherine', firstname: 'Katherine', lastname: 'Johnson', email: 'katherine@nasa.example', num_employees: '100', lifecyclestage: 'opportunity', date_of_birth: '1918-08-26', jobtitle: 'Mathematician' },
  { key: 'edsger', firstname: 'Edsger', lastname: 'Dijkstra', email: 'edsger@tue.example', lifecyclestage: 'customer', jobtitle: 'Professor' },
];

before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('search'));
  startedAt = Date.now() - 1000;
  for (const { key, ...properties } of PEOPLE) {
    const r = await client.crm.contacts.basicApi.create({ properties });
    id[key] = r.id;
  }
  before1910 = Date.UTC(1910, 0, 1);
});
after(async () => {
  await kontor?.stop();
});

const search = (req) => client.crm.contacts.searchApi.doSearch(req);
const one = (propertyName, operator, extra = {}) => ({ filterGroups: [{ filters: [{ propertyName, operator, ...extra }] }], limit: 100 });
/** The people a search found, by key, sorted (order-insensitive checks). */
const keysOf = (res) => res.results.map((r) => Object.keys(id).find((k) => id[k] === r.id)).sort();
const keysInOrder = (res) => res.results.map((r) => Object.keys(id).find((k) => id[k] === r.id));

describe('filter operators', () => {
  it('EQ matches exact values, case-insensitively for strings', async () => {
    assert.deepEqual(keysOf(await search(one('lastname', 'EQ', { value: 'Hopper' }))), ['grace']);
    assert.deepEqual(keysOf(await search(one('lastname', 'EQ', { value: 'hopper' }))), ['grace']);
    assert.deepEqual(keysOf(await search(one('email', 'EQ', { value: 'alan@bletchley.example' }))), ['alan']);
    assert.deepEqual(keysOf(await search(one('lastname', 'EQ', { value: 'Nobody' }))), []);
  });

  it('EQ on a number property accepts a JSON number value', async () => {
    assert.deepEqual(keysOf(await search(one('num_employees', 'EQ', { value: 10 }))), ['grace']);
  });

  it('NEQ', async () => {
    assert.deepEqual(keysOf(await search(one('lifecyclestage', 'NEQ', { value: 'lead' }))), ['edsger', 'grace', 'katherine']);
  });

  it('LT, LTE, GT, GTE compare numbers numerically', async () => {
    assert.deepEqual(keysOf(await search(one('num_employees', 'LT', { value: '10' }))), ['ada', 'alan']);
    assert.deepEqual(keysOf(await search(one('num_employees', 'LTE', { value: '10' }))), ['ada', 'alan', 'grace']);
    assert.deepEqual(keysOf(await search(one('num_employees', 'GT', { value: '9' }))), ['grace', 'katherine']);
    assert.deepEqual(keysOf(await search(one('num_employees', 'GTE', { value: '9' }))), ['alan', 'grace', 'katherine']);
  });

  it('BETWEEN is inclusive on numbers', async () => {
    assert.deepEqual(keysOf(await search(one('num_employees', 'BETWEEN', { value: '9', highValue: '10' }))), ['alan', 'grace']);
  });

  it('BETWEEN on a date accepts ISO and epoch-ms bounds', async () => {
    const res = await search(one('date_of_birth', 'BETWEEN', { value: '1900-01-01', highValue: String(before1910) }));
    assert.deepEqual(keysOf(res), ['grace']);
  });

  it('datetime comparisons on createdate treat values as instants', async () => {
    const all = await search(one('createdate', 'GTE', { value: String(startedAt) }));
    assert.equal(all.total, PEOPLE.length);
    const iso = new Date(startedAt).toISOString();
    assert.equal((await search(one('createdate', 'LT', { value: iso }))).total, 0);
  });

  it('IN and NOT_IN use values', async () => {
    assert.deepEqual(keysOf(await search(one('lifecyclestage', 'IN', { values: ['customer', 'opportunity'] }))), ['edsger', 'grace', 'katherine']);
    assert.deepEqual(keysOf(await search(one('lifecyclestage', 'NOT_IN', { values: ['lead', 'customer'] }))), ['katherine']);
    assert.deepEqual(keysOf(await search(one('email', 'IN', { values: ['ada@analytical.example', 'edsger@tue.example'] }))), ['ada', 'edsger']);
  });

  it('HAS_PROPERTY and NOT_HAS_PROPERTY', async () => {
    assert.deepEqual(keysOf(await search(one('jobtitle', 'HAS_PROPERTY'))), ['ada', 'edsger', 'grace', 'katherine']);
    assert.deepEqual(keysOf(await search(one('jobtitle', 'NOT_HAS_PROPERTY'))), ['alan']);
    assert.deepEqual(keysOf(await search(one('date_of_birth', 'NOT_HAS_PROPERTY'))), ['alan', 'edsger']);
  });

  it('CONTAINS_TOKEN matches whole tokens and a * wildcard', async () => {
    assert.deepEqual(keysOf(await search(one('jobtitle', 'CONTAINS_TOKEN', { value: 'admiral' }))), ['grace']);
    assert.deepEqual(keysOf(await search(one('jobtitle', 'CONTAINS_TOKEN', { value: 'admir' }))), [], 'a partial token does not match');
    assert.deepEqual(keysOf(await search(one('email', 'CONTAINS_TOKEN', { value: '*@navy.example' }))), ['grace']);
  });

  it('NOT_CONTAINS_TOKEN', async () => {
    const res = await search({
      filterGroups: [{ filters: [
        { propertyName: 'jobtitle', operator: 'HAS_PROPERTY' },
        { propertyName: 'jobtitle', operator: 'NOT_CONTAINS_TOKEN', value: 'admiral' },
      ] }],
    });
    assert.deepEqual(keysOf(res), ['ada', 'edsger', 'katherine']);
  });
});

describe('filter groups', () => {
  it('filters in one group are ANDed', async () => {
    const res = await search({
      filterGroups: [{ filters: [
        { propertyName: 'lifecyclestage', operator: 'EQ', value: 'lead' },
        { propertyName: 'num_employees', operator: 'GT', value: '6' },
      ] }],
    });
    assert.deepEqual(keysOf(res), ['alan']);
  });

  it('several groups are ORed', async () => {
    const res = await search({
      filterGroups: [
        { filters: [{ propertyName: 'lastname', operator: 'EQ', value: 'Hopper' }] },
        { filters: [{ propertyName: 'lastname', operator: 'EQ', value: 'Turing' }] },
        { filters: [
          { propertyName: 'lifecyclestage', operator: 'EQ', value: 'opportunity' },
          { propertyName: 'num_employees', operator: 'LT', value: '50' },
        ] },
      ],
    });
    assert.deepEqual(keysOf(res), ['alan', 'grace']);
    assert.equal(res.total, 2);
  });
});

describe('sorting', () => {
  const withEmployees = [{ filters: [{ propertyName: 'num_employees', operator: 'HAS_PROPERTY' }] }];

  it('"prop" sorts ascending (numerically for numbers)', async () => {
    const res = await search({ filterGroups: withEmployees, sorts: ['num_employees'] });
    assert.deepEqual(keysInOrder(res), ['ada', 'alan', 'grace', 'katherine']);
  });

  it('"-prop" sorts descending', async () => {
    const res = await search({ filterGroups: withEmployees, sorts: ['-num_employees'] });
    assert.deepEqual(keysInOrder(res), ['katherine', 'grace', 'alan', 'ada']);
  });

  it('{propertyName, direction} objects', async () => {
    const desc = await search({ sorts: [{ propertyName: 'lastname', direction: 'DESCENDING' }] });
    assert.deepEqual(keysInOrder(desc), ['alan', 'ada', 'katherine', 'grace', 'edsger']);
    const asc = await search({ sorts: [{ propertyName: 'firstname', direction: 'ASCENDING' }] });
    assert.deepEqual(keysInOrder(asc), ['ada', 'alan', 'edsger', 'grace', 'katherine']);
  });
});

describe('query, properties, paging, total', () => {
  it('query searches the default text properties', async () => {
    assert.deepEqual(keysOf(await search({ query: 'Grace' })), ['grace']);
    assert.deepEqual(keysOf(await search({ query: 'lovelace' })), ['ada']);
    assert.deepEqual(keysOf(await search({ query: 'zebra' })), []);
  });

  it('query combines with filters', async () => {
    const res = await search({ query: 'Alan', filterGroups: [{ filters: [{ propertyName: 'lifecyclestage', operator: 'EQ', value: 'customer' }] }] });
    assert.equal(res.total, 0);
  });

  it('properties selects the returned properties', async () => {
    const res = await search({ ...one('lastname', 'EQ', { value: 'Hopper' }), properties: ['jobtitle', 'num_employees'] });
    const [r] = res.results;
    assertRecord(r);
    assert.equal(r.properties.jobtitle, 'Rear Admiral');
    assert.equal(r.properties.num_employees, '10');
    assert.equal(r.properties.firstname, undefined, 'firstname was not requested');
    assert.equal(r.associations, undefined);
  });

  it('without properties the default ones come back', async () => {
    const res = await search(one('lastname', 'EQ', { value: 'Hopper' }));
    const p = res.results[0].properties;
    assert.equal(p.firstname, 'Grace');
    assert.equal(p.email, 'grace@navy.example');
    assert.equal(p.jobtitle, undefined);
  });

  it('pages with limit and after; total counts every match', async () => {
    const seen = [];
    let after;
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 5, 'paging does not end');
      const res = await search({ limit: 2, after, sorts: ['firstname'] });
      assert.equal(res.total, PEOPLE.length);
      assert.ok(res.results.length <= 2);
      seen.push(...keysInOrder(res));
      if (!res.paging) break;
      after = res.paging.next.after;
      assert.equal(typeof after, 'string');
    }
    assert.deepEqual(seen, ['ada', 'alan', 'edsger', 'grace', 'katherine']);
  });

  it('after may be sent as the number 0, as in the client README', async () => {
    const res = await search({ limit: 2, after: 0, sorts: ['firstname'] });
    assert.deepEqual(keysInOrder(res), ['ada', 'alan']);
  });

  it('an empty request lists everything (default limit 10)', async () => {
    const res = await search({});
    assert.equal(res.total, PEOPLE.length);
    assert.deepEqual(ids(res.results).sort(), Object.values(id).sort());
    assert.equal(res.paging, undefined);
  });

  it('a limit above 200 is refused with 400', async () => {
    await rejectsWith(search({ limit: 201 }), 400);
    const ok = await search({ limit: 200 });
    assert.equal(ok.total, PEOPLE.length);
  });

  it('filtering on an unknown property is a 400', async () => {
    await rejectsWith(search(one('no_such_property', 'EQ', { value: 'x' })), 400);
  });
});

describe('search sees writes', () => {
  it('a cleared property no longer matches HAS_PROPERTY; an updated one matches its new value', async () => {
    const r = await client.crm.contacts.basicApi.create({ properties: { email: 'temp@scratch.example', jobtitle: 'Temp', lastname: 'Scratch' } });
    try {
      const has = one('email', 'EQ', { value: 'temp@scratch.example' });
      has.filterGroups[0].filters.push({ propertyName: 'jobtitle', operator: 'HAS_PROPERTY' });
      assert.equal((await search(has)).total, 1);
      await client.crm.contacts.basicApi.update(r.id, { properties: { jobtitle: '', lastname: 'Renamed' } });
      assert.equal((await search(has)).total, 0);
      assert.equal((await search(one('lastname', 'EQ', { value: 'Scratch' }))).total, 0);
      assert.deepEqual(ids((await search(one('lastname', 'EQ', { value: 'Renamed' }))).results), [r.id]);
    } finally {
      await client.crm.contacts.basicApi.archive(r.id);
    }
  });
});

describe('search on other object types', () => {
  it('deals: amount as a number, pipeline stage IN', async () => {
    const made = [];
    for (const [name, amount, stage] of [['Small', '500', 'qualifiedtobuy'], ['Big', '25000', 'closedwon'], ['Mid', '2500', 'closedlost']]) {
      made.push(await client.crm.deals.basicApi.create({ properties: { dealname: name, amount, pipeline: 'default', dealstage: stage } }));
    }
    const res = await client.crm.deals.searchApi.doSearch({
      filterGroups: [{ filters: [
        { propertyName: 'amount', operator: 'GTE', value: '1000' },
        { propertyName: 'dealstage', operator: 'IN', values: ['closedwon', 'closedlost'] },
      ] }],
      sorts: ['-amount'],
      properties: ['dealname', 'amount'],
    });
    assert.deepEqual(res.results.map((r) => r.properties.dealname), ['Big', 'Mid']);
    const byQuery = await client.crm.deals.searchApi.doSearch({ query: 'Small', properties: ['dealname'] });
    assert.deepEqual(byQuery.results.map((r) => r.properties.dealname), ['Small']);
  });

  it('tasks: hs_timestamp ranges', async () => {
    const early = await client.crm.objects.tasks.basicApi.create({ properties: { hs_timestamp: '2024-01-15T09:00:00.000Z', hs_task_subject: 'Early' } });
    await client.crm.objects.tasks.basicApi.create({ properties: { hs_timestamp: '2024-06-15T09:00:00.000Z', hs_task_subject: 'Late' } });
    const res = await client.crm.objects.tasks.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: 'hs_timestamp', operator: 'LT', value: '2024-03-01T00:00:00Z' }] }],
    });
    assert.deepEqual(ids(res.results), [early.id]);
  });
});
