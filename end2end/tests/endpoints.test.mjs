// Endpoints in the browser: a member creates an endpoint with two variants
// picked from the registry, waits for it to serve, invokes it from the page
// (pinned to a variant), changes the weights with the live preview, and the
// split chart follows; then replaces a variant with a new one on two processes.
// An experiment started from the endpoint page follows the outcomes reported
// for the gateway's invocations to a verdict.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSession, closeSession } from './harness.mjs';

const USER = { email: 'eve@example.com', password: 'endpoint password 123' };

// script-mode handlers: the model is a JSON file naming itself
const INFERENCE = `
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    return {"model": model["name"], "rows": len(data)}
`;

let session, capstan, page, go;

before(async () => {
  session = await openSession();
  ({ capstan, page, go } = session);
  capstan.cli(['user', 'create', '--email', USER.email, '--name', 'Eve'], USER.password + '\n');
});

after(() => closeSession(session));


/// A model.tar.gz in the team's area of local mode's bucket: model.json and code/inference.py.
function modelArchive(name) {
  const dir = mkdtempSync(join(tmpdir(), 'capstan-model-'));
  mkdirSync(join(dir, 'code'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ name }));
  writeFileSync(join(dir, 'code/inference.py'), INFERENCE);
  const target = join(capstan.dataDir, `s3/data/capstan/models/ml/${name}/model.tar.gz`);
  mkdirSync(join(target, '..'), { recursive: true });
  execFileSync('tar', ['czf', target, '-C', dir, 'model.json', 'code/inference.py']);
  return `s3://capstan/models/ml/${name}/model.tar.gz`;
}

const legend = async (selector) => (await page.textContent(selector)).replace(/\s+/g, ' ').trim();

test('create an endpoint with two variants, invoke it from the page, change weights, see the split move', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'setup']).trim();
  await session.api(token, 'POST', '/teams', { slug: 'ml', name: 'ML' });
  const model = await session.api(token, 'POST', '/teams/ml/models', { name: 'clf' });
  const versions = [];
  for (const name of ['alpha', 'beta']) {
    versions.push(await session.api(token, 'POST', `/models/${model.id}/versions`, { artifact_uri: modelArchive(name) }));
  }

  await session.signIn(USER);
  await go('/teams/ml/endpoints');
  await page.click('a:has-text("New endpoint")');
  await page.waitForURL(/\/teams\/ml\/endpoints\/new$/);
  await page.waitForSelector('#create-endpoint');
  await page.fill('#create-endpoint input[name=name]', 'web');
  await page.fill('#create-endpoint input[name="variants[0][name]"]', 'a');
  await page.selectOption('#create-endpoint select[name="variants[0][version_id]"]', versions[0].id);
  await page.fill('#create-endpoint input[name="variants[0][weight]"]', '1');
  await page.fill('#create-endpoint input[name="variants[1][name]"]', 'b');
  await page.selectOption('#create-endpoint select[name="variants[1][version_id]"]', versions[1].id);
  await page.fill('#create-endpoint input[name="variants[1][weight]"]', '1');
  await page.click('#create-endpoint button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/endpoints\/[0-9a-f-]{36}$/);
  // the page follows the endpoint until its processes answer
  await page.waitForSelector('#endpoint-status:has-text("InService")', { timeout: 60_000 });
  assert.equal(await legend('#variants tr[data-variant=a] td.share'), '50.0 %');

  // invoke from the page, pinned to b
  await page.selectOption('#invoke select[name=content_type]', 'application/json');
  await page.fill('#invoke textarea[name=body]', '[[1, 2], [3, 4]]');
  await page.selectOption('#invoke select[name=variant]', 'b');
  await page.click('#invoke button[type=submit]');
  await page.waitForSelector('#invoke-result strong[data-variant=b]');
  assert.ok((await page.textContent('#invoke-result pre')).includes('"model": "beta"'));

  // weights: the preview follows the typing, the chart follows the change
  await page.fill('#weights input[data-variant=a]', '0');
  await page.waitForSelector('#weights-preview .legend-item[data-variant=b]:has-text("100.0 %")');
  await page.click('#weights button[type=submit]');
  await page.waitForSelector('#variants tr[data-variant=b] td.share:has-text("100.0 %")');
  assert.ok((await legend('.split-legend .legend-item[data-variant=a]')).includes('0.0 %'));
  const endpoint = (await session.api(token, 'GET', '/teams/ml/endpoints'))[0];
  assert.deepEqual(endpoint.variants.map((v) => v.weight), [0, 1]);
  // the timeline says who changed what
  await page.waitForSelector('#events tr[data-action="endpoint.weights_changed"]:has-text("Weights: a 1 → 0")');
  await page.waitForSelector('#events tr[data-action="endpoint.created"]:has-text("Created with a (")');
  // by weight now, every answer is b's
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${capstan.base}/endpoints/ml-web/invocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '[[1]]',
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal(res.headers.get('x-amzn-invoked-production-variant'), 'b');
  }

  // sample traffic from the page: the notice says until when, and the charts show traffic
  await page.fill('#sample-traffic input[name=body]', '[[1, 2]]');
  await page.selectOption('#sample-traffic select[name=content_type]', 'application/json');
  await page.fill('#sample-traffic input[name=seconds]', '5');
  await page.click('#sample-traffic button[type=submit]');
  await page.waitForSelector('#sample-traffic-started');
  await page.waitForSelector('#traffic .charts svg', { timeout: 40_000 });

  // the variants editor: b goes ("remove" as its version), c comes in the blank row on two processes
  await page.selectOption('#edit-variants select[name="variants[1][version_id]"]', '');
  await page.fill('#edit-variants input[name="variants[2][name]"]', 'c');
  await page.selectOption('#edit-variants select[name="variants[2][version_id]"]', versions[0].id);
  await page.fill('#edit-variants input[name="variants[2][instance_count]"]', '2');
  await page.fill('#edit-variants input[name="variants[2][weight]"]', '3');
  await page.click('#edit-variants button[type=submit]');
  await page.waitForSelector('#variants tr[data-variant=c] td.share:has-text("100.0 %")');
  await page.waitForSelector('#endpoint-status:has-text("InService")', { timeout: 60_000 });
  await page.waitForSelector('#variants tr[data-variant=c] .pill:has-text("#1 Healthy")', { timeout: 60_000 });
  assert.equal(await page.locator('#variants tr[data-variant=b]').count(), 0, 'b is gone');
  const changed = await session.api(token, 'GET', `/endpoints/${endpoint.id}`);
  assert.deepEqual(changed.variants.map((v) => [v.name, v.instance_count, v.weight]), [['a', 1, 0], ['c', 2, 3]]);
});

test('a team admin sets a budget below the month\'s spend: the banner appears on the team\'s pages, and goes with the budget', async () => {
  // the endpoint of the test above has been accruing its instance-hours since it was created
  await go('/teams/ml/budget');
  await page.waitForSelector('#budget-status .empty');
  assert.equal(await page.locator('#budget-banner').count(), 0, 'no budget, no banner');
  // a refused budget names its field and keeps the page as it was
  await page.fill('#set-budget input[name=monthly_usd]', '0');
  await page.click('#set-budget button[type=submit]');
  await page.waitForSelector('#set-budget .field-error:has-text("above 0")');
  await page.waitForSelector('#budget-status .empty');
  // a budget of a thousandth of a cent is spent already
  await page.fill('#set-budget input[name=monthly_usd]', '0.00001');
  await page.fill('#set-budget input[name=alert_percent]', '50');
  await page.click('#set-budget button[type=submit]');
  await page.waitForSelector('#budget-status:has-text("of $")');
  assert.ok((await page.textContent('#budget-status')).includes('Alert at 50 %'));
  // every page of the team says so, with a link to the budget
  await go('/teams/ml/endpoints');
  await page.waitForSelector('#budget-banner[data-level=exceeded]:has-text("Over budget")');
  await page.click('#budget-banner a');
  await page.waitForURL(/\/teams\/ml\/budget$/);
  await page.waitForSelector('#budget-status svg');
  // removed: the banner goes
  await page.click('button:has-text("Remove the budget")');
  await page.waitForSelector('#budget-status .empty');
  await go('/teams/ml');
  await page.waitForSelector('text=Members');
  assert.equal(await page.locator('#budget-banner').count(), 0, 'the banner went with the budget');
});

test('with a policy on weights, the weights editor opens a change request whose page shows the split before and after; once approved, the weights change', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'policy']).trim();
  capstan.cli(['user', 'create', '--email', 'fay@example.com', '--name', 'Fay'], USER.password + '\n');
  const fay = capstan.cli(['token', 'create', '--email', 'fay@example.com', '--name', 'review']).trim();
  await session.api(token, 'POST', '/teams/ml/members', { email: 'fay@example.com', role: 'approver' });
  await session.api(token, 'PUT', '/teams/ml/approval-policies', {
    policies: [{ kind: 'endpoint.weights', approvals_required: 1, min_role: 'approver', expires_after_hours: 24 }],
  });
  const endpoint = (await session.api(token, 'GET', '/teams/ml/endpoints')).find((e) => e.name === 'web');
  assert.deepEqual(endpoint.needs_request, ['endpoint.weights']);

  await go(`/teams/ml/endpoints/${endpoint.id}`);
  await page.waitForSelector('#weights[data-request="endpoint.weights"]');
  await page.fill('#weights input[data-variant=a]', '1');
  await page.waitForSelector('#weights-preview .legend-item[data-variant=a]:has-text("25.0 %")');
  await page.click('#weights button[type=submit]');
  // the new-request page: the split now and after the change
  await page.waitForURL(/\/teams\/ml\/reviews\/new\?kind=endpoint\.weights/);
  await page.waitForSelector('#proposed-split [data-side=after] .legend-item[data-variant=a]:has-text("25.0 %")');
  assert.ok((await legend('#proposed-split [data-side=before] .legend-item[data-variant=a]')).includes('0.0 %'));
  await page.fill('#request-form input[name=title]', 'Send a quarter to a');
  await page.click('#request-form button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/change-requests\/[0-9a-f-]{36}$/);
  await page.waitForSelector('#diff-split [data-side=after] .legend-item[data-variant=a]:has-text("25.0 %")');
  assert.ok((await legend('#diff-split [data-side=before] .legend-item[data-variant=c]')).includes('100.0 %'));
  // nothing changed yet: the change waits for the approver
  assert.deepEqual((await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => v.weight), [0, 3]);
  const id = page.url().split('/').pop();
  await session.api(fay, 'POST', `/change-requests/${id}/approve`, { comment: 'fine' });
  await page.waitForSelector('#request-state[data-state=applied]', { timeout: 30_000 });
  assert.deepEqual((await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => v.weight), [1, 3]);
  await go(`/teams/ml/endpoints/${endpoint.id}`);
  await page.waitForSelector('#variants tr[data-variant=a] td.share:has-text("25.0 %")');
});

test('an experiment: started from the endpoint page, outcomes of the gateway\'s invocations reported, the verdict and the intervals follow', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'experiment']).trim();
  const model = await session.api(token, 'POST', '/teams/ml/models', { name: 'ranker' });
  const versions = [];
  for (const name of ['gamma', 'delta']) {
    versions.push(await session.api(token, 'POST', `/models/${model.id}/versions`, { artifact_uri: modelArchive(name) }));
  }
  const variant = (name, v) => ({ name, version_id: v.id, instance_type: 'ml.m5.large', instance_count: 1, weight: 1 });
  const endpoint = await session.api(token, 'POST', '/teams/ml/endpoints', {
    name: 'rank', variants: [variant('control', versions[0]), variant('treatment', versions[1])],
  });
  for (let i = 0; ; i++) {
    const e = await session.api(token, 'GET', `/endpoints/${endpoint.id}`);
    assert.notEqual(e.status, 'Failed', JSON.stringify(e));
    if (e.status === 'InService') break;
    assert.ok(i < 240, 'the endpoint serves within two minutes');
    await new Promise((r) => setTimeout(r, 500));
  }

  // from the endpoint page to its experiment, which starts empty
  await go(`/teams/ml/endpoints/${endpoint.id}`);
  await page.click('#experiment-link');
  await page.waitForURL(/\/experiment$/);
  await page.waitForSelector('#no-experiment');
  await page.fill('#experiment-settings input[name=metric]', 'click');
  await page.selectOption('#experiment-settings select[name=baseline]', 'control');
  await page.click('#experiment-settings button[type=submit]');
  await page.waitForSelector('#experiment-verdict');

  // 800 invocations through the gateway; treatment's answers are clicked four times as often
  const outcomes = [];
  const seen = { control: 0, treatment: 0 };
  for (let i = 0; i < 800; i++) {
    const res = await fetch(`${capstan.base}/endpoints/ml-rank/invocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '[[1]]',
    });
    assert.equal(res.status, 200, await res.text());
    const served = res.headers.get('x-amzn-invoked-production-variant');
    const id = res.headers.get('x-capstan-invocation-id');
    assert.equal(id, `${res.headers.get('x-request-id')}.${served}`);
    const n = seen[served]++;
    const clicked = served === 'treatment' ? n % 5 !== 0 : n % 5 === 0;
    if (clicked) outcomes.push({ request_id: id, metric: 'click', value: 1 });
  }
  for (let i = 0; i < outcomes.length; i += 300) {
    const done = await session.api(token, 'POST', `/endpoints/${endpoint.id}/outcomes`, { outcomes: outcomes.slice(i, i + 300) });
    assert.equal(done.duplicates, 0);
  }
  // the page follows the rollups (written every 10 s) by itself
  await page.waitForSelector('#experiment-verdict:has-text("significant: treatment better")', { timeout: 60_000 });
  await page.waitForSelector('#experiment-variants tr[data-variant=treatment] .pill:has-text("better")');
  assert.equal(await legend('#experiment-variants tr[data-variant=control] td:nth-child(3)'), String(seen.control));
  await page.waitForSelector('#experiment .charts svg');
  assert.equal(await page.locator('#srm-warning').count(), 0, 'a 1:1 split served 1:1 is no mismatch');
});

test('a manual rollout from the endpoint page: started, promoted a step, aborted back to the baseline', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'rollout']).trim();
  const endpoint = (await session.api(token, 'GET', '/teams/ml/endpoints')).find((e) => e.name === 'rank');
  await session.api(token, 'PUT', '/teams/ml/approval-policies', { policies: [] });
  await session.api(token, 'PUT', `/endpoints/${endpoint.id}/weights`, { weights: [{ variant: 'control', weight: 1 }, { variant: 'treatment', weight: 0 }] });
  await go(`/teams/ml/endpoints/${endpoint.id}`);
  await page.click('#rollouts-link');
  await page.waitForURL(/\/rollouts$/);
  await page.waitForSelector('#no-rollouts');
  await page.selectOption('#start-rollout select[name=baseline]', 'control');
  await page.fill('#start-rollout input[name=candidate]', 'treatment');
  await page.selectOption('#start-rollout select[name=strategy]', 'manual');
  await page.fill('#start-rollout input[name=step_percent]', '25');
  await page.click('#start-rollout button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/rollouts\/[0-9a-f-]{36}$/);
  // the worker takes the first step: a quarter to the candidate
  await page.waitForSelector('#rollout-steps tr[data-percent="25"]', { timeout: 30_000 });
  await page.waitForSelector('#rollout-steps tr[data-planned="50"]');
  await page.click('#rollout-promote');
  await page.waitForSelector('#rollout-steps tr[data-percent="50"]:has-text("eve@example.com")');
  let weights = (await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => [v.name, v.weight]);
  assert.deepEqual(weights, [['control', 0.5], ['treatment', 0.5]]);
  await page.click('#rollout-abort');
  await page.waitForSelector('#rollout-state[data-state=aborted]');
  assert.ok((await page.textContent('#rollout-reason')).includes('Aborted by eve@example.com'));
  weights = (await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => [v.name, v.weight]);
  assert.deepEqual(weights, [['control', 1], ['treatment', 0]]);
  await page.waitForSelector('#rollout-traffic svg');
});

/// Sends `n` invocations of endpoint `ml-rank`; the answers' variants and invocation ids.
async function invokeRank(token, n) {
  const served = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${capstan.base}/endpoints/ml-rank/invocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '[[1]]',
    });
    await res.arrayBuffer();
    served.push({ status: res.status, variant: res.headers.get('x-amzn-invoked-production-variant'), id: res.headers.get('x-capstan-invocation-id') });
  }
  return served;
}

test('a canary under the fault switch: errors injected into the candidate from the rollout page, its guardrail rolls it back', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'fault']).trim();
  const endpoint = (await session.api(token, 'GET', '/teams/ml/endpoints')).find((e) => e.name === 'rank');
  await go(`/teams/ml/endpoints/${endpoint.id}/rollouts`);
  await page.selectOption('#start-rollout select[name=baseline]', 'control');
  await page.fill('#start-rollout input[name=candidate]', 'treatment');
  await page.selectOption('#start-rollout select[name=strategy]', 'canary');
  await page.fill('#start-rollout input[name=step_percent]', '50');
  await page.fill('#start-rollout input[name=interval_seconds]', '3600');
  await page.fill('#start-rollout input[name=min_requests]', '20');
  await page.click('#start-rollout button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/rollouts\/[0-9a-f-]{36}$/);
  const rollout = page.url().split('/').pop();
  await page.waitForSelector('#rollout-steps tr[data-percent="50"]', { timeout: 30_000 });
  await page.waitForSelector('#fault-now:has-text("No fault injected")');
  await page.fill('#fault-switch input[name=error_percent]', '60');
  await page.click('#fault-inject');
  await page.waitForSelector('#fault-now:has-text("60 %")');
  // traffic until the guardrail has judged (rollups every 10 s, the worker every 2 s)
  let failed = 0;
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await session.api(token, 'GET', `/rollouts/${rollout}`);
    if (r.state === 'rolled_back') break;
    assert.equal(r.state, 'running', JSON.stringify(r));
    assert.ok(Date.now() < deadline, `rolled back within a minute or so: ${JSON.stringify(r)}`);
    failed += (await invokeRank(token, 20)).filter((s) => s.status === 424 && s.variant === 'treatment').length;
    await new Promise((done) => setTimeout(done, 250));
  }
  assert.ok(failed > 0, 'the switch failed some of the candidate\'s requests');
  await page.waitForSelector('#rollout-state[data-state=rolled_back]', { timeout: 15_000 });
  assert.match(await page.textContent('#rollout-reason'), /error rate/);
  assert.equal(await page.locator('#fault-switch').count(), 0, 'no switch on a finished rollout');
  const weights = (await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => [v.name, v.weight, v.fault_percent ?? 0]);
  assert.deepEqual(weights, [['control', 1, 0], ['treatment', 0, 60]]);
  await session.api(token, 'PUT', `/endpoints/${endpoint.id}/faults`, { variant: 'treatment', error_percent: 0 });
});

test('a bandit turned on from the experiment page moves the traffic to the variant that converts, and stops', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'bandit']).trim();
  const endpoint = (await session.api(token, 'GET', '/teams/ml/endpoints')).find((e) => e.name === 'rank');
  await go(`/teams/ml/endpoints/${endpoint.id}/experiment`);
  await page.waitForSelector('#bandit');
  assert.equal(await page.locator('#bandit-status').count(), 0);
  // the form starts from the experiment's metric
  assert.equal(await page.inputValue('#bandit input[name=metric]'), 'click');
  await page.fill('#bandit input[name=interval_seconds]', '1');
  await page.fill('#bandit input[name=min_percent]', '10');
  await page.fill('#bandit input[name=max_percent]', '90');
  await page.click('#bandit-save');
  await page.waitForSelector('#bandit-status:has-text("every 1 s")');
  // the first run shares the traffic evenly (nothing known yet), then treatment converts 4 times as often
  for (let i = 0; ; i++) {
    const served = (await invokeRank(token, 100)).filter((s) => s.status === 200);
    const outcomes = served
      .filter((s, k) => (s.variant === 'treatment' ? k % 5 !== 0 : k % 5 === 0))
      .map((s) => ({ request_id: s.id, metric: 'click', value: 1 }));
    if (outcomes.length) await session.api(token, 'POST', `/endpoints/${endpoint.id}/outcomes`, { outcomes });
    const weights = Object.fromEntries((await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => [v.name, v.weight]));
    if (weights.treatment === 0.9 && weights.control === 0.1) break;
    assert.ok(i < 60, `the bandit moves the traffic within a minute or so: ${JSON.stringify(weights)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await page.waitForSelector('#bandit-variants tr[data-variant=treatment]:has-text("90.0 %")', { timeout: 30_000 });
  await page.click('#bandit-stop');
  await page.waitForSelector('#bandit-save:has-text("Turn on")');
  assert.equal(await page.locator('#bandit-status').count(), 0);
  const weights = (await session.api(token, 'GET', `/endpoints/${endpoint.id}`)).variants.map((v) => [v.name, v.weight]);
  assert.deepEqual(weights, [['control', 0.1], ['treatment', 0.9]], 'stopping keeps the weights');

  // the endpoint page scores its health from the same traffic
  await go(`/teams/ml/endpoints/${endpoint.id}`);
  await page.waitForSelector('#health-parts tr[data-part=errors]');
  assert.match(await page.textContent('#health-score'), /\/ 100/);
  assert.match(await page.textContent('#health-parts tr[data-part=latency]'), /p99 \d+/);
});

test('with a policy on rollouts and bandits, their forms open change requests; an approved rollout starts as its author\'s', async () => {
  const token = capstan.cli(['token', 'create', '--email', USER.email, '--name', 'requests']).trim();
  const fay = capstan.cli(['token', 'create', '--email', 'fay@example.com', '--name', 'review-rollout']).trim();
  const policy = (kind) => ({ kind, approvals_required: 1, min_role: 'approver', expires_after_hours: 24 });
  await session.api(token, 'PUT', '/teams/ml/approval-policies', { policies: [policy('endpoint.rollout'), policy('endpoint.bandit')] });
  const endpoint = (await session.api(token, 'GET', '/teams/ml/endpoints')).find((e) => e.name === 'rank');
  assert.deepEqual(endpoint.needs_request, ['endpoint.bandit', 'endpoint.rollout']);
  const before = (await session.api(token, 'GET', `/endpoints/${endpoint.id}/rollouts`)).map((r) => r.id);

  // the rollouts page's form becomes a request: the new-request page shows where the rollout ends
  await go(`/teams/ml/endpoints/${endpoint.id}/rollouts`);
  await page.waitForSelector('#start-rollout #request-rollout');
  await page.selectOption('#start-rollout select[name=baseline]', 'control');
  await page.fill('#start-rollout input[name=candidate]', 'treatment');
  await page.selectOption('#start-rollout select[name=strategy]', 'manual');
  await page.fill('#start-rollout input[name=step_percent]', '20');
  await page.click('#start-rollout button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/reviews\/new\?kind=endpoint\.rollout/);
  await page.waitForSelector('#proposed-split [data-side=after] .legend-item[data-variant=treatment]:has-text("100.0 %")');
  await page.click('#request-form button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/change-requests\/[0-9a-f-]{36}$/);
  assert.equal((await session.api(token, 'GET', `/endpoints/${endpoint.id}/rollouts`)).length, before.length, 'nothing starts before approval');
  const id = page.url().split('/').pop();
  await session.api(fay, 'POST', `/change-requests/${id}/approve`, { comment: 'go' });
  await page.waitForSelector('#request-state[data-state=applied]', { timeout: 30_000 });
  const rollouts = await session.api(token, 'GET', `/endpoints/${endpoint.id}/rollouts`);
  const started = rollouts.find((r) => !before.includes(r.id));
  assert.ok(started && rollouts.length === before.length + 1, JSON.stringify(rollouts));
  // it started as its author's (the candidate's earlier errors in this minute may roll it back at once)
  assert.equal(started.strategy, 'manual');
  assert.equal(started.step_percent, 20);
  assert.equal(started.created_by, USER.email);
  assert.ok(started.steps.length >= 1 && started.steps[0].percent === 20, JSON.stringify(started));
  if (started.state === 'running') await session.api(token, 'POST', `/rollouts/${started.id}/abort`, {});

  // the bandit's form too: the request says within which bounds the weights will move
  await go(`/teams/ml/endpoints/${endpoint.id}/experiment`);
  await page.waitForSelector('#bandit #request-bandit');
  await page.fill('#bandit input[name=interval_seconds]', '60');
  await page.fill('#bandit input[name=min_percent]', '20');
  await page.click('#bandit button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/reviews\/new\?kind=endpoint\.bandit/);
  assert.match(await page.textContent('#bandit-after'), /every 60 s, each variant between 20 % and 90 %/);
  await page.click('#request-form button[type=submit]');
  await page.waitForURL(/\/teams\/ml\/change-requests\/[0-9a-f-]{36}$/);
  await session.api(token, 'PUT', '/teams/ml/approval-policies', { policies: [] });
});
