'use strict';
// Errors and limits through jsforce: 404s, the daily request limit (403), injected 5xx faults and
// jsforce's own retry of them, conn.limitInfo from Sforce-Limit-Info, and /limits.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { useFake } = require('./lib/fake');

const fake = useFake();

async function dataCalls() {
  return (await fake.requests()).filter((r) => r.path.startsWith('/services/data/v'));
}

test('404 NOT_FOUND for a record that never existed and for an unknown resource', async () => {
  const conn = await fake.login();
  const { id } = await conn.sobject('Contact').create({ LastName: 'Real' });
  const never = id.slice(0, 14) + (id[14] === 'Z' ? 'Y' : 'Z');     // 15 characters, no such record
  await assert.rejects(conn.sobject('Contact').retrieve(never), {
    errorCode: 'NOT_FOUND', message: 'The requested resource does not exist',
  });
  await assert.rejects(conn.request('/no-such-resource'), { errorCode: 'NOT_FOUND' });
  // A GET whose last segment is not an id of the object reads as an external-id lookup.
  await assert.rejects(conn.sobject('Contact').retrieve('not-an-id'), (err) => {
    assert.equal(err.errorCode, 'NOT_FOUND');
    assert.match(err.message, /Provided external ID field does not exist or is not accessible: not-an-id/);
    return true;
  });
});

test('conn.limitInfo follows Sforce-Limit-Info, and /limits agrees', async () => {
  await fake.control('POST', '/_fake/config', { daily_limit: 5000, api_usage: 17 });
  const conn = await fake.login();
  await conn.query('SELECT Id FROM User');
  assert.deepEqual(conn.limitInfo, { apiUsage: { used: 18, limit: 5000 } });
  await conn.sobject('Contact').create({ LastName: 'x' });
  assert.deepEqual(conn.limitInfo, { apiUsage: { used: 19, limit: 5000 } });

  const limits = await conn.request('/limits');
  assert.deepEqual(limits.DailyApiRequests, { Max: 5000, Remaining: 5000 - 20 });
  assert.deepEqual(conn.limitInfo.apiUsage, { used: 20, limit: 5000 });
  assert.deepEqual((await conn.limits()).DailyApiRequests, { Max: 5000, Remaining: 5000 - 21 });
  const calls = await dataCalls();
  assert.ok(calls.every((c) => c.counted));
});

test('403 REQUEST_LIMIT_EXCEEDED once the day\'s allowance is used; refused calls are not counted', async () => {
  const conn = await fake.login();
  await fake.control('POST', '/_fake/config', { daily_limit: 100, api_usage: 100 });
  await assert.rejects(conn.query('SELECT Id FROM Contact'), (err) => {
    assert.equal(err.errorCode, 'REQUEST_LIMIT_EXCEEDED');
    assert.equal(err.name, 'REQUEST_LIMIT_EXCEEDED');
    assert.equal(err.message, 'TotalRequests Limit exceeded.');
    return true;
  });
  await assert.rejects(conn.sobject('Contact').create({ LastName: 'x' }), { errorCode: 'REQUEST_LIMIT_EXCEEDED' });
  assert.deepEqual(conn.limitInfo, { apiUsage: { used: 100, limit: 100 } });
  const calls = await dataCalls();
  assert.deepEqual(calls.map((c) => [c.status, c.counted]), [[403, false], [403, false]]);
  assert.equal((await fake.control('GET', '/_fake/config')).api_usage, 100);

  await fake.control('POST', '/_fake/config', { daily_limit: 101 });
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 0, 'the refused create wrote nothing');
  await assert.rejects(conn.query('SELECT COUNT() FROM Contact'), { errorCode: 'REQUEST_LIMIT_EXCEEDED' });
});

test('a 503 on a write is thrown as SERVER_UNAVAILABLE, without a retry', async () => {
  const conn = await fake.login();
  await fake.control('POST', '/_fake/faults', { status: 503, count: 1, path_contains: '/sobjects/Contact', method: 'POST' });
  await assert.rejects(conn.sobject('Contact').create({ LastName: 'x' }), (err) => {
    assert.equal(err.errorCode, 'SERVER_UNAVAILABLE');
    assert.equal(err.message, 'Server is unavailable, please try again later.');
    return true;
  });
  assert.deepEqual((await dataCalls()).map((c) => [c.method, c.status, c.counted]), [['POST', 503, false]]);
  assert.equal((await conn.query('SELECT COUNT() FROM Contact')).totalSize, 0);
});

test('a 503 on a read is retried by jsforce and then succeeds', async () => {
  const conn = await fake.login();
  await fake.load('Contact', [{ LastName: 'Patient' }]);
  await fake.control('POST', '/_fake/faults', { status: 503, count: 1, path_contains: '/query' });
  const res = await conn.query('SELECT LastName FROM Contact');
  assert.deepEqual(res.records.map((r) => r.LastName), ['Patient']);
  assert.deepEqual((await dataCalls()).map((c) => [c.path, c.status]), [
    ['/services/data/v50.0/query', 503],
    ['/services/data/v50.0/query', 200],
  ]);
});

test('with retries off, 500 and 503 faults surface with Salesforce\'s error codes', async () => {
  const conn = await fake.login();
  const noRetry = { retry: { maxRetries: 0 } };
  await fake.control('POST', '/_fake/faults', { status: 503, count: 1, path_contains: '/limits' });
  await assert.rejects(conn.request({ method: 'GET', url: '/limits' }, noRetry), { errorCode: 'SERVER_UNAVAILABLE' });
  await fake.control('POST', '/_fake/faults', { status: 500, count: 1, path_contains: '/limits' });
  await assert.rejects(conn.request({ method: 'GET', url: '/limits' }, noRetry), (err) => {
    assert.equal(err.errorCode, 'UNKNOWN_EXCEPTION');
    assert.match(err.message, /An unexpected error occurred/);
    return true;
  });
  assert.equal((await conn.request('/limits')).DailyApiRequests.Max, 15000);
  assert.deepEqual((await dataCalls()).map((c) => c.status), [503, 500, 200]);
});

test('an unknown API version is NOT_FOUND', async () => {
  const conn = await fake.login({ version: '19.0' });
  await assert.rejects(conn.query('SELECT Id FROM User'), { errorCode: 'NOT_FOUND' });
  const versions = await conn.request('/services/data/');
  assert.equal(versions[0].version, '20.0');
  assert.equal(versions.at(-1).version, '66.0');
  assert.ok(versions.some((v) => v.version === '50.0' && v.url === '/services/data/v50.0'));
});
