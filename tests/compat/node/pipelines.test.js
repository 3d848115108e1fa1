'use strict';
// crm.pipelines: the deal and ticket pipelines every account starts with, read as the client
// reads them; pipelines and stages created, changed and archived as the client sends them.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startKontor } = require('./lib/kontor');

let kontor;
let client;

before(async () => {
  kontor = await startKontor();
  ({ client } = await kontor.account('pipelines'));
});
after(async () => {
  await kontor?.stop();
});

describe('pipelines', () => {
  it('lists the deal pipeline with its stages, each usable on a deal', async () => {
    const { results } = await client.crm.pipelines.pipelinesApi.getAll('deals');
    assert.deepEqual(results.map((p) => p.id), ['default']);
    const stages = results[0].stages;
    assert.ok(stages.length >= 7);
    assert.ok(stages.every((s) => typeof s.metadata.probability === 'string'));
    assert.ok(results[0].createdAt instanceof Date);
    const one = await client.crm.pipelines.pipelineStagesApi.getById('deals', 'default', 'closedlost');
    assert.equal(one.metadata.isClosed, 'true');
    for (const s of stages) {
      const deal = await client.crm.deals.basicApi.create({
        properties: { dealname: `in ${s.id}`, pipeline: 'default', dealstage: s.id },
      });
      assert.equal(deal.properties.dealstage, s.id);
    }
  });

  it('lists the ticket pipeline with ticket states', async () => {
    const [support] = (await client.crm.pipelines.pipelinesApi.getAll('tickets')).results;
    assert.equal(support.id, '0');
    assert.equal(support.stages.find((s) => s.id === '4').metadata.ticketState, 'CLOSED');
  });

  it('answers 404 for an unknown pipeline', async () => {
    await assert.rejects(client.crm.pipelines.pipelinesApi.getById('deals', 'nope'), (e) => e.code === 404);
  });

  it('creates, changes and archives a pipeline and its stages', async () => {
    const api = client.crm.pipelines.pipelinesApi;
    const stagesApi = client.crm.pipelines.pipelineStagesApi;
    const made = await api.create('deals', {
      label: 'Partners',
      displayOrder: 3,
      stages: [
        { label: 'Introduced', displayOrder: 0, metadata: { probability: '0.3' } },
        { label: 'Signed', displayOrder: 1, metadata: { probability: '1.0' } },
      ],
    });
    assert.equal(made.label, 'Partners');
    assert.deepEqual(made.stages.map((s) => s.label), ['Introduced', 'Signed']);
    assert.equal(made.stages[1].metadata.isClosed, 'true');
    // A deal given only a stage lands in the stage's pipeline; another pipeline's stage is refused.
    const deal = await client.crm.deals.basicApi.create({
      properties: { dealname: 'Partner deal', dealstage: made.stages[0].id },
    });
    assert.equal(deal.properties.pipeline, made.id);
    await assert.rejects(
      client.crm.deals.basicApi.update(deal.id, { properties: { dealstage: 'closedwon' } }),
      (e) => e.code === 400 && /not a valid stage/.test(e.body.message),
    );
    // Changes.
    const renamed = await api.update('deals', made.id, { label: 'Partner deals' });
    assert.equal(renamed.label, 'Partner deals');
    const stage = await stagesApi.create('deals', made.id, {
      label: 'Negotiating', displayOrder: 1, metadata: { probability: '0.6' },
    });
    const patched = await stagesApi.update('deals', made.id, stage.id, { label: 'Negotiation' });
    assert.equal(patched.label, 'Negotiation');
    assert.equal(patched.metadata.probability, '0.6');
    // A stage with a deal in it stays; an empty one goes.
    await assert.rejects(stagesApi.archive('deals', made.id, made.stages[0].id), (e) => e.code === 400);
    await stagesApi.archive('deals', made.id, stage.id);
    const left = (await stagesApi.getAll('deals', made.id)).results.map((s) => s.id);
    assert.deepEqual(left, [made.stages[0].id, made.stages[1].id]);
    await assert.rejects(api.archive('deals', made.id), (e) => e.code === 400);
    // Entered and exited times of each stage are read from the deal's history.
    await client.crm.deals.basicApi.update(deal.id, { properties: { dealstage: made.stages[1].id } });
    const read = await client.crm.deals.basicApi.getById(deal.id, [
      `hs_date_exited_${made.stages[0].id}`,
      `hs_date_entered_${made.stages[1].id}`,
    ]);
    assert.ok(read.properties[`hs_date_entered_${made.stages[1].id}`]);
    assert.equal(
      read.properties[`hs_date_exited_${made.stages[0].id}`],
      read.properties[`hs_date_entered_${made.stages[1].id}`],
    );
  });
});
