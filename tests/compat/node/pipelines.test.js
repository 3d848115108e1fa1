'use strict';
// crm.pipelines: the deal and ticket pipelines every account starts with, read as the client
// reads them; changes answer 501 until pipelines can be edited.

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

  it('answers 404 for an unknown pipeline and 501 for a change', async () => {
    await assert.rejects(client.crm.pipelines.pipelinesApi.getById('deals', 'nope'), (e) => e.code === 404);
    await assert.rejects(
      client.crm.pipelines.pipelinesApi.create('deals', { label: 'New', displayOrder: 1, stages: [] }),
      (e) => e.code === 501 && e.body.category === 'NOT_IMPLEMENTED',
    );
  });
});
