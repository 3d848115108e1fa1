'use strict';
// Batch API (/crm/v3/objects/{objectType}/batch/*): read, create, update, upsert, archive,
// and 207 answers when only some inputs succeed.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate, assertRecord, ids, sortedIds } = require('./lib/assertions');

let kontor;
let client;
before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('batch'));
});
after(async () => {
  await kontor?.stop();
});

function assertBatch(res) {
  assert.equal(res.status, 'COMPLETE');
  assertDate(res.startedAt, 'startedAt');
  assertDate(res.completedAt, 'completedAt');
  assert.ok(res.completedAt.getTime() >= res.startedAt.getTime());
  assert.ok(Array.isArray(res.results));
}

async function contacts(n, extra = {}) {
  const res = await client.crm.contacts.batchApi.create({
    inputs: Array.from({ length: n }, (_, i) => ({ properties: { email: `${unique('b')}@example.com`, firstname: `F${i}`, ...extra } })),
  });
  return res.results;
}

describe('batch create', () => {
  it('answers 201 with every record and echoes objectWriteTraceId', async () => {
    const marker = unique('bc');
    const inputs = [0, 1, 2].map((i) => ({
      properties: { email: `${marker}-${i}@example.com`, firstname: `N${i}`, lastname: marker },
      objectWriteTraceId: `trace-${i}`,
    }));
    const res = await client.crm.contacts.batchApi.createWithHttpInfo({ inputs });
    assert.equal(res.httpStatusCode, 201);
    assertBatch(res.data);
    assert.equal(res.data.results.length, 3);
    assert.equal(res.data.errors, undefined);
    for (const r of res.data.results) {
      assertRecord(r);
      const i = Number(r.properties.firstname.slice(1));
      assert.equal(r.properties.email, `${marker}-${i}@example.com`);
      assert.equal(r.properties.lastname, marker);
      assert.equal(r.objectWriteTraceId, `trace-${i}`);
    }
    assert.equal(new Set(ids(res.data.results)).size, 3, 'distinct ids');
  });

  it('creates associations given on the inputs', async () => {
    const company = await client.crm.companies.basicApi.create({ properties: { name: unique('Co') } });
    const res = await client.crm.deals.batchApi.create({
      inputs: [{
        properties: { dealname: unique('deal'), pipeline: 'default', dealstage: 'qualifiedtobuy' },
        associations: [{ to: { id: company.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 341 }] }],
      }],
    });
    const deal = res.results[0];
    const page = await client.crm.associations.v4.basicApi.getPage('deals', deal.id, 'companies');
    assert.deepEqual(page.results.map((r) => String(r.toObjectId)), [company.id]);
  });

  it('works for a non-contact type (tickets)', async () => {
    const marker = unique('t');
    const res = await client.crm.tickets.batchApi.createWithHttpInfo({
      inputs: [1, 2].map((i) => ({ properties: { subject: `${marker} ${i}`, hs_pipeline: '0', hs_pipeline_stage: '1' } })),
    });
    assert.equal(res.httpStatusCode, 201);
    assert.deepEqual(res.data.results.map((r) => r.properties.subject).sort(), [`${marker} 1`, `${marker} 2`]);
  });
});

describe('batch read', () => {
  it('reads records by id with the requested properties and history', async () => {
    const made = await contacts(3, { jobtitle: 'Engineer' });
    await client.crm.contacts.basicApi.update(made[0].id, { properties: { jobtitle: 'Lead' } });
    const res = await client.crm.contacts.batchApi.readWithHttpInfo({
      inputs: made.map((r) => ({ id: r.id })),
      properties: ['jobtitle'],
      propertiesWithHistory: ['jobtitle'],
    });
    assert.equal(res.httpStatusCode, 200);
    assertBatch(res.data);
    assert.deepEqual(sortedIds(res.data.results), sortedIds(made));
    const first = res.data.results.find((r) => r.id === made[0].id);
    assert.equal(first.properties.jobtitle, 'Lead');
    assert.equal(first.properties.firstname, undefined, 'only requested properties');
    assert.deepEqual(first.propertiesWithHistory.jobtitle.map((h) => h.value), ['Lead', 'Engineer']);
  });

  it('reads by a unique property (idProperty=email)', async () => {
    const made = await contacts(2);
    const res = await client.crm.contacts.batchApi.read({
      inputs: made.map((r) => ({ id: r.properties.email })),
      idProperty: 'email',
      properties: ['email', 'firstname'],
      propertiesWithHistory: [],
    });
    assert.deepEqual(sortedIds(res.results), sortedIds(made));
    for (const r of res.results) {
      assert.equal(r.properties.email, made.find((m) => m.id === r.id).properties.email);
    }
  });

  it('answers 207 with the found records and an error naming the missing ids', async () => {
    const [one] = await contacts(1);
    const missing = '987654321';
    const res = await client.crm.contacts.batchApi.readWithHttpInfo({
      inputs: [{ id: one.id }, { id: missing }],
      properties: ['email'],
      propertiesWithHistory: [],
    });
    assert.equal(res.httpStatusCode, 207);
    assertBatch(res.data);
    assert.deepEqual(ids(res.data.results), [one.id]);
    assert.equal(res.data.numErrors, 1);
    const [err] = res.data.errors;
    assert.equal(err.status, 'error');
    assert.equal(err.category, 'OBJECT_NOT_FOUND');
    assert.equal(typeof err.message, 'string');
    assert.deepEqual(err.context.ids, [missing]);
  });

  it('archived=true reads archived records', async () => {
    const [gone] = await contacts(1);
    await client.crm.contacts.basicApi.archive(gone.id);
    const res = await client.crm.contacts.batchApi.read({ inputs: [{ id: gone.id }], properties: [], propertiesWithHistory: [] }, true);
    assert.deepEqual(ids(res.results), [gone.id]);
    assert.equal(res.results[0].archived, true);
    const live = await client.crm.contacts.batchApi.readWithHttpInfo({ inputs: [{ id: gone.id }], properties: [], propertiesWithHistory: [] }, false);
    assert.equal(live.httpStatusCode, 207);
    assert.equal(live.data.results.length, 0);
  });
});

describe('batch update', () => {
  it('updates by id and by email, echoing objectWriteTraceId', async () => {
    const made = await contacts(2, { lastname: 'Before' });
    const res = await client.crm.contacts.batchApi.updateWithHttpInfo({
      inputs: [
        { id: made[0].id, properties: { lastname: 'AfterById' }, objectWriteTraceId: 'u0' },
        { id: made[1].properties.email, idProperty: 'email', properties: { lastname: 'AfterByEmail' }, objectWriteTraceId: 'u1' },
      ],
    });
    assert.equal(res.httpStatusCode, 200);
    assertBatch(res.data);
    const byId = Object.fromEntries(res.data.results.map((r) => [r.id, r]));
    assert.equal(byId[made[0].id].properties.lastname, 'AfterById');
    assert.equal(byId[made[0].id].objectWriteTraceId, 'u0');
    assert.equal(byId[made[1].id].properties.lastname, 'AfterByEmail');
    assert.equal(byId[made[1].id].objectWriteTraceId, 'u1');
    const check = await client.crm.contacts.basicApi.getById(made[1].id, ['lastname', 'firstname']);
    assert.equal(check.properties.lastname, 'AfterByEmail');
    assert.equal(check.properties.firstname, made[1].properties.firstname, 'untouched properties are kept');
  });

  it('answers 207 when one id does not exist, updating the others', async () => {
    const [one] = await contacts(1);
    const missing = '987654322';
    const res = await client.crm.contacts.batchApi.updateWithHttpInfo({
      inputs: [
        { id: one.id, properties: { jobtitle: 'Partial' } },
        { id: missing, properties: { jobtitle: 'Nobody' } },
      ],
    });
    assert.equal(res.httpStatusCode, 207);
    assert.deepEqual(ids(res.data.results), [one.id]);
    assert.equal(res.data.results[0].properties.jobtitle, 'Partial');
    assert.equal(res.data.numErrors, 1);
    assert.equal(res.data.errors[0].category, 'OBJECT_NOT_FOUND');
    assert.ok(res.data.errors[0].context.ids.includes(missing));
    const check = await client.crm.contacts.basicApi.getById(one.id, ['jobtitle']);
    assert.equal(check.properties.jobtitle, 'Partial');
  });
});

describe('batch upsert', () => {
  it('updates existing records and creates new ones by email, flagging new', async () => {
    const [existing] = await contacts(1, { jobtitle: 'Old' });
    const newEmail = `${unique('new')}@example.com`;
    const res = await client.crm.contacts.batchApi.upsertWithHttpInfo({
      inputs: [
        { id: existing.properties.email, idProperty: 'email', properties: { jobtitle: 'Upserted' } },
        { id: newEmail, idProperty: 'email', properties: { firstname: 'Fresh', jobtitle: 'Created' } },
      ],
    });
    assert.equal(res.httpStatusCode, 200);
    assertBatch(res.data);
    assert.equal(res.data.results.length, 2);
    const old = res.data.results.find((r) => r.id === existing.id);
    assert.ok(old, 'the existing record is in the results');
    assert.equal(old._new, false);
    assert.equal(old.properties.jobtitle, 'Upserted');
    const fresh = res.data.results.find((r) => r.id !== existing.id);
    assert.equal(fresh._new, true);
    assert.equal(fresh.properties.jobtitle, 'Created');
    assert.equal(fresh.properties.email, newEmail, 'the idProperty value is stored on the new record');
    const got = await client.crm.contacts.basicApi.getById(newEmail, ['firstname'], undefined, undefined, false, 'email');
    assert.equal(got.id, fresh.id);
    assert.equal(got.properties.firstname, 'Fresh');
  });

  it('upserts companies by their unique domain', async () => {
    const domain = `${unique('d')}.example.com`;
    const first = await client.crm.companies.batchApi.upsert({ inputs: [{ id: domain, idProperty: 'domain', properties: { name: 'First' } }] });
    assert.equal(first.results[0]._new, true);
    const second = await client.crm.companies.batchApi.upsert({ inputs: [{ id: domain, idProperty: 'domain', properties: { name: 'Second' } }] });
    assert.equal(second.results[0]._new, false);
    assert.equal(second.results[0].id, first.results[0].id);
    assert.equal(second.results[0].properties.name, 'Second');
  });
});

describe('batch archive', () => {
  it('answers 204 and archives every input', async () => {
    const made = await contacts(3);
    const res = await client.crm.contacts.batchApi.archiveWithHttpInfo({ inputs: made.slice(0, 2).map((r) => ({ id: r.id })) });
    assert.equal(res.httpStatusCode, 204);
    const read = await client.crm.contacts.batchApi.readWithHttpInfo({ inputs: made.map((r) => ({ id: r.id })), properties: [], propertiesWithHistory: [] });
    assert.equal(read.httpStatusCode, 207);
    assert.deepEqual(ids(read.data.results), [made[2].id]);
    assert.deepEqual([...read.data.errors[0].context.ids].sort(), [made[0].id, made[1].id].sort());
    await rejectsWith(client.crm.contacts.basicApi.getById(made[0].id), 404);
  });

  it('works through the generic objects API (notes)', async () => {
    const made = await client.crm.objects.batchApi.create('notes', {
      inputs: [1, 2].map((i) => ({ properties: { hs_timestamp: '2024-05-01T00:00:00.000Z', hs_note_body: `note ${i}` } })),
    });
    await client.crm.objects.batchApi.archive('notes', { inputs: made.results.map((r) => ({ id: r.id })) });
    for (const r of made.results) await rejectsWith(client.crm.objects.basicApi.getById('notes', r.id), 404);
  });
});
