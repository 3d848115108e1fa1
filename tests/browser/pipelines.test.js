'use strict';
// Pipelines in the console: the settings page (create a pipeline with its stages, archive
// stages with a confirmation, refusals of the pipeline rules), the board (columns by stage,
// counts and sums, a card dragged to another column with real drag events, a refused move,
// the stage select without dragging) and who may change pipelines. What the console shows is
// checked against the API.

const assert = require('node:assert/strict');
const { setUp, unique, escape } = require('./lib/kontor');
const { screenshot, signIn, assertHeading, assertStyled } = require('./lib/browser');
const { suite } = require('./lib/suite');

const { btest, kontor } = suite();

async function apiPipeline(token, objectType, label) {
  const r = await kontor.api(token, 'GET', `/crm/v3/pipelines/${objectType}`);
  assert.equal(r.status, 200, r.text);
  return r.body.results.find((p) => p.label === label);
}

async function createDeal(token, properties) {
  const r = await kontor.api(token, 'POST', '/crm/v3/objects/deals', { properties });
  assert.equal(r.status, 201, r.text);
  return r.body.id;
}

async function dealStage(token, id) {
  const r = await kontor.api(token, 'GET', `/crm/v3/objects/deals/${id}?properties=dealstage,pipeline`);
  assert.equal(r.status, 200, r.text);
  return r.body.properties.dealstage;
}

/** The board's columns as {stage, title, count, sum, cards: [card ids]}, left to right. */
async function columns(page) {
  return page.locator('.board-column').evaluateAll((cols) =>
    cols.map((c) => ({
      stage: c.getAttribute('data-stage'),
      title: c.querySelector('header h2').innerText.trim(),
      count: c.querySelector('.count').innerText.trim(),
      sum: c.querySelector('.sum') ? c.querySelector('.sum').innerText.trim() : null,
      cards: [...c.querySelectorAll('.board-card')].map((x) => x.getAttribute('data-id')),
    })),
  );
}

/** Drags a card by its top edge (not its stage select) onto a column, with real drag events. */
async function drag(page, dealId, stageId) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/deals/${dealId}/stage`) && r.request().method() === 'POST'),
    page.locator(`#card-${dealId}`).dragTo(page.locator(`#column-${stageId}`), {
      sourcePosition: { x: 12, y: 6 },
      targetPosition: { x: 60, y: 30 },
    }),
  ]);
  return res;
}

/** Clicks a form's Archive button and confirms in the page's dialog; returns the response. */
async function archiveConfirmed(page, button) {
  await button.click();
  const dialog = page.locator('#confirm-dialog');
  await dialog.waitFor({ state: 'visible' });
  assert.match(await page.locator('#confirm-text').innerText(), /cannot be archived/);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/pipelines/')),
    dialog.getByRole('button', { name: 'Archive' }).click(),
  ]);
  await page.waitForLoadState('load');
  return res;
}

btest('an admin creates a pipeline, drags a deal to another stage and archives stages', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  await signIn(page, kontor, user);
  const label = unique('Renewals ');

  // Settings → Objects → the deals' pipelines.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Objects', exact: true }).click();
  await page.waitForURL(kontor.url('/app/settings/objects'));
  await assertHeading(page, 'Objects');
  await page.getByRole('link', { name: 'Deals pipelines' }).click();
  await page.waitForURL(kontor.url('/app/settings/objects/deals/pipelines'));
  await assertHeading(page, 'Pipelines of deals');

  // A deal stage needs its probability: the rule's refusal comes back next to the stages.
  await page.locator('#label').fill(label);
  await page.locator('#stages').fill('Contacted | 0.2\nNegotiating');
  const [bad] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Create pipeline' }).click(),
  ]);
  assert.equal(bad.status(), 400);
  await page.waitForLoadState('load');
  assert.match(await page.locator('#stages-error').innerText(), /Negotiating.*needs a probability/);
  assert.match(await page.locator('#pipelines-error').innerText(), /Nothing was changed/);
  assert.equal(await page.locator('#label').inputValue(), label, 'the input is kept');
  assert.equal(await apiPipeline(token, 'deals', label), undefined);

  await page.locator('#stages').fill('Contacted | 0.2\nNegotiating | 0.6\nUnused | 0.5\nSigned | 1\nLost | 0');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  await page.waitForURL(/done=pipeline-created/);
  assert.match(await page.getByRole('status').innerText(), /Pipeline created\./);
  const created = await apiPipeline(token, 'deals', label);
  assert.ok(created, 'the API lists the new pipeline');
  assert.deepEqual(
    created.stages.map((s) => [s.label, s.metadata.probability, s.metadata.isClosed]),
    [
      ['Contacted', '0.2', 'false'],
      ['Negotiating', '0.6', 'false'],
      ['Unused', '0.5', 'false'],
      ['Signed', '1', 'true'],
      ['Lost', '0', 'true'],
    ],
  );
  const stage = Object.fromEntries(created.stages.map((s) => [s.label, s.id]));
  const card = page.locator(`#pipeline-${created.id}`);
  assert.deepEqual(
    await card.locator('table.stages tbody tr input[name=label]').evaluateAll((xs) => xs.map((x) => x.value)),
    ['Contacted', 'Negotiating', 'Unused', 'Signed', 'Lost'],
  );
  await assertStyled(page);

  // Two deals in the first stage, owned by the admin.
  const owners = await kontor.api(token, 'GET', `/crm/v3/owners?email=${encodeURIComponent(user.email)}`);
  assert.equal(owners.status, 200, owners.text);
  const owner = owners.body.results[0];
  const ownerName = `${owner.firstName || ''} ${owner.lastName || ''}`.trim() || owner.email;
  const big = await createDeal(token, {
    dealname: 'Big renewal', amount: '1200', pipeline: created.id, dealstage: stage.Contacted, hubspot_owner_id: owner.id,
  });
  const small = await createDeal(token, { dealname: 'Small renewal', amount: '800.5', pipeline: created.id, dealstage: stage.Contacted });

  // The board, from the deals list.
  await page.goto(kontor.url('/app/objects/deals'));
  await page.getByRole('link', { name: 'Board' }).click();
  await page.waitForURL(/\/app\/objects\/deals\/board/);
  await page.locator('#pipeline').selectOption(created.id);
  await page.waitForURL(new RegExp(`pipeline=${created.id}`));
  await assertHeading(page, 'Deals');
  let cols = await columns(page);
  assert.deepEqual(cols.map((c) => c.title), ['Contacted', 'Negotiating', 'Unused', 'Signed', 'Lost']);
  assert.deepEqual(cols[0], {
    stage: stage.Contacted, title: 'Contacted', count: '2 deals', sum: '2,000.5', cards: [small, big],
  });
  assert.equal(cols[1].count, '0 deals');
  const bigCard = page.locator(`#card-${big}`);
  assert.match(await bigCard.innerText(), /Big renewal/);
  assert.match(await bigCard.innerText(), /Amount 1,200/);
  assert.match(await bigCard.innerText(), new RegExp(`Owner ${escape(ownerName)}`));
  await assertStyled(page);
  await screenshot(page, 'deals-board');

  // Drag the big deal to Negotiating.
  const res = await drag(page, big, stage.Negotiating);
  assert.ok(res.status() === 303 || res.status() === 200, `move answered ${res.status()}`);
  await page.locator('#board-message').waitFor();
  assert.match(await page.locator('#board-message').innerText(), /“Big renewal” is now in Negotiating\./);
  cols = await columns(page);
  assert.deepEqual(cols[0].cards, [small]);
  assert.deepEqual(cols[1].cards, [big]);
  assert.equal(cols[0].count, '1 deal');
  assert.equal(cols[0].sum, '800.5');
  assert.equal(cols[1].sum, '1,200');
  assert.equal(await dealStage(token, big), stage.Negotiating, 'the API shows the new stage');
  // The move is an ordinary edit: in the deal's history, by the signed-in user.
  const hist = await kontor.api(token, 'GET', `/crm/v3/objects/deals/${big}?propertiesWithHistory=dealstage`);
  assert.equal(hist.status, 200, hist.text);
  const entries = hist.body.propertiesWithHistory.dealstage;
  assert.equal(entries[0].value, stage.Negotiating);
  assert.equal(entries[0].sourceId, user.email);
  assert.equal(entries[1].value, stage.Contacted);
  // And it stays there after a reload.
  await page.reload();
  cols = await columns(page);
  assert.deepEqual(cols[1].cards, [big]);

  // Archiving the stage the deal is in is refused, with the count.
  await page.goto(kontor.url('/app/settings/objects/deals/pipelines'));
  const refused = await archiveConfirmed(page, page.locator(`#stage-${stage.Negotiating}`).getByRole('button', { name: 'Archive' }));
  assert.equal(refused.status(), 400);
  assert.match(await page.locator('#pipelines-error').innerText(), /1 deal is in stage "Negotiating": move them to another pipeline or stage first/);
  assert.match(await page.locator(`#stage-${stage.Negotiating}-error`).innerText(), /1 deal is in stage "Negotiating"/);
  assert.equal(await page.locator(`#stage-${stage.Negotiating}`).count(), 1, 'the stage is still listed');
  assert.equal((await apiPipeline(token, 'deals', label)).stages.length, 5);
  await screenshot(page, 'pipelines-refused');

  // Without the dialog (no script), the server asks on a page of its own and archives nothing.
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const ask = await page.request.post(kontor.url(`/app/settings/objects/deals/pipelines/${created.id}/stages/${stage.Unused}`), {
    form: { _csrf: csrf, action: 'archive' },
  });
  assert.equal(ask.status(), 200);
  assert.match(await ask.text(), /Archive the stage “Unused”\?/);
  assert.equal((await apiPipeline(token, 'deals', label)).stages.length, 5);

  // The empty stage is archived after the confirmation.
  const archived = await archiveConfirmed(page, page.locator(`#stage-${stage.Unused}`).getByRole('button', { name: 'Archive' }));
  assert.equal(archived.status(), 303);
  await page.waitForURL(/done=stage-archived/);
  assert.match(await page.getByRole('status').innerText(), /Stage archived\./);
  assert.equal(await page.locator(`#stage-${stage.Unused}`).count(), 0);
  assert.deepEqual(
    (await apiPipeline(token, 'deals', label)).stages.map((s) => s.label),
    ['Contacted', 'Negotiating', 'Signed', 'Lost'],
  );

  // Every change is in the audit log, by the admin.
  await page.goto(kontor.url('/app/settings/audit?action=pipeline.'));
  const rows = await page.locator('main table tbody tr').evaluateAll((trs) =>
    trs.map((r) => [...r.querySelectorAll('td')].map((td) => td.innerText.trim())),
  );
  const actions = rows.map((r) => r[2]);
  assert.ok(actions.includes('pipeline.create'), `audit actions: ${actions}`);
  assert.ok(actions.includes('pipeline.stage.archive'), `audit actions: ${actions}`);
  assert.equal(actions.filter((a) => a === 'pipeline.stage.archive').length, 1, 'the refused archive is not logged');
  for (const r of rows) assert.match(r[1], new RegExp(escape(user.email)));
});

btest('renames, reorders and edits stages; a refused move on the board shows why', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'super-admin');
  await signIn(page, kontor, user);
  const label = unique('Pipe ');
  await page.goto(kontor.url('/app/settings/objects/deals/pipelines'));
  await page.locator('#label').fill(label);
  await page.locator('#stages').fill('One | 0.1\nTwo | 0.2\nThree | 0.3');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  await page.waitForURL(/done=pipeline-created/);
  let p = await apiPipeline(token, 'deals', label);
  const id = p.id;
  const stage = Object.fromEntries(p.stages.map((s) => [s.label, s.id]));

  // Rename the pipeline; a label another pipeline has is refused.
  const renamed = `${label} renamed`;
  await page.getByLabel(`Label of pipeline ${label}`).fill('Sales Pipeline');
  await page.getByRole('button', { name: `Rename pipeline ${label}` }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator(`#pipeline-${id}-error`).innerText(), /already exists/);
  await page.getByLabel(`Label of pipeline ${label}`).fill(renamed);
  await page.getByRole('button', { name: `Rename pipeline ${label}` }).click();
  await page.waitForURL(/done=pipeline-saved/);
  assert.equal((await apiPipeline(token, 'deals', renamed)).id, id);

  // Move the pipeline up, above the default one.
  await page.getByRole('button', { name: `Move pipeline ${renamed} up` }).click();
  await page.waitForURL(/done=moved/);
  let all = (await kontor.api(token, 'GET', '/crm/v3/pipelines/deals')).body.results;
  assert.equal(all[0].id, id, 'the pipeline comes first');
  assert.equal(await page.getByRole('button', { name: `Move pipeline ${renamed} up` }).isDisabled(), true);

  // Stage Three up; Two's label and probability; an invalid probability is refused.
  await page.getByRole('button', { name: 'Move stage Three up' }).click();
  await page.waitForURL(/done=moved/);
  p = await apiPipeline(token, 'deals', renamed);
  assert.deepEqual(p.stages.map((s) => s.label), ['One', 'Three', 'Two']);
  await page.getByLabel('Probability of stage Two').fill('1.5');
  await page.getByRole('button', { name: 'Save stage Two' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator(`#stage-${stage.Two}-error`).innerText(), /probability, a number from 0.0 to 1.0/);
  assert.equal(await page.getByLabel('Probability of stage Two').inputValue(), '1.5', 'the input is kept');
  await page.getByLabel('Label of stage Two').fill('Won');
  await page.getByLabel('Probability of stage Two').fill('1');
  await page.getByRole('button', { name: 'Save stage Two' }).click();
  await page.waitForURL(/done=stage-saved/);
  p = await apiPipeline(token, 'deals', renamed);
  const won = p.stages.find((s) => s.id === stage.Two);
  assert.deepEqual([won.label, won.metadata.probability, won.metadata.isClosed], ['Won', '1', 'true']);

  // Add a stage.
  await page.locator(`#add-label-${id}`).fill('Four');
  await page.locator(`#add-detail-${id}`).fill('0.7');
  await page.getByRole('button', { name: `Add stage to ${renamed}` }).click();
  await page.waitForURL(/done=stage-added/);
  p = await apiPipeline(token, 'deals', renamed);
  assert.deepEqual(p.stages.map((s) => s.label), ['One', 'Three', 'Won', 'Four']);
  const four = p.stages[3].id;

  // The board; meanwhile the stage Four goes away through the API, and a deal dropped on its
  // column stays where it was, with the reason.
  const deal = await createDeal(token, { dealname: 'Stubborn', amount: '10', pipeline: id, dealstage: stage.One });
  await page.goto(kontor.url(`/app/objects/deals/board?pipeline=${id}`));
  assert.deepEqual((await columns(page)).map((c) => c.title), ['One', 'Three', 'Won', 'Four']);
  const gone = await kontor.api(token, 'DELETE', `/crm/v3/pipelines/deals/${id}/stages/${four}`);
  assert.equal(gone.status, 204, gone.text);
  const res = await drag(page, deal, four);
  assert.equal(res.status(), 400);
  const message = page.locator('#board-message');
  await message.waitFor();
  assert.equal(await message.getAttribute('role'), 'alert');
  assert.match(await message.innerText(), /“Stubborn” was not moved to Stage \d+\. That stage is not in this deal's pipeline/);
  const cols = await columns(page);
  assert.deepEqual(cols.find((c) => c.stage === stage.One).cards, [deal]);
  assert.equal(cols.some((c) => c.stage === four), false, 'the board now shows the pipeline without the stage');
  assert.equal(await dealStage(token, deal), stage.One);

  // The stage select and its button move a card without dragging.
  await page.getByLabel('Stage of Stubborn').selectOption(stage.Two);
  await page.locator(`#card-${deal}`).getByRole('button', { name: 'Move' }).click();
  await page.waitForURL(/moved=/);
  assert.match(await page.locator('#board-message').innerText(), /“Stubborn” is now in Won\./);
  assert.equal(await dealStage(token, deal), stage.Two);
});

btest('a ticket board uses the tickets pipeline; columns cap their cards', async ({ page }) => {
  const { user, token } = await setUp(kontor, 'admin');
  const inputs = [];
  for (let i = 0; i < 60; i += 1) {
    inputs.push({ properties: { subject: `Ticket ${i}`, hs_pipeline: '0', hs_pipeline_stage: '1' } });
  }
  const r = await kontor.api(token, 'POST', '/crm/v3/objects/tickets/batch/create', { inputs });
  assert.equal(r.status, 201, r.text);
  await signIn(page, kontor, user);
  await page.goto(kontor.url('/app/objects/tickets'));
  await page.getByRole('link', { name: 'Board' }).click();
  await page.waitForURL(/\/app\/objects\/tickets\/board/);
  const first = page.locator('#column-1');
  assert.match(await first.locator('.count').innerText(), /^60 tickets$/);
  assert.equal(await first.locator('.sum').count(), 0, 'tickets have no amount sum');
  assert.equal(await first.locator('.board-card').count(), 50);
  assert.match(await first.locator('.more').innerText(), /Showing 50 of 60/);
  await first.getByRole('link', { name: 'Show more' }).click();
  await page.waitForURL(/more=1/);
  assert.equal(await page.locator('#column-1 .board-card').count(), 60);
});

btest('a user cannot change pipelines: the pages and the changes are refused', async ({ page }) => {
  const { account, token } = await setUp(kontor, 'admin');
  const plain = await kontor.user(account.id, { role: 'user' });
  await signIn(page, kontor, plain);
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Objects', exact: true }).count(), 0);

  let res = await page.goto(kontor.url('/app/settings/objects/deals/pipelines'));
  assert.equal(res.status(), 403);
  await assertHeading(page, 'Not allowed');

  // With a valid form token of the user's own session, every change is still refused.
  await page.goto(kontor.url('/app/objects/deals/board'));
  assert.equal(await page.getByRole('link', { name: 'Edit pipelines' }).count(), 0);
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const was = (await kontor.api(token, 'GET', '/crm/v3/pipelines/deals')).body.results;
  const def = was[0];
  const tries = [
    ['/app/settings/objects/deals/pipelines', { label: 'Sneaky', stages: 'A | 0.5' }],
    [`/app/settings/objects/deals/pipelines/${def.id}`, { action: 'rename', label: 'Renamed' }],
    [`/app/settings/objects/deals/pipelines/${def.id}/stages`, { label: 'Extra', probability: '0.5' }],
    [`/app/settings/objects/deals/pipelines/${def.id}/stages/${def.stages[0].id}`, { action: 'archive', confirm: 'yes' }],
  ];
  for (const [path, form] of tries) {
    res = await page.request.post(kontor.url(path), { form: { _csrf: csrf, ...form }, maxRedirects: 0 });
    assert.equal(res.status(), 403, `${path} answered ${res.status()}`);
    assert.match(await res.text(), /Not allowed/);
  }
  const now = (await kontor.api(token, 'GET', '/crm/v3/pipelines/deals')).body.results;
  assert.deepEqual(now, was, 'nothing changed');

  // The board is for everyone: a user moves a deal with the stage select.
  const deal = await createDeal(token, { dealname: 'Everyday', pipeline: def.id, dealstage: def.stages[0].id });
  await page.goto(kontor.url('/app/objects/deals/board'));
  await page.getByLabel('Stage of Everyday').selectOption(def.stages[1].id);
  await page.locator(`#card-${deal}`).getByRole('button', { name: 'Move' }).click();
  await page.waitForURL(/moved=/);
  assert.equal(await dealStage(token, deal), def.stages[1].id);
});
