'use strict';
// Assertions shared by the compatibility tests.

const assert = require('node:assert/strict');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let counter = 0;
/** A string unique within this test run, for names, e-mails and search markers. */
function unique(prefix = 'x') {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${counter}`;
}

/**
 * Awaits a client call that must fail with an ApiException of the given HTTP status, checks
 * the HubSpot error envelope, and returns the exception for further checks.
 */
async function rejectsWith(promise, status) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected the call to fail with HTTP ${status}, but it succeeded`);
  assert.equal(err.constructor.name, 'ApiException', `expected an ApiException, got: ${err.stack || err}`);
  assert.equal(err.code, status, `expected HTTP ${status}, got ${err.code}: ${JSON.stringify(err.body)}`);
  assertErrorBody(err);
  return err;
}

/** The body of an error response: JSON with message, correlationId (a UUID) and category. */
function assertErrorBody(err) {
  const ct = String(err.headers?.['content-type'] || '');
  assert.match(ct, /application\/json/, `error response Content-Type: ${ct}`);
  const body = err.body;
  assert.ok(body && typeof body === 'object', `error body is not an object: ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0, 'error message is empty');
  assert.match(String(body.correlationId), UUID, `correlationId ${body.correlationId} is not a UUID`);
  assert.equal(typeof body.category, 'string');
  assert.ok(body.category.length > 0, 'error category is empty');
}

/** A timestamp the client turned into a Date: must be a real instant. */
function assertDate(d, what = 'date') {
  assert.ok(d instanceof Date, `${what} is not a Date: ${d}`);
  assert.ok(!Number.isNaN(d.getTime()), `${what} is an invalid Date`);
}

/** The shape every record response shares (SimplePublicObject). */
function assertRecord(r) {
  assert.equal(typeof r.id, 'string');
  assert.match(r.id, /^\d+$/);
  assert.ok(r.properties && typeof r.properties === 'object');
  assert.equal(r.properties.hs_object_id, r.id, 'hs_object_id equals the record id');
  for (const [k, v] of Object.entries(r.properties)) {
    assert.ok(v === null || typeof v === 'string', `property ${k} is not a string or null: ${JSON.stringify(v)}`);
  }
  assertDate(r.createdAt, 'createdAt');
  assertDate(r.updatedAt, 'updatedAt');
  assert.ok(r.updatedAt.getTime() >= r.createdAt.getTime(), 'updatedAt is not before createdAt');
}

function ids(records) {
  return records.map((r) => r.id);
}

function sortedIds(records) {
  return ids(records).sort((a, b) => Number(a) - Number(b));
}

module.exports = { UUID, unique, rejectsWith, assertErrorBody, assertDate, assertRecord, ids, sortedIds };
