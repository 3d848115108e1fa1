'use strict';
// Imports (/crm/v3/imports/): a CSV file and its importRequest sent as multipart/form-data,
// run as a background job polled with getById, its rejected rows read with getErrors.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  PublicImportErrorErrorTypeEnum,
  PublicImportErrorObjectTypeEnum,
  PublicImportResponseStateEnum,
} = require('@hubspot/api-client/lib/codegen/crm/imports');
const { startKontor } = require('./lib/kontor');
const { unique, rejectsWith, assertDate } = require('./lib/assertions');

const CONTACTS = '0-1';
const COMPANIES = '0-2';

let kontor;
before(async () => {
  kontor = await startKontor();
});
after(async () => {
  await kontor?.stop();
});

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const email = (p = 'i') => `${unique(p)}@example.com`;

function mapping(typeId, columnName, propertyName, idColumnType) {
  const m = { columnObjectTypeId: typeId, columnName, propertyName };
  if (idColumnType) m.idColumnType = idColumnType;
  return m;
}

function importRequest(name, fileName, importOperations, columnMappings) {
  return JSON.stringify({
    name,
    dateFormat: 'YEAR_MONTH_DAY',
    marketableContactImport: false,
    importOperations,
    files: [{ fileName, fileFormat: 'CSV', fileImportPage: { hasHeader: true, columnMappings } }],
  });
}

const csv = (lines) => Buffer.from(`${lines.join('\n')}\n`, 'utf8');

/** Polls getById until the import has left STARTED/PROCESSING. */
async function waitDone(client, id, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const imp = await client.crm.imports.coreApi.getById(Number(id));
    assert.ok(Object.values(PublicImportResponseStateEnum).includes(imp.state), `state ${imp.state}`);
    if (imp.state !== 'STARTED' && imp.state !== 'PROCESSING') return imp;
    assert.ok(Date.now() < deadline, `import ${id} still ${imp.state}`);
    await delay(100);
  }
}

async function runImport(client, fileName, lines, ops, mappings, name = unique('import ')) {
  const started = await client.crm.imports.coreApi.create(
    { data: csv(lines), name: fileName },
    importRequest(name, fileName, ops, mappings),
  );
  const done = await waitDone(client, started.id);
  assert.equal(done.state, 'DONE');
  return done;
}

const getErrors = (client, id, ...args) => client.crm.imports.publicImportsApi.getErrors(Number(id), ...args);

const CONTACT_MAPPINGS = [
  mapping(CONTACTS, 'Email', 'email', 'HUBSPOT_ALTERNATE_ID'),
  mapping(CONTACTS, 'First Name', 'firstname'),
  mapping(CONTACTS, 'Last Name', 'lastname'),
  mapping(CONTACTS, 'Annual Revenue', 'annualrevenue'),
  mapping(CONTACTS, 'Owner', 'hubspot_owner_id'),
];

const contactByEmail = (client, e) =>
  client.crm.contacts.basicApi.getById(e, ['email', 'firstname', 'lastname', 'annualrevenue', 'hubspot_owner_id'], undefined, undefined, false, 'email');

describe('a contacts UPSERT keyed by e-mail', () => {
  let client;
  let started;
  let existing;
  let ownerId;
  const emails = {};
  let lines;
  const name = unique('May contacts ');
  before(async () => {
    let accountId;
    ({ client, id: accountId } = await kontor.account('imports-upsert'));
    const ownerEmail = email('owner');
    await kontor.user(accountId, { email: ownerEmail, firstName: 'Olive', lastName: 'Owner' });
    ownerId = (await client.crm.owners.ownersApi.getPage(ownerEmail)).results[0].id;
    emails.existing = email('existing');
    existing = await client.crm.contacts.basicApi.create({
      properties: { email: emails.existing, firstname: 'Old', lastname: 'Keep', annualrevenue: '1' },
    });
    for (const k of ['new1', 'new2', 'new3', 'new4']) emails[k] = email(k);
    lines = [
      'Email,First Name,Last Name,Annual Revenue,Owner', // line 1
      `${emails.new1},Ann,Alpha,100,${ownerId}`, // 2: created
      `${emails.existing},New,,250,`, // 3: updated, the empty last name left alone
      'not-an-email,Bad,Email,5,', // 4: INVALID_EMAIL
      `${emails.new2},Cy,Gamma,abc,`, // 5: COULD_NOT_PARSE_NUMBER
      `${emails.new3},Dee,Delta,7,987654321`, // 6: COULD_NOT_FIND_OWNER
      `${emails.new4},Eve,,,`, // 7: created
    ];
    started = await client.crm.imports.coreApi.create(
      { data: csv(lines), name: 'contacts.csv' },
      importRequest(name, 'contacts.csv', { [CONTACTS]: 'UPSERT' }, CONTACT_MAPPINGS),
    );
  });

  it('create answers with the queued import', () => {
    assert.match(started.id, /^\d+$/);
    assert.ok(['STARTED', 'PROCESSING', 'DONE'].includes(started.state), started.state);
    assert.deepEqual(started.mappedObjectTypeIds, [CONTACTS]);
    assert.equal(started.importName, name);
    assert.equal(started.importSource, 'API');
    assert.equal(started.optOutImport, false);
    assertDate(started.createdAt, 'createdAt');
    assertDate(started.updatedAt, 'updatedAt');
    assert.deepEqual(started.importRequestJson.importOperations, { [CONTACTS]: 'UPSERT' });
  });

  it('finishes with exact counters, and the records say what happened', async () => {
    const done = await waitDone(client, started.id);
    assert.equal(done.state, 'DONE');
    assert.equal(done.id, started.id);
    const c = done.metadata.counters;
    assert.equal(c.TOTAL_ROWS, 6);
    assert.equal(c.CREATED_OBJECTS, 2);
    assert.equal(c.UPDATED_OBJECTS, 1);
    assert.equal(c.ERRORS, 3);
    assert.ok(Array.isArray(done.metadata.fileIds));
    assert.deepEqual(done.metadata.objectLists, []);

    const new1 = await contactByEmail(client, emails.new1);
    assert.equal(new1.properties.firstname, 'Ann');
    assert.equal(new1.properties.lastname, 'Alpha');
    assert.equal(new1.properties.annualrevenue, '100');
    assert.equal(new1.properties.hubspot_owner_id, ownerId);
    const updated = await contactByEmail(client, emails.existing);
    assert.equal(updated.id, existing.id);
    assert.equal(updated.properties.firstname, 'New');
    assert.equal(updated.properties.lastname, 'Keep');
    assert.equal(updated.properties.annualrevenue, '250');
    for (const e of [emails.new2, emails.new3]) {
      await rejectsWith(contactByEmail(client, e), 404);
    }
    const all = await client.crm.contacts.basicApi.getPage(100, undefined, ['email']);
    assert.deepEqual(
      all.results.map((r) => r.properties.email).sort(),
      [emails.existing, emails.new1, emails.new4].sort(),
    );
  });

  it('getErrors lists each rejected row with its line, values and message', async () => {
    await waitDone(client, started.id);
    const res = await getErrors(client, started.id, undefined, undefined, true, true);
    assert.equal(res.paging, undefined);
    const byLine = new Map(res.results.map((e) => [e.sourceData.lineNumber, e]));
    assert.deepEqual([...byLine.keys()].sort(), [4, 5, 6]);
    const expected = { 4: 'INVALID_EMAIL', 5: 'COULD_NOT_PARSE_NUMBER', 6: 'COULD_NOT_FIND_OWNER' };
    const now = Date.now() + 1000;
    for (const [line, e] of byLine) {
      assert.equal(e.errorType, expected[line]);
      assert.ok(Object.values(PublicImportErrorErrorTypeEnum).includes(e.errorType));
      assert.ok(Object.values(PublicImportErrorObjectTypeEnum).includes(e.objectType));
      assert.equal(e.objectType, 'CONTACT');
      assert.equal(typeof e.createdAt, 'number');
      assert.ok(e.createdAt > now - 600_000 && e.createdAt < now, `createdAt ${e.createdAt}`);
      assert.equal(typeof e.id, 'string');
      assert.deepEqual(e.sourceData.rowData, lines[line - 1].split(','));
      assert.equal(typeof e.sourceData.fileId, 'number');
      assert.equal(typeof e.errorMessage, 'string');
      assert.ok(e.errorMessage.length > 0);
    }
    assert.equal(byLine.get(4).invalidValue, 'not-an-email');
    assert.equal(byLine.get(5).invalidValue, 'abc');
    assert.equal(byLine.get(5).knownColumnNumber, 4);
    assert.equal(byLine.get(6).invalidValue, '987654321');

    const bare = await getErrors(client, started.id, undefined, undefined, false, false);
    assert.deepEqual(bare.results.map((e) => e.id), res.results.map((e) => e.id));
    for (const e of bare.results) {
      assert.equal(e.errorMessage, undefined);
      assert.deepEqual(e.sourceData.rowData, []);
    }

    const first = await getErrors(client, started.id, undefined, 2);
    assert.equal(first.results.length, 2);
    const rest = await getErrors(client, started.id, first.paging.next.after, 2);
    assert.equal(rest.paging, undefined);
    assert.deepEqual([...first.results, ...rest.results].map((e) => e.id), res.results.map((e) => e.id));
  });
});

describe('getPage', () => {
  it('lists imports newest first and pages with after/limit', async () => {
    const { client } = await kontor.account('imports-list');
    const names = [];
    for (let i = 0; i < 3; i++) {
      const name = unique(`list ${i} `);
      names.push(name);
      await runImport(client, `l${i}.csv`, ['Email,First Name', `${email('l')},L${i}`], { [CONTACTS]: 'UPSERT' }, CONTACT_MAPPINGS.slice(0, 2), name);
    }
    const page = await client.crm.imports.coreApi.getPage();
    assert.deepEqual(page.results.map((i) => i.importName), [...names].reverse());
    assert.equal(page.paging?.next, undefined);

    const first = await client.crm.imports.coreApi.getPage(undefined, undefined, 2);
    assert.deepEqual(first.results.map((i) => i.importName), [names[2], names[1]]);
    const after = first.paging.next.after;
    assert.equal(typeof after, 'string');
    const second = await client.crm.imports.coreApi.getPage(after, undefined, 2);
    assert.deepEqual(second.results.map((i) => i.importName), [names[0]]);
    assert.equal(second.paging?.next, undefined);
  });
});

describe('rows that cannot be applied', () => {
  let client;
  before(async () => {
    ({ client } = await kontor.account('imports-rejects'));
  });

  it('CREATE with record IDs: one in the recycle bin, one never issued, one live', async () => {
    const binned = await client.crm.companies.basicApi.create({ properties: { name: 'Binned Co', domain: `${unique('b')}.example.com` } });
    const live = await client.crm.companies.basicApi.create({ properties: { name: 'Live Co', domain: `${unique('l')}.example.com` } });
    await client.crm.companies.basicApi.archive(binned.id);
    const never = String(Number(live.id) + 1_000_000);
    const freshDomain = `${unique('fresh')}.example.com`;
    const done = await runImport(client, 'companies.csv', [
      'Record ID,Name,Domain',
      `${binned.id},Binned Again,`,
      `${never},Never Issued,`,
      `,Fresh Co,${freshDomain}`,
      `${live.id},Live Again,`,
    ], { [COMPANIES]: 'CREATE' }, [
      mapping(COMPANIES, 'Record ID', 'hs_object_id', 'HUBSPOT_OBJECT_ID'),
      mapping(COMPANIES, 'Name', 'name'),
      mapping(COMPANIES, 'Domain', 'domain'),
    ]);
    const c = done.metadata.counters;
    assert.deepEqual([c.CREATED_OBJECTS, c.UPDATED_OBJECTS, c.ERRORS], [1, 0, 3]);
    const errs = new Map((await getErrors(client, done.id, undefined, undefined, true, true)).results.map((e) => [e.sourceData.lineNumber, e]));
    assert.deepEqual([...errs.keys()].sort(), [2, 3, 5]);
    assert.match(errs.get(2).errorMessage, /recycle bin/);
    assert.equal(errs.get(2).objectType, 'COMPANY');
    assert.equal(errs.get(3).errorType, 'INVALID_RECORD_ID');
    assert.ok(errs.get(3).errorMessage.includes(never));
    assert.equal(errs.get(5).errorType, 'CREATE_ONLY_IMPORT');
    for (const e of errs.values()) {
      assert.ok(Object.values(PublicImportErrorErrorTypeEnum).includes(e.errorType), e.errorType);
    }

    await rejectsWith(client.crm.companies.basicApi.getById(binned.id), 404);
    assert.equal((await client.crm.companies.basicApi.getById(live.id)).properties.name, 'Live Co');
    const fresh = await client.crm.companies.basicApi.getById(freshDomain, ['name'], undefined, undefined, false, 'domain');
    assert.equal(fresh.properties.name, 'Fresh Co');
    assert.ok(![binned.id, live.id, never].includes(fresh.id));
  });

  it('UPDATE only: an unknown e-mail is rejected (UPDATE_ONLY_IMPORT)', async () => {
    const known = email('known');
    const rec = await client.crm.contacts.basicApi.create({ properties: { email: known, firstname: 'Before' } });
    const unknown = email('unknown');
    const done = await runImport(client, 'update.csv', ['Email,First Name', `${known},After`, `${unknown},Nobody`],
      { [CONTACTS]: 'UPDATE' }, CONTACT_MAPPINGS.slice(0, 2));
    const c = done.metadata.counters;
    assert.deepEqual([c.CREATED_OBJECTS, c.UPDATED_OBJECTS, c.ERRORS], [0, 1, 1]);
    const { results } = await getErrors(client, done.id, undefined, undefined, true, true);
    assert.equal(results.length, 1);
    assert.equal(results[0].errorType, 'UPDATE_ONLY_IMPORT');
    assert.equal(results[0].sourceData.lineNumber, 3);
    assert.deepEqual(results[0].sourceData.rowData, [unknown, 'Nobody']);
    const got = await contactByEmail(client, known);
    assert.equal(got.id, rec.id);
    assert.equal(got.properties.firstname, 'After');
    await rejectsWith(contactByEmail(client, unknown), 404);
  });
});

describe('bad requests answer 400 with the error envelope', () => {
  let client;
  before(async () => {
    ({ client } = await kontor.account('imports-bad'));
  });
  const file = () => ({ data: csv(['Email,First Name,Name', 'a@example.com,A,Acme']), name: 'bad.csv' });
  const good = [mapping(CONTACTS, 'Email', 'email'), mapping(CONTACTS, 'First Name', 'firstname')];
  const cases = {
    'no importRequest part': () => client.crm.imports.coreApi.create(file()),
    'no file': () => client.crm.imports.coreApi.create(undefined, importRequest('nofile', 'bad.csv', { [CONTACTS]: 'UPSERT' }, good)),
    'two object types': () => client.crm.imports.coreApi.create(file(), importRequest('two', 'bad.csv',
      { [CONTACTS]: 'UPSERT', [COMPANIES]: 'UPSERT' }, [...good, mapping(COMPANIES, 'Name', 'name')])),
    'an unknown property': () => client.crm.imports.coreApi.create(file(), importRequest('unknown', 'bad.csv',
      { [CONTACTS]: 'UPSERT' }, [...good, mapping(CONTACTS, 'Name', 'no_such_property')])),
    'UPDATE without a key column': () => client.crm.imports.coreApi.create(file(), importRequest('upd', 'bad.csv',
      { [CONTACTS]: 'UPDATE' }, [mapping(CONTACTS, 'Email', null), mapping(CONTACTS, 'First Name', 'firstname')])),
    'importRequest that is not JSON': () => client.crm.imports.coreApi.create(file(), '{not json'),
  };
  for (const [what, call] of Object.entries(cases)) {
    it(what, async () => {
      const err = await rejectsWith(call(), 400);
      assert.equal(err.body.category, 'VALIDATION_ERROR');
      if (what === 'an unknown property') assert.match(err.body.message, /no_such_property/);
      assert.deepEqual((await client.crm.imports.coreApi.getPage()).results, []);
    });
  }

  it('unknown import ids answer 404', async () => {
    await rejectsWith(client.crm.imports.coreApi.getById(987654), 404);
    await rejectsWith(getErrors(client, 987654), 404);
    await rejectsWith(client.crm.imports.coreApi.cancel(987654), 404);
  });
});

describe('cancel', () => {
  it('a finished import answers 409 and stays DONE', async () => {
    const { client } = await kontor.account('imports-cancel-done');
    const done = await runImport(client, 'one.csv', ['Email,First Name', `${email('c')},C`], { [CONTACTS]: 'UPSERT' }, CONTACT_MAPPINGS.slice(0, 2));
    const err = await rejectsWith(client.crm.imports.coreApi.cancel(Number(done.id)), 409);
    assert.equal(err.body.category, 'CONFLICT');
    assert.equal((await client.crm.imports.coreApi.getById(Number(done.id))).state, 'DONE');
  });

  it('a running import stops: CANCELED, part of the rows done, counts consistent', async () => {
    const { client } = await kontor.account('imports-cancel-running');
    const rows = 40_000;
    const marker = unique('big');
    const lines = ['Email,First Name'];
    for (let i = 0; i < rows; i++) lines.push(`${marker}${i}@example.com,Row${i}`);
    const started = await client.crm.imports.coreApi.create(
      { data: csv(lines), name: 'big.csv' },
      importRequest(marker, 'big.csv', { [CONTACTS]: 'CREATE' }, CONTACT_MAPPINGS.slice(0, 2)),
    );
    // Cancel once the job has committed its first batches.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const running = await client.crm.imports.coreApi.getById(Number(started.id));
      assert.ok(['STARTED', 'PROCESSING'].includes(running.state),
        `finished before it could be canceled: ${JSON.stringify(running.metadata.counters)}`);
      if (running.metadata.counters.PROCESSED_ROWS > 0) break;
      assert.ok(Date.now() < deadline);
      await delay(20);
    }
    const res = await client.crm.imports.coreApi.cancel(Number(started.id));
    assert.equal(res.status, 'COMPLETE');
    assertDate(res.completedAt, 'completedAt');
    assertDate(res.startedAt, 'startedAt');
    const canceled = await client.crm.imports.coreApi.getById(Number(started.id));
    assert.equal(canceled.state, 'CANCELED');
    await delay(1000);
    const final = await client.crm.imports.coreApi.getById(Number(started.id));
    assert.equal(final.state, 'CANCELED');
    const c = final.metadata.counters;
    assert.equal(c.TOTAL_ROWS, rows);
    assert.ok(c.PROCESSED_ROWS > 0 && c.PROCESSED_ROWS < rows, `processed ${c.PROCESSED_ROWS} of ${rows}`);
    assert.deepEqual([c.CREATED_OBJECTS, c.UPDATED_OBJECTS, c.ERRORS], [c.PROCESSED_ROWS, 0, 0]);
    assert.deepEqual(final.metadata.counters, canceled.metadata.counters);
    const total = (await client.crm.contacts.searchApi.doSearch({ limit: 1 })).total;
    assert.equal(total, c.CREATED_OBJECTS);
  });
});
