'use strict';
// Rate limits as HubSpot's: the X-HubSpot-RateLimit-* headers, 429 with HubSpot's body and
// Retry-After, search's own per-second limit, and the client's numberOfApiCallRetries acting
// on them. Runs its own server with small limits for the starter tier.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');

let kontor;

before(async () => {
  kontor = await startKontor({
    apiLimits: 'starter = { per_ten_seconds = 4, per_day = 1000, searches_per_second = 1 }',
  });
});
after(async () => {
  await kontor?.stop();
});

describe('rate limits', () => {
  it('counts down in the headers and answers 429 past the limit', async () => {
    const { client } = await kontor.account('limited', { tier: 'starter' });
    const remaining = [];
    for (let i = 0; i < 4; i++) {
      const r = await client.apiRequest({ method: 'GET', path: '/crm/v3/objects/contacts' });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-hubspot-ratelimit-max'), '4');
      assert.equal(r.headers.get('x-hubspot-ratelimit-daily'), '1000');
      remaining.push(Number(r.headers.get('x-hubspot-ratelimit-remaining')));
    }
    assert.deepEqual(remaining, [3, 2, 1, 0]);
    await assert.rejects(client.crm.contacts.basicApi.getPage(), (e) => {
      assert.equal(e.code, 429);
      assert.equal(e.body.errorType, 'RATE_LIMIT');
      assert.equal(e.body.policyName, 'TEN_SECONDLY_ROLLING');
      assert.ok(Number(e.headers['retry-after']) >= 1);
      return true;
    });
  });

  it('waits out the search limit with numberOfApiCallRetries', async () => {
    const { token } = await kontor.account('searching', { tier: 'starter' });
    const plain = kontor.client(token);
    await plain.crm.contacts.searchApi.doSearch({});
    await assert.rejects(plain.crm.contacts.searchApi.doSearch({}), (e) => {
      assert.equal(e.code, 429);
      assert.equal(e.body.message, 'You have reached your secondly limit.');
      return true;
    });
    await new Promise((r) => setTimeout(r, 1100));
    const retrying = kontor.client(token, { numberOfApiCallRetries: 3 });
    const started = Date.now();
    for (let i = 0; i < 2; i++) {
      assert.equal((await retrying.crm.contacts.searchApi.doSearch({})).total, 0);
    }
    assert.ok(Date.now() - started >= 900, 'the second search waited for the next second');
  });
});
