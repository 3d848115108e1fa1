'use strict';
// Associations: v4 record associations (basic and batch), v4 label definitions, the v3 batch
// API, and associations between contacts and every other object family.
//
// The Node client names the `from` field `_from` in its models, both in request inputs and in
// responses, so inputs below are written the way its users write them.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate } = require('./lib/assertions');

let kontor;
let client;
before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('associations'));
});
after(async () => {
  await kontor?.stop();
});

const v4 = () => client.crm.associations.v4;
const contact = (p = {}) => client.crm.contacts.basicApi.create({ properties: { email: `${unique('a')}@example.com`, ...p } });
const company = (p = {}) => client.crm.companies.basicApi.create({ properties: { name: unique('Co'), ...p } });
const typeIds = (row) => row.associationTypes.map((t) => t.typeId).sort((a, b) => a - b);
const toIds = (results) => results.map((r) => String(r.toObjectId)).sort();

describe('v4 basic API', () => {
  it('create (labelled) answers 201 with the labels between the pair', async () => {
    const [c, co] = [await contact(), await company()];
    const res = await v4().basicApi.createWithHttpInfo('contacts', c.id, 'companies', co.id, [
      { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 },
    ]);
    assert.equal(res.httpStatusCode, 201);
    assert.equal(res.data.fromObjectTypeId, '0-1');
    assert.equal(res.data.toObjectTypeId, '0-2');
    assert.equal(String(res.data.fromObjectId), c.id);
    assert.equal(String(res.data.toObjectId), co.id);
    assert.ok(res.data.labels.includes('Primary'), JSON.stringify(res.data.labels));

    const page = await v4().basicApi.getPage('contacts', c.id, 'companies');
    assert.equal(page.results.length, 1);
    assert.equal(String(page.results[0].toObjectId), co.id);
    const primary = page.results[0].associationTypes.find((t) => t.typeId === 1);
    assert.ok(primary, JSON.stringify(page.results[0].associationTypes));
    assert.equal(primary.category, 'HUBSPOT_DEFINED');
    assert.equal(primary.label, 'Primary');

    const back = await v4().basicApi.getPage('companies', co.id, 'contacts');
    assert.deepEqual(toIds(back.results), [c.id]);
    assert.ok(back.results[0].associationTypes.some((t) => t.typeId === 2), 'the inverse type (2) exists');
  });

  it('createDefault answers 200 with the default association spec', async () => {
    const [c, co] = [await contact(), await company()];
    const res = await v4().basicApi.createDefaultWithHttpInfo('contacts', c.id, 'companies', co.id);
    assert.equal(res.httpStatusCode, 200);
    assert.equal(res.data.status, 'COMPLETE');
    assertDate(res.data.startedAt, 'startedAt');
    const spec = res.data.results.find((r) => r.associationSpec.associationTypeId === 279);
    assert.ok(spec, JSON.stringify(res.data.results));
    assert.equal(spec._from.id, c.id);
    assert.equal(spec.to.id, co.id);
    assert.equal(spec.associationSpec.associationCategory, 'HUBSPOT_DEFINED');
    const page = await v4().basicApi.getPage('contacts', c.id, 'companies');
    assert.deepEqual(typeIds(page.results[0]), [279]);
    const back = await v4().basicApi.getPage('companies', co.id, 'contacts');
    assert.deepEqual(typeIds(back.results[0]), [280]);
  });

  it('getPage pages with limit and after', async () => {
    const c = await contact();
    const cos = [await company(), await company(), await company()];
    for (const co of cos) await v4().basicApi.createDefault('contacts', c.id, 'companies', co.id);
    const first = await v4().basicApi.getPage('contacts', c.id, 'companies', undefined, 2);
    assert.equal(first.results.length, 2);
    assert.ok(first.paging?.next?.after, 'a next page');
    const second = await v4().basicApi.getPage('contacts', c.id, 'companies', first.paging.next.after, 2);
    assert.equal(second.results.length, 1);
    assert.equal(second.paging, undefined);
    assert.deepEqual(toIds([...first.results, ...second.results]), cos.map((x) => x.id).sort());
  });

  it('archive answers 204 and removes every type between the pair, both ways', async () => {
    const [c, co] = [await contact(), await company()];
    await v4().basicApi.create('contacts', c.id, 'companies', co.id, [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }]);
    await v4().basicApi.createDefault('contacts', c.id, 'companies', co.id);
    const res = await v4().basicApi.archiveWithHttpInfo('contacts', c.id, 'companies', co.id);
    assert.equal(res.httpStatusCode, 204);
    assert.equal((await v4().basicApi.getPage('contacts', c.id, 'companies')).results.length, 0);
    assert.equal((await v4().basicApi.getPage('companies', co.id, 'contacts')).results.length, 0);
  });

  it('associations to an archived record are not listed', async () => {
    const c = await contact();
    const [keep, gone] = [await company(), await company()];
    await v4().basicApi.createDefault('contacts', c.id, 'companies', keep.id);
    await v4().basicApi.createDefault('contacts', c.id, 'companies', gone.id);
    await client.crm.companies.basicApi.archive(gone.id);
    const page = await v4().basicApi.getPage('contacts', c.id, 'companies');
    assert.deepEqual(toIds(page.results), [keep.id]);
    const got = await client.crm.contacts.basicApi.getById(c.id, undefined, undefined, ['companies']);
    assert.deepEqual([...new Set(got.associations.companies.results.map((a) => a.id))], [keep.id]);
  });

  it('associating with a record that does not exist is a 404', async () => {
    const c = await contact();
    await rejectsWith(v4().basicApi.createDefault('contacts', c.id, 'companies', '987654321'), 404);
    await rejectsWith(v4().basicApi.getPage('contacts', '987654321', 'companies'), 404);
  });

  it('an association type that does not fit the pair is a 400', async () => {
    const [c, co] = [await contact(), await company()];
    // 4 is contact -> deal.
    await rejectsWith(v4().basicApi.create('contacts', c.id, 'companies', co.id, [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 4 }]), 400);
  });
});

describe('v4 batch API', () => {
  it('create answers 201; getPage (batch read) returns every pair; archive answers 204', async () => {
    const cs = [await contact(), await contact()];
    const deals = [];
    for (let i = 0; i < 2; i++) {
      deals.push(await client.crm.deals.basicApi.create({ properties: { dealname: unique('deal'), pipeline: 'default', dealstage: 'qualifiedtobuy' } }));
    }
    const created = await v4().batchApi.createWithHttpInfo('contacts', 'deals', {
      inputs: cs.map((c, i) => ({ _from: { id: c.id }, to: { id: deals[i].id }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 4 }] })),
    });
    assert.equal(created.httpStatusCode, 201);
    assert.equal(created.data.status, 'COMPLETE');
    assert.equal(created.data.results.length, 2);
    for (const r of created.data.results) {
      assert.equal(r.fromObjectTypeId, '0-1');
      assert.equal(r.toObjectTypeId, '0-3');
      assert.ok(Array.isArray(r.labels));
    }

    const read = await v4().batchApi.getPageWithHttpInfo('contacts', 'deals', { inputs: cs.map((c) => ({ id: c.id })) });
    assert.equal(read.httpStatusCode, 200);
    assert.equal(read.data.results.length, 2);
    for (const [i, c] of cs.entries()) {
      const row = read.data.results.find((r) => r._from.id === c.id);
      assert.ok(row, `a result for contact ${c.id}`);
      assert.deepEqual(toIds(row.to), [deals[i].id]);
      assert.deepEqual(typeIds(row.to[0]), [4]);
    }

    const back = await v4().basicApi.getPage('deals', deals[0].id, 'contacts');
    assert.deepEqual(toIds(back.results), [cs[0].id]);
    assert.deepEqual(typeIds(back.results[0]), [3]);

    const archived = await v4().batchApi.archiveWithHttpInfo('contacts', 'deals', {
      inputs: [{ _from: { id: cs[0].id }, to: [{ id: deals[0].id }] }],
    });
    assert.equal(archived.httpStatusCode, 204);
    const after = await v4().batchApi.getPage('contacts', 'deals', { inputs: cs.map((c) => ({ id: c.id })) });
    assert.deepEqual(after.results.find((r) => r._from.id === cs[0].id)?.to ?? [], []);
    assert.deepEqual(toIds(after.results.find((r) => r._from.id === cs[1].id).to), [deals[1].id]);
  });

  it('getPage answers 207 for an id that does not exist', async () => {
    const c = await contact();
    const res = await v4().batchApi.getPageWithHttpInfo('contacts', 'companies', { inputs: [{ id: c.id }, { id: '987654321' }] });
    assert.equal(res.httpStatusCode, 207);
    assert.equal(res.data.numErrors, 1);
    assert.ok(res.data.errors[0].context.ids.includes('987654321'));
    assert.deepEqual(res.data.results.map((r) => r._from.id), [c.id]);
  });

  it('createDefault answers 200 with one default spec per pair', async () => {
    const c = await contact();
    const t = await client.crm.tickets.basicApi.create({ properties: { subject: 'Broken', hs_pipeline: '0', hs_pipeline_stage: '1' } });
    const res = await v4().batchApi.createDefaultWithHttpInfo('contacts', 'tickets', { inputs: [{ _from: { id: c.id }, to: { id: t.id } }] });
    assert.equal(res.httpStatusCode, 200);
    assert.ok(res.data.results.some((r) => r._from.id === c.id && r.to.id === t.id && r.associationSpec.associationTypeId === 15), JSON.stringify(res.data.results));
    const page = await v4().basicApi.getPage('tickets', t.id, 'contacts');
    assert.deepEqual(toIds(page.results), [c.id]);
  });

  it('archiveLabels removes one label and keeps the others', async () => {
    const [c, co] = [await contact(), await company()];
    await v4().basicApi.create('contacts', c.id, 'companies', co.id, [
      { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 },
      { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 },
    ]);
    const res = await v4().batchApi.archiveLabelsWithHttpInfo('contacts', 'companies', {
      inputs: [{ _from: { id: c.id }, to: { id: co.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }] }],
    });
    assert.equal(res.httpStatusCode, 204);
    const page = await v4().basicApi.getPage('contacts', c.id, 'companies');
    assert.equal(page.results.length, 1, 'the records are still associated (unlabelled)');
    assert.deepEqual(typeIds(page.results[0]), [279]);
    const back = await v4().basicApi.getPage('companies', co.id, 'contacts');
    assert.equal(back.results.length, 1, 'still associated the other way');
    assert.deepEqual(typeIds(back.results[0]), [280]);
  });
});

describe('v4 association labels (schema)', () => {
  it('create, getAll, use, update, remove a USER_DEFINED label', async () => {
    const defs = client.crm.associations.v4.schema.definitionsApi;
    const before = await defs.getAll('contacts', 'companies');
    assert.ok(before.results.some((l) => l.typeId === 1 && l.label === 'Primary' && l.category === 'HUBSPOT_DEFINED'));
    assert.ok(before.results.some((l) => l.typeId === 279));

    const name = unique('former_employer_');
    const created = await defs.create('contacts', 'companies', { label: 'Former employer', name, inverseLabel: 'Former employee' });
    const label = created.results.find((l) => l.label === 'Former employer');
    assert.ok(label, JSON.stringify(created.results));
    assert.equal(label.category, 'USER_DEFINED');
    assert.equal(typeof label.typeId, 'number');
    assert.ok((await defs.getAll('contacts', 'companies')).results.some((l) => l.typeId === label.typeId));
    const inverse = (await defs.getAll('companies', 'contacts')).results.find((l) => l.label === 'Former employee');
    assert.ok(inverse, 'the inverse label exists');
    assert.equal(inverse.category, 'USER_DEFINED');

    const [c, co] = [await contact(), await company()];
    const res = await v4().basicApi.create('contacts', c.id, 'companies', co.id, [{ associationCategory: 'USER_DEFINED', associationTypeId: label.typeId }]);
    assert.ok(res.labels.includes('Former employer'), JSON.stringify(res.labels));
    const back = await v4().basicApi.getPage('companies', co.id, 'contacts');
    assert.ok(back.results[0].associationTypes.some((t) => t.typeId === inverse.typeId && t.label === 'Former employee'));

    const upd = await defs.updateWithHttpInfo('contacts', 'companies', { associationTypeId: label.typeId, label: 'Ex-employer', inverseLabel: 'Ex-employee' });
    assert.equal(upd.httpStatusCode, 204);
    const renamed = (await defs.getAll('contacts', 'companies')).results.find((l) => l.typeId === label.typeId);
    assert.equal(renamed.label, 'Ex-employer');
    const page = await v4().basicApi.getPage('contacts', c.id, 'companies');
    assert.ok(page.results[0].associationTypes.some((t) => t.typeId === label.typeId && t.label === 'Ex-employer'));

    const removed = await defs.removeWithHttpInfo('contacts', 'companies', label.typeId);
    assert.equal(removed.httpStatusCode, 204);
    assert.ok(!(await defs.getAll('contacts', 'companies')).results.some((l) => l.typeId === label.typeId));
  });
});

describe('v3 batch associations', () => {
  it('types lists the association types between two object types', async () => {
    const res = await client.crm.associations.schema.typesApi.getAll('contacts', 'companies');
    assert.ok(res.results.length >= 1);
    for (const t of res.results) {
      assert.equal(typeof t.id, 'string');
      assert.equal(typeof t.name, 'string');
    }
    assert.ok(res.results.some((t) => t.name.startsWith('contact_to_company')));
  });

  it('create answers 201, read lists the pairs, archive answers 204', async () => {
    const cs = [await contact(), await contact()];
    const co = await company();
    const created = await client.crm.associations.batchApi.createWithHttpInfo('contacts', 'companies', {
      inputs: cs.map((c) => ({ _from: { id: c.id }, to: { id: co.id }, type: 'contact_to_company' })),
    });
    assert.equal(created.httpStatusCode, 201);
    assert.equal(created.data.status, 'COMPLETE');
    assert.equal(created.data.results.length, 2);
    for (const r of created.data.results) {
      assert.equal(r.to.id, co.id);
      assert.ok(cs.some((c) => c.id === r._from.id));
      assert.equal(r.type, 'contact_to_company');
    }

    const read = await client.crm.associations.batchApi.readWithHttpInfo('contacts', 'companies', { inputs: cs.map((c) => ({ id: c.id })) });
    assert.equal(read.httpStatusCode, 200);
    for (const c of cs) {
      const row = read.data.results.find((r) => r._from.id === c.id);
      assert.ok(row, `a result for ${c.id}`);
      assert.deepEqual([...new Set(row.to.map((t) => t.id))], [co.id]);
      assert.ok(row.to.every((t) => typeof t.type === 'string' && t.type.startsWith('contact_to_company')));
    }
    const fromCompany = await client.crm.associations.batchApi.read('companies', 'contacts', { inputs: [{ id: co.id }] });
    assert.deepEqual([...new Set(fromCompany.results[0].to.map((t) => t.id))].sort(), cs.map((c) => c.id).sort());

    const archived = await client.crm.associations.batchApi.archiveWithHttpInfo('contacts', 'companies', {
      inputs: [{ _from: { id: cs[0].id }, to: { id: co.id }, type: 'contact_to_company' }],
    });
    assert.equal(archived.httpStatusCode, 204);
    const after = await client.crm.associations.batchApi.read('contacts', 'companies', { inputs: cs.map((c) => ({ id: c.id })) });
    const first = after.results.find((r) => r._from.id === cs[0].id);
    assert.ok(!first || first.to.length === 0, `archived: ${JSON.stringify(first)}`);
    assert.deepEqual([...new Set(after.results.find((r) => r._from.id === cs[1].id).to.map((t) => t.id))], [co.id]);
  });

  it('read answers 207 for an id that does not exist', async () => {
    const c = await contact();
    const res = await client.crm.associations.batchApi.readWithHttpInfo('contacts', 'companies', { inputs: [{ id: c.id }, { id: '987654321' }] });
    assert.equal(res.httpStatusCode, 207);
    assert.equal(res.data.numErrors, 1);
  });
});

describe('associations across every object family', () => {
  let customType;
  const engagementTime = '2024-05-01T12:00:00.000Z';
  const makers = {
    companies: () => company(),
    deals: () => client.crm.deals.basicApi.create({ properties: { dealname: unique('d'), pipeline: 'default', dealstage: 'qualifiedtobuy' } }),
    tickets: () => client.crm.tickets.basicApi.create({ properties: { subject: unique('t'), hs_pipeline: '0', hs_pipeline_stage: '1' } }),
    products: () => client.crm.products.basicApi.create({ properties: { name: unique('p'), price: '1' } }),
    calls: () => client.crm.objects.calls.basicApi.create({ properties: { hs_timestamp: engagementTime, hs_call_title: 'c' } }),
    conversations: () => client.crm.objects.basicApi.create('conversations', { properties: { hs_timestamp: engagementTime, hs_conversation_subject: 's' } }),
    tasks: () => client.crm.objects.tasks.basicApi.create({ properties: { hs_timestamp: engagementTime, hs_task_subject: 't' } }),
    notes: () => client.crm.objects.notes.basicApi.create({ properties: { hs_timestamp: engagementTime, hs_note_body: 'n' } }),
    meetings: () => client.crm.objects.meetings.basicApi.create({ properties: { hs_timestamp: engagementTime, hs_meeting_title: 'm' } }),
    emails: () => client.crm.objects.emails.basicApi.create({ properties: { hs_timestamp: engagementTime, hs_email_subject: 'e' } }),
    custom: () => client.crm.objects.basicApi.create(customType, { properties: { label: 'x' } }),
  };

  before(async () => {
    const schema = await client.crm.schemas.coreApi.create({
      name: unique('widgets'),
      labels: { singular: 'Widget', plural: 'Widgets' },
      primaryDisplayProperty: 'label',
      requiredProperties: [],
      properties: [{ name: 'label', label: 'Label', type: 'string', fieldType: 'text' }],
      associatedObjects: ['CONTACT'],
    });
    customType = schema.objectTypeId;
  });

  for (const family of Object.keys(makers)) {
    it(`contacts <-> ${family}: v4 default, read back both ways, v3 read, archive`, async () => {
      const toType = family === 'custom' ? customType : family;
      const c = await contact();
      const other = await makers[family]();

      const res = await v4().basicApi.createDefault('contacts', c.id, toType, other.id);
      assert.ok(res.results.length >= 1);
      const specs = res.results.filter((r) => r._from.id === c.id && r.to.id === other.id);
      assert.equal(specs.length, 1, `one forward default spec: ${JSON.stringify(res.results)}`);
      const typeId = specs[0].associationSpec.associationTypeId;

      const fwd = await v4().basicApi.getPage('contacts', c.id, toType);
      assert.deepEqual(toIds(fwd.results), [other.id]);
      assert.ok(fwd.results[0].associationTypes.some((t) => t.typeId === typeId));
      const back = await v4().basicApi.getPage(toType, other.id, 'contacts');
      assert.deepEqual(toIds(back.results), [c.id]);

      const v3 = await client.crm.associations.batchApi.read('contacts', toType, { inputs: [{ id: c.id }] });
      assert.deepEqual([...new Set(v3.results[0].to.map((t) => t.id))], [other.id]);

      const withAssoc = await client.crm.contacts.basicApi.getById(c.id, undefined, undefined, [toType]);
      const listed = Object.values(withAssoc.associations ?? {}).flatMap((x) => x.results.map((r) => r.id));
      assert.ok(listed.includes(other.id), `getById associations=${toType}: ${JSON.stringify(withAssoc.associations)}`);

      await v4().basicApi.archive('contacts', c.id, toType, other.id);
      assert.equal((await v4().basicApi.getPage(toType, other.id, 'contacts')).results.length, 0);
    });
  }
});
