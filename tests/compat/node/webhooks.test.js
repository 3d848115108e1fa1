'use strict';
// Webhooks: an app's settings and subscriptions as the client's webhooks APIs send them (with
// a developer key, `?hapikey=`, which kontor takes as the account's token), and the events a
// receiver gets: signed batches, checked with the client's own Signature helper, and the
// app's event log on kontor's side. The receiver is a separate process
// (lib/webhook-receiver.js) on 127.0.0.1; lib/kontor.js starts the server with private
// targets allowed and a 200 ms retry back-off.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, Signature } = require('@hubspot/api-client');
const { startKontor } = require('./lib/kontor');
const { rejectsWith, assertDate, unique } = require('./lib/assertions');

const RECEIVER = path.join(__dirname, 'lib', 'webhook-receiver.js');
const DEADLINE_MS = 20_000;

let kontor;
let account;
let dev;

before(async () => {
  kontor = await startKontor();
  account = await kontor.account('webhooks');
  dev = developerClient(account.token);
});
after(async () => {
  await stopReceivers();
  await kontor?.stop();
});

/** A client as an app developer makes one: the key goes in `?hapikey=`. */
function developerClient(key) {
  return new Client({ developerApiKey: key, basePath: kontor.baseUrl });
}

/** Polls `probe` until it returns a truthy value, which it returns; fails at the deadline. */
async function waitFor(what, probe, timeoutMs = DEADLINE_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms\nserver log:\n${kontor.log.slice(-20).join('')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- kontor's own API for apps and their event log (bearer token) ----

async function kontorCall(client, method, p, body) {
  const res = await client.apiRequest({ method, path: p, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function createApp(client, name, targetUrl) {
  const r = await kontorCall(client, 'POST', '/kontor/v1/webhooks/apps', targetUrl ? { name, targetUrl } : { name });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.match(r.body.id, /^\d+$/);
  assert.match(r.body.clientSecret, /^[0-9a-f]{32,}$/);
  return { id: Number(r.body.id), clientSecret: r.body.clientSecret };
}

async function appEvents(client, appId, state) {
  const r = await kontorCall(client, 'GET', `/kontor/v1/webhooks/apps/${appId}/events?state=${state}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.results;
}

// ---- the receiver process ----

const receivers = new Set();

/** Starts a receiver; `refuse` first requests are answered 503. */
async function startReceiver({ refuse = 0 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-hooks-'));
  const file = path.join(dir, 'requests.jsonl');
  const child = spawn(process.execPath, [RECEIVER, file, String(refuse)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let exited = null;
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const receiver = {
    child,
    port: null,
    /** The requests so far: {method, url, headers, body, status}. */
    requests() {
      if (!fs.existsSync(file)) return [];
      return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l));
    },
    async stop() {
      receivers.delete(receiver);
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  receivers.add(receiver);
  try {
    const port = await waitFor('the receiver listening', () => {
      if (exited) throw new Error(`the receiver exited (${JSON.stringify(exited)}): ${out}`);
      return out.match(/listening (\d+)\n/)?.[1];
    }, 10_000);
    receiver.port = Number(port);
  } catch (e) {
    await receiver.stop();
    throw e;
  }
  return receiver;
}

async function stopReceivers() {
  for (const r of [...receivers]) await r.stop();
}
process.on('exit', () => {
  for (const r of receivers) r.child.kill('SIGKILL');
});

/**
 * Checks one delivery request as a receiver would: a POST of a JSON array to the target,
 * signed (v3) over the target URL exactly as configured; returns its events.
 */
function checkRequest(req, { targetUrl, clientSecret }) {
  assert.equal(req.method, 'POST');
  assert.equal(`http://${req.headers.host}${req.url}`, targetUrl);
  assert.match(String(req.headers['content-type']), /^application\/json/);
  const signature = req.headers['x-hubspot-signature-v3'];
  const timestamp = Number(req.headers['x-hubspot-request-timestamp']);
  assert.ok(signature, 'no X-HubSpot-Signature-v3 header');
  assert.ok(Number.isInteger(timestamp), `X-HubSpot-Request-Timestamp ${req.headers['x-hubspot-request-timestamp']}`);
  assert.ok(Math.abs(timestamp - req.at) < 60_000, `timestamp ${timestamp} is not the time of sending (${req.at})`);
  const options = {
    signatureVersion: 'v3', signature, clientSecret, requestBody: req.body, url: targetUrl, method: 'POST', timestamp,
  };
  assert.equal(Signature.isValid(options), true, `signature of ${req.body} does not verify`);
  // The check is not vacuous: another body, URL or secret does not verify.
  assert.equal(Signature.isValid({ ...options, requestBody: `${req.body} ` }), false);
  assert.equal(Signature.isValid({ ...options, url: `${targetUrl}&x=1` }), false);
  assert.equal(Signature.isValid({ ...options, clientSecret: `${clientSecret}0` }), false);
  const events = JSON.parse(req.body);
  assert.ok(Array.isArray(events), 'the body is not a JSON array');
  assert.ok(events.length >= 1 && events.length <= 100, `a batch of ${events.length} events`);
  return events;
}

describe('webhook settings', () => {
  it('configures, reads and clears an app\'s settings', async () => {
    const app = await createApp(account.client, unique('settings'));
    const api = dev.webhooks.settingsApi;
    await rejectsWith(api.getAll(app.id), 404); // nothing configured yet
    const targetUrl = 'https://hooks.example.com/kontor/in?src=node';
    const put = await api.configure(app.id, { targetUrl, throttling: { maxConcurrentRequests: 5 } });
    assert.equal(put.targetUrl, targetUrl);
    assert.equal(put.throttling.maxConcurrentRequests, 5);
    assertDate(put.createdAt, 'createdAt');
    assertDate(put.updatedAt, 'updatedAt');
    const got = await api.getAll(app.id);
    assert.equal(got.targetUrl, targetUrl);
    assert.equal(got.throttling.maxConcurrentRequests, 5);
    assert.equal(got.createdAt.getTime(), put.createdAt.getTime());
    // Changed again: the throttling follows, the creation time stays.
    const again = await api.configure(app.id, { targetUrl, throttling: { maxConcurrentRequests: 10 } });
    assert.equal(again.throttling.maxConcurrentRequests, 10);
    assert.equal(again.createdAt.getTime(), put.createdAt.getTime());
    assert.ok(again.updatedAt.getTime() >= put.updatedAt.getTime());
    // Refused: a target that is no http(s) URL, a limit out of range.
    await rejectsWith(api.configure(app.id, { targetUrl: 'ftp://hooks.example.com/in', throttling: { maxConcurrentRequests: 5 } }), 400);
    await rejectsWith(api.configure(app.id, { targetUrl: 'not a url', throttling: { maxConcurrentRequests: 5 } }), 400);
    await rejectsWith(api.configure(app.id, { targetUrl, throttling: { maxConcurrentRequests: 0 } }), 400);
    assert.equal((await api.getAll(app.id)).throttling.maxConcurrentRequests, 10);
    // Cleared: gone until configured again.
    await api.clear(app.id);
    await rejectsWith(api.getAll(app.id), 404);
  });

  it('answers 404 for an app that does not exist and 401 for a wrong key', async () => {
    const api = dev.webhooks.settingsApi;
    await rejectsWith(api.getAll(987654), 404);
    await rejectsWith(api.configure(987654, { targetUrl: 'https://hooks.example.com/', throttling: { maxConcurrentRequests: 5 } }), 404);
    await rejectsWith(api.clear(987654), 404);
    const app = await createApp(account.client, unique('auth'));
    await rejectsWith(developerClient('not-a-key').webhooks.settingsApi.getAll(app.id), 401);
    // Another account's key does not reach this account's app.
    const other = await kontor.account('webhooks other');
    await rejectsWith(developerClient(other.token).webhooks.subscriptionsApi.getAll(app.id), 404);
  });
});

describe('webhook subscriptions', () => {
  it('creates, reads, changes and deletes subscriptions', async () => {
    const app = await createApp(account.client, unique('subs'));
    const api = dev.webhooks.subscriptionsApi;
    assert.deepEqual((await api.getAll(app.id)).results, []);
    const email = await api.create(app.id, { eventType: 'contact.propertyChange', propertyName: 'email', active: true });
    assert.match(email.id, /^\d+$/);
    assert.equal(email.eventType, 'contact.propertyChange');
    assert.equal(email.propertyName, 'email');
    assert.equal(email.active, true);
    assertDate(email.createdAt, 'createdAt');
    assertDate(email.updatedAt, 'updatedAt');
    const created = await api.create(app.id, { eventType: 'contact.creation', active: false });
    assert.equal(created.active, false);
    assert.equal(created.propertyName, undefined);
    const stage = await api.create(app.id, { eventType: 'deal.propertyChange', propertyName: 'dealstage' });
    assert.equal(stage.active, true, 'a subscription is active unless told');

    const all = (await api.getAll(app.id)).results;
    assert.deepEqual(all.map((s) => s.id).sort(), [email.id, created.id, stage.id].sort());
    const one = await api.getById(Number(email.id), app.id);
    assert.deepEqual(
      { id: one.id, eventType: one.eventType, propertyName: one.propertyName, active: one.active },
      { id: email.id, eventType: 'contact.propertyChange', propertyName: 'email', active: true },
    );

    const paused = await api.update(Number(email.id), app.id, { active: false });
    assert.equal(paused.id, email.id);
    assert.equal(paused.active, false);
    assert.equal((await api.getById(Number(email.id), app.id)).active, false);

    const batch = await api.updateBatch(app.id, {
      inputs: [{ id: Number(email.id), active: true }, { id: Number(created.id), active: true }],
    });
    assert.equal(batch.status, 'COMPLETE');
    assertDate(batch.startedAt, 'startedAt');
    assertDate(batch.completedAt, 'completedAt');
    assert.deepEqual(batch.results.map((s) => s.id).sort(), [email.id, created.id].sort());
    assert.ok(batch.results.every((s) => s.active === true));
    assert.equal((await api.getById(Number(created.id), app.id)).active, true);

    await api.archive(Number(stage.id), app.id);
    await rejectsWith(api.getById(Number(stage.id), app.id), 404);
    assert.deepEqual((await api.getAll(app.id)).results.map((s) => s.id).sort(), [email.id, created.id].sort());
  });

  it('refuses an unknown event type, a missing or unknown property, and an unknown app or subscription', async () => {
    const app = await createApp(account.client, unique('refusals'));
    const api = dev.webhooks.subscriptionsApi;
    const bad = await rejectsWith(api.create(app.id, { eventType: 'contact.teleported', active: true }), 400);
    assert.match(bad.body.message, /contact\.teleported/);
    await rejectsWith(api.create(app.id, { eventType: 'contact.propertyChange', active: true }), 400);
    await rejectsWith(api.create(app.id, { eventType: 'contact.propertyChange', propertyName: 'no_such_property', active: true }), 400);
    await rejectsWith(api.create(app.id, { eventType: 'contact.creation', propertyName: 'email', active: true }), 400);
    assert.deepEqual((await api.getAll(app.id)).results, [], 'nothing refused was kept');

    await rejectsWith(api.getAll(987654), 404);
    await rejectsWith(api.create(987654, { eventType: 'contact.creation', active: true }), 404);
    await rejectsWith(api.getById(1, 987654), 404);
    await rejectsWith(api.updateBatch(987654, { inputs: [{ id: 1, active: false }] }), 404);
    await rejectsWith(api.getById(987654, app.id), 404);
    await rejectsWith(api.update(987654, app.id, { active: false }), 404);
    await rejectsWith(api.archive(987654, app.id), 404);
  });

  it('answers a batch update naming an unknown subscription with 207 and its error', async () => {
    const app = await createApp(account.client, unique('batch'));
    const api = dev.webhooks.subscriptionsApi;
    const sub = await api.create(app.id, { eventType: 'deal.creation', active: true });
    const res = await api.updateBatchWithHttpInfo(app.id, {
      inputs: [{ id: Number(sub.id), active: false }, { id: 987654, active: false }],
    });
    assert.equal(res.httpStatusCode, 207, 'HubSpot answers 207 when some inputs failed');
    const batch = res.data;
    assert.deepEqual(batch.results.map((s) => [s.id, s.active]), [[sub.id, false]]);
    assert.equal(batch.numErrors, 1);
    assert.equal(batch.errors[0].category, 'OBJECT_NOT_FOUND');
    assert.match(batch.errors[0].message, /987654/);
  });
});

describe('webhook delivery', () => {
  after(stopReceivers);

  it('sends signed batches of contact and deal changes to a receiver, and logs them delivered', async () => {
    const started = Date.now();
    const owner = await kontor.account('webhooks delivery');
    const receiver = await startReceiver();
    const targetUrl = `http://127.0.0.1:${receiver.port}/hooks/kontor?src=node`;
    const app = await createApp(owner.client, unique('delivery'), targetUrl);
    const api = developerClient(owner.token).webhooks.subscriptionsApi;
    const subs = {};
    for (const [eventType, propertyName] of [
      ['contact.creation'], ['contact.propertyChange', 'email'], ['deal.creation'], ['deal.propertyChange', 'dealstage'],
    ]) {
      const s = await api.create(app.id, { eventType, propertyName, active: true });
      subs[s.id] = s;
    }

    // The changes, made as any client makes them.
    const contacts = owner.client.crm.contacts.basicApi;
    const deals = owner.client.crm.deals.basicApi;
    const firstEmail = `${unique('first')}@hooks.example`;
    const newEmail = `${unique('second')}@hooks.example`;
    const contact = await contacts.create({ properties: { email: firstEmail, firstname: 'Ada' } });
    await contacts.update(contact.id, { properties: { email: newEmail } });
    const deal = await deals.create({ properties: { dealname: 'Hooked', pipeline: 'default', dealstage: 'appointmentscheduled' } });
    await deals.update(deal.id, { properties: { dealstage: 'closedwon' } });

    const about = (events, type, id) => events.filter((e) => e.subscriptionType === type && String(e.objectId) === id);
    const complete = (events) =>
      about(events, 'contact.creation', contact.id).length > 0
      && about(events, 'contact.propertyChange', contact.id).some((e) => e.propertyValue === newEmail)
      && about(events, 'deal.creation', deal.id).length > 0
      && about(events, 'deal.propertyChange', deal.id).some((e) => e.propertyValue === 'closedwon');
    const requests = await waitFor('every event at the receiver', () => {
      const rs = receiver.requests();
      return complete(rs.flatMap((r) => JSON.parse(r.body))) && rs;
    });

    // Every request is signed as HubSpot signs, and every event is shaped as HubSpot's are.
    const events = requests.flatMap((r) => checkRequest(r, { targetUrl, clientSecret: app.clientSecret }));
    const eventIds = events.map((e) => e.eventId);
    assert.equal(new Set(eventIds).size, eventIds.length, 'an event came twice');
    for (const e of events) {
      const sub = subs[String(e.subscriptionId)];
      assert.ok(sub, `event ${JSON.stringify(e)} is of no subscription of the app`);
      assert.ok(Number.isInteger(e.eventId) && e.eventId > 0, `eventId ${e.eventId}`);
      assert.equal(e.subscriptionId, Number(sub.id));
      assert.equal(e.subscriptionType, sub.eventType);
      assert.equal(e.portalId, Number(owner.id));
      assert.equal(e.appId, app.id);
      assert.equal(e.attemptNumber, 0);
      assert.ok(Number.isInteger(e.occurredAt) && e.occurredAt >= started - 1000 && e.occurredAt <= Date.now(), `occurredAt ${e.occurredAt}`);
      assert.ok(Number.isInteger(e.objectId), `objectId ${e.objectId}`);
      assert.equal(typeof e.changeSource, 'string');
      assert.ok(e.changeSource.length > 0, 'changeSource is empty');
      if (sub.eventType.endsWith('.creation')) {
        assert.equal(e.changeFlag, 'NEW');
      } else {
        assert.equal(e.propertyName, sub.propertyName);
        assert.equal(typeof e.propertyValue, 'string');
      }
    }
    // Nothing but what was done: one creation each, and the values the properties took.
    assert.deepEqual(
      events.map((e) => `${e.subscriptionType} ${e.objectId}`).filter((k) => k.includes('.creation')).sort(),
      [`contact.creation ${contact.id}`, `deal.creation ${deal.id}`].sort(),
    );
    const values = (type, id) => about(events, type, id).map((e) => e.propertyValue);
    assert.ok(values('contact.propertyChange', contact.id).every((v) => [firstEmail, newEmail].includes(v)));
    assert.ok(values('deal.propertyChange', deal.id).every((v) => ['appointmentscheduled', 'closedwon'].includes(v)));
    assert.equal(events.length, about(events, 'contact.creation', contact.id).length
      + about(events, 'contact.propertyChange', contact.id).length
      + about(events, 'deal.creation', deal.id).length
      + about(events, 'deal.propertyChange', deal.id).length);

    // The app's log: each of them delivered at the first attempt, answered 200.
    const delivered = await waitFor('every event logged DELIVERED', async () => {
      const logged = await appEvents(owner.client, app.id, 'DELIVERED');
      const have = new Set(logged.map((e) => e.eventId));
      return eventIds.every((id) => have.has(String(id))) && logged;
    });
    assert.equal(delivered.length, events.length);
    for (const e of events) {
      const log = delivered.find((l) => l.eventId === String(e.eventId));
      assert.equal(log.state, 'DELIVERED');
      assert.equal(log.subscriptionType, e.subscriptionType);
      assert.equal(log.objectId, String(e.objectId));
      assert.equal(log.attempts, 1);
      assert.equal(log.lastStatus, 200);
      assert.equal(log.payload.eventId, e.eventId);
    }
    assert.deepEqual(await appEvents(owner.client, app.id, 'PENDING'), []);
    assert.deepEqual(await appEvents(owner.client, app.id, 'FAILED'), []);
  });

  it('sends a refused batch again, with the same event ids and the next attempt number', async () => {
    const owner = await kontor.account('webhooks retry');
    const receiver = await startReceiver({ refuse: 1 });
    const targetUrl = `http://127.0.0.1:${receiver.port}/retry`;
    const app = await createApp(owner.client, unique('retry'));
    await developerClient(owner.token).webhooks.settingsApi.configure(app.id, { targetUrl, throttling: { maxConcurrentRequests: 5 } });
    await developerClient(owner.token).webhooks.subscriptionsApi.create(app.id, { eventType: 'contact.creation', active: true });
    const contact = await owner.client.crm.contacts.basicApi.create({ properties: { email: `${unique('retry')}@hooks.example` } });

    const [refused, accepted] = await waitFor('the batch sent twice', () => {
      const rs = receiver.requests();
      return rs.length >= 2 && rs;
    });
    assert.equal(refused.status, 503);
    assert.equal(accepted.status, 200);
    const first = checkRequest(refused, { targetUrl, clientSecret: app.clientSecret });
    const second = checkRequest(accepted, { targetUrl, clientSecret: app.clientSecret });
    assert.deepEqual(first.map((e) => [e.subscriptionType, String(e.objectId), e.attemptNumber]), [['contact.creation', contact.id, 0]]);
    assert.deepEqual(second.map((e) => e.eventId), first.map((e) => e.eventId), 'the same event, not a new one');
    assert.deepEqual(second.map((e) => e.attemptNumber), [1]);
    assert.ok(Number(accepted.headers['x-hubspot-request-timestamp']) > Number(refused.headers['x-hubspot-request-timestamp']));

    const [log] = await waitFor('the event logged DELIVERED', async () => {
      const logged = await appEvents(owner.client, app.id, 'DELIVERED');
      return logged.length > 0 && logged;
    });
    assert.equal(log.eventId, String(first[0].eventId));
    assert.equal(log.attempts, 2);
    assert.equal(log.lastStatus, 200);
  });
});
