// Training in the browser: run the demo from the empty home page, watch the
// job's log stream in and its metric charts appear, see it complete with
// its cost; register it, set an alias and see its lineage; clone it into a
// long job and stop it; run a shorter one, register it, and compare the two.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, closeSession, hydrated } from './harness.mjs';

const USER = { email: 'tess@example.com', password: 'training password 123' };

let session, capstan, page, go;

before(async () => {
  session = await openSession();
  ({ capstan, page, go } = session);
  capstan.cli(['user', 'create', '--email', USER.email, '--name', 'Tess', '--site-admin'], USER.password + '\n');
});

after(() => closeSession(session));

test('run the demo, watch logs and metrics live, see it complete with its cost; stop a clone', async () => {
  await go('/login');
  await page.fill('input[name=email]', USER.email);
  await page.fill('input[name=password]', USER.password);
  await page.click('button[type=submit]');
  await page.waitForURL(capstan.base + '/');
  await hydrated(page);

  // the empty home page offers the demo
  await page.click('#demo-form button[type=submit]');
  await page.click('#demo-continue', { timeout: 60_000 });
  await page.waitForURL(/\/teams\/demo\/training\/[0-9a-f-]+$/, { timeout: 60_000 });
  const jobUrl = page.url();
  await hydrated(page);

  // the log streams in while the job runs, and the metric charts appear
  await page.waitForFunction(() => document.querySelector('#log')?.textContent.includes('epoch='), null, { timeout: 90_000 });
  const statusWhileStreaming = await page.$eval('.crumbs .pill', (p) => p.dataset.status);
  assert.ok(['starting', 'downloading', 'training', 'uploading', 'completed'].includes(statusWhileStreaming), statusWhileStreaming);
  await page.waitForSelector('figure.chart[data-metric=loss] polyline', { timeout: 30_000 });
  await page.waitForSelector('figure.chart[data-metric=accuracy]');

  // it completes with an artifact and an actual cost
  await page.waitForSelector('.crumbs [data-status=completed]', { timeout: 120_000 });
  const cost = await page.textContent('[data-testid=actual-cost]');
  assert.match(cost, /^\$\d+\.\d+/);
  assert.match(await page.textContent('[data-testid=artifact]'), /^s3:\/\/capstan\/jobs\/demo\/.+\/output\/model\.tar\.gz$/);
  const timeline = await page.textContent('[data-testid=timeline]');
  for (const step of ['Starting', 'Downloading', 'Training', 'Uploading', 'Completed']) assert.ok(timeline.includes(step), step);
  await page.waitForFunction(() => document.querySelector('[data-testid=log-state]')?.textContent.startsWith('complete'), null, { timeout: 30_000 });
  const log = await page.textContent('#log');
  assert.ok(log.includes('epoch=40 loss='), 'every epoch was streamed');

  // the list shows it with the month's spend
  await go('/teams/demo/training');
  await page.waitForSelector('#jobs [data-status=completed]');
  assert.match(await page.textContent('[data-testid=month-cost]'), /\$\d/);

  // the completed job becomes version 1 of a model of our choosing, with its metrics and lineage
  await go(jobUrl.replace(capstan.base, ''));
  await page.fill('#register-job input[name=model]', 'churn-candidates');
  await page.click('#register-job button[type=submit]');
  await page.waitForSelector('#register-job .notice:has-text("Registered as version 1 of")');
  await page.click('#register-job .notice a');
  await page.waitForURL(/\/teams\/demo\/models\/[0-9a-f-]+$/);
  await page.waitForSelector('#versions tr[data-number="1"]');
  const row = await page.textContent('#versions tr[data-number="1"]');
  assert.ok(row.includes('epochs = 40') && row.includes('training job'), row);
  assert.match(await page.textContent('#versions tr[data-number="1"] td[data-metric=loss]'), /^\d+\.\d{4}$/);
  // name it: staging → v1
  await page.fill('#versions tr[data-number="1"] .set-alias input[name=alias]', 'staging');
  await page.click('#versions tr[data-number="1"] .set-alias button[type=submit]');
  await page.waitForSelector('#aliases li[data-alias=staging]:has-text("→ v1")');
  // its page draws where it came from: dataset version → training job → version, each a link
  await page.click('#versions tr[data-number="1"] td a:has(strong)');
  await page.waitForURL(/\/teams\/demo\/model-versions\/[0-9a-f-]+$/);
  await page.waitForSelector('#lineage svg');
  const nodes = await page.$$eval('#lineage g.node', (g) => g.map((e) => e.getAttribute('class')));
  assert.deepEqual(nodes, ['node dataset', 'node job', 'node version']);
  assert.equal(await page.getAttribute('#lineage a:has(g.job)', 'href'), jobUrl.replace(capstan.base, ''));
  assert.ok((await page.textContent('#metrics')).includes('loss'));
  assert.equal(await page.getAttribute('#version-status', 'data-status'), 'PendingManualApproval');
  // the demo registered its own job as version 1 of churn, named champion, by itself
  for (let i = 0; ; i++) {
    await go('/teams/demo/models');
    const names = await page.$$eval('#models td a strong', (s) => s.map((e) => e.textContent));
    if (names.includes('churn') && names.includes('churn-candidates')) break;
    assert.ok(i < 20, `the demo registers its completed job; models: ${names}`);
    await page.waitForTimeout(500);
  }
  await page.waitForSelector('#models tr:has(strong:text-is("churn")) [data-alias=champion]:has-text("→ v1")');
  await page.click('#models td a:has(strong:text-is("churn"))');
  await page.waitForSelector('#aliases li[data-alias=champion]:has-text("→ v1")');
  // protected by the demo, with its history from the audit log on the alias's page
  await page.waitForSelector('#aliases li[data-alias=champion] .pill:has-text("protected")');
  await page.click('#aliases li[data-alias=champion] a.alias-page');
  await page.waitForURL(/\/teams\/demo\/models\/[0-9a-f-]+\/aliases\/champion$/);
  await page.waitForSelector('#alias-now a.request-move');
  const changes = await page.$$eval('#changes tbody tr td.what .change', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(changes, ['champion protected', 'champion set → v1'], changes.join(' | '));

  // clone it into a long run, then stop it
  await go(jobUrl.replace(capstan.base, ''));
  await page.click('a:has-text("Clone")');
  await page.waitForURL(/\/training\/new\?clone=/);
  await hydrated(page);
  await page.fill('#launch-form input[name=name]', 'long-run');
  await page.fill('[data-value=hyperparameter-0]', '1000');
  // a metric regex is checked as soon as it is entered
  const good = await page.inputValue('[data-value=metric-0]');
  await page.fill('[data-value=metric-0]', 'loss=(');
  await page.press('[data-value=metric-0]', 'Tab');
  assert.match(await page.textContent('[data-row-error=metric-0]'), /does not compile/);
  await page.fill('[data-value=metric-0]', good);
  await page.press('[data-value=metric-0]', 'Tab');
  await page.waitForSelector('[data-row-error=metric-0]', { state: 'detached' });
  await page.click('#launch-form button[type=submit]');
  await page.waitForURL(/\/teams\/demo\/training\/[0-9a-f-]+$/, { timeout: 30_000 });
  assert.notEqual(page.url(), jobUrl);
  await hydrated(page);
  await page.waitForSelector('.crumbs [data-status=training]', { timeout: 90_000 });
  await page.waitForFunction(() => document.querySelector('#log')?.textContent.includes('epoch=2 '), null, { timeout: 60_000 });
  await page.click('button:has-text("Stop")');
  await page.waitForSelector('.crumbs [data-status=stopped]', { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector('#log')?.textContent.includes('SIGTERM received'), null, { timeout: 30_000 });

  // a second run with other hyperparameters becomes version 2 of the same model
  await go(jobUrl.replace(capstan.base, ''));
  await page.click('a:has-text("Clone")');
  await page.waitForURL(/\/training\/new\?clone=/);
  await hydrated(page);
  await page.fill('#launch-form input[name=name]', 'short-run');
  await page.fill('[data-value=hyperparameter-0]', '20');
  await page.click('#launch-form button[type=submit]');
  await page.waitForURL(/\/teams\/demo\/training\/[0-9a-f-]+$/, { timeout: 30_000 });
  await page.waitForSelector('.crumbs [data-status=completed]', { timeout: 120_000 });
  await hydrated(page);
  await page.fill('#register-job input[name=model]', 'churn-candidates');
  await page.click('#register-job button[type=submit]');
  await page.waitForSelector('#register-job .notice:has-text("Registered as version 2 of")');

  // search the model's versions, pick both, and compare: one chart per metric with both curves
  await go(`/teams/demo/model-versions?filter=${encodeURIComponent("model = 'churn-candidates'")}&order_by=number+asc`);
  const found = await page.$$eval('#search-results tbody tr', (rows) => rows.map((r) => r.dataset.version));
  assert.deepEqual(found, ['churn-candidates/1', 'churn-candidates/2']);
  await page.check('#search-results tr[data-version="churn-candidates/1"] input[name=v]');
  await page.check('#search-results tr[data-version="churn-candidates/2"] input[name=v]');
  await page.click('#compare-form button[type=submit]');
  await page.waitForURL(/\/teams\/demo\/compare\?v=/);
  await page.waitForSelector('#compare-charts figure.chart[data-metric=loss][data-lines="2"]');
  assert.equal(await page.locator('#compare-charts figure.chart[data-metric=loss] polyline').count(), 2);
  const epochs = await page.$$eval('#compare tr[data-param=epochs] td', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(epochs, ['40', '20']);
  // a shared link shows the same comparison after a full load
  await go(page.url().replace(capstan.base, ''));
  await page.waitForSelector('#compare-charts figure.chart[data-metric=accuracy][data-lines="2"]');
});
