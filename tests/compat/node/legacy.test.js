'use strict';
// The calls sync tools make beyond the generated APIs, through the client's apiRequest:
// top-level search `filters`, /crm/v3/schemas, the v2 properties API, correlation ids and the
// 501 of a path kontor does not serve.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');

let kontor;
let client;

before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('legacy'));
});
after(async () => {
  await kontor?.stop();
});

const call = (method, path, body) => client.apiRequest({ method, path, body });

describe('legacy and alias endpoints', () => {
  it('narrows a search by top-level filters, paging as an incremental sync does', async () => {
    const made = await client.crm.contacts.batchApi.create({
      inputs: [0, 1, 2, 3, 4, 5].map((i) => ({ properties: { email: `sync${i}@legacy.example` } })),
    });
    const ids = made.results.map((r) => Number(r.id)).sort((a, b) => a - b);
    const found = [];
    let after;
    for (;;) {
      const body = {
        filters: [
          { propertyName: 'lastmodifieddate', operator: 'GTE', value: '0' },
          { propertyName: 'hs_object_id', operator: 'GTE', value: String(ids[3]) },
        ],
        sorts: [{ propertyName: 'hs_object_id', direction: 'ASCENDING' }],
        limit: 2,
        ...(after === undefined ? {} : { after: Number(after) }),
      };
      const r = await call('POST', '/crm/v3/objects/contacts/search', body);
      assert.equal(r.status, 200);
      const page = await r.json();
      assert.equal(page.total, 3);
      found.push(...page.results.map((x) => Number(x.id)));
      after = page.paging?.next?.after;
      if (after === undefined) break;
    }
    assert.deepEqual(found, ids.slice(3));
  });

  it('refuses a search field it does not know', async () => {
    const r = await call('POST', '/crm/v3/objects/contacts/search', { filtres: [] });
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.category, 'VALIDATION_ERROR');
    assert.match(body.message, /filtres/);
    assert.equal(body.correlationId, r.headers.get('x-hubspot-correlation-id'));
  });

  it('serves the schemas under /crm/v3/schemas as well', async () => {
    const a = await call('GET', '/crm/v3/schemas');
    const b = await call('GET', '/crm-object-schemas/v3/schemas');
    assert.equal(a.status, 200);
    assert.deepEqual(await a.json(), await b.json());
  });

  it('answers the v2 properties API with bare arrays', async () => {
    const r = await call('GET', '/properties/v2/companies/properties');
    assert.equal(r.status, 200);
    const props = await r.json();
    assert.ok(Array.isArray(props));
    const v3 = await client.crm.properties.coreApi.getAll('companies');
    const names = new Set(props.map((p) => p.name));
    for (const p of v3.results) assert.ok(names.has(p.name), p.name);
    const domain = props.find((p) => p.name === 'domain');
    assert.equal(domain.type, 'string');
    assert.equal(typeof domain.updatedAt, 'number');
    const groups = await (await call('GET', '/properties/v2/companies/groups')).json();
    assert.ok(Array.isArray(groups) && groups.length > 0);
    assert.ok(groups.every((g) => typeof g.displayName === 'string'));
  });

  it('tells the account details and its daily API usage', async () => {
    const details = await (await call('GET', '/account-info/v3/details')).json();
    assert.equal(typeof details.portalId, 'number');
    assert.equal(details.dataHostingLocation, 'na1');
    assert.equal(details.accountType, 'STANDARD');
    const usage = async () => (await (await call('GET', '/account-info/v3/api-usage/daily/private-apps')).json()).results[0];
    const before = await usage();
    await client.crm.contacts.basicApi.getPage();
    const after = await usage();
    assert.equal(after.currentUsage, before.currentUsage + 2);
    assert.equal(after.name, 'private-apps-api-calls-daily');
  });

  it('answers 501, with its correlation id, for a path it does not serve', async () => {
    const r = await call('GET', '/crm/v3/nothing/here');
    assert.equal(r.status, 501);
    const body = await r.json();
    assert.equal(body.category, 'NOT_IMPLEMENTED');
    assert.match(body.message, /\/crm\/v3\/nothing\/here/);
    assert.match(r.headers.get('x-hubspot-correlation-id'), /^[0-9a-f-]{36}$/);
    assert.equal(body.correlationId, r.headers.get('x-hubspot-correlation-id'));
  });
});
