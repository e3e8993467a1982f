// Reviews in the browser: an author opens a request to move the protected
// alias `champion`, an approver sees the badge, opens the request, sees
// the diff with both versions' metrics, approves; the alias moves, and its
// history names the request and both people.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSession, closeSession } from './harness.mjs';

const AUTHOR = { email: 'ava@example.com', password: 'author password 123' };
const APPROVER = { email: 'bo@example.com', password: 'approver password 123' };

let session, capstan, page, go;

before(async () => {
  session = await openSession();
  ({ capstan, page, go } = session);
  capstan.cli(['user', 'create', '--email', AUTHOR.email, '--name', 'Ava', '--site-admin'], AUTHOR.password + '\n');
  capstan.cli(['user', 'create', '--email', APPROVER.email, '--name', 'Bo'], APPROVER.password + '\n');
});

after(() => closeSession(session));


test('an author requests a move of champion, an approver approves it, the alias moves', async () => {
  // a team with a model of two versions and a protected champion on v1 (set up through the API)
  const token = capstan.cli(['token', 'create', '--email', AUTHOR.email, '--name', 'setup']).trim();
  await session.api(token, 'POST', '/teams', { slug: 'ml', name: 'ML' });
  await session.api(token, 'POST', '/teams/ml/members', { email: APPROVER.email, role: 'approver' });
  const artifact = join(capstan.dataDir, 's3/data/capstan/models/ml/churn/model.tar.gz');
  mkdirSync(join(artifact, '..'), { recursive: true });
  writeFileSync(artifact, 'weights');
  const model = await session.api(token, 'POST', '/teams/ml/models', { name: 'churn' });
  const versions = [];
  for (const auc of [0.81, 0.88]) {
    versions.push(await session.api(token, 'POST', `/models/${model.id}/versions`,
      { artifact_uri: 's3://capstan/models/ml/churn/model.tar.gz', metrics: { auc } }));
  }
  await session.api(token, 'PUT', `/models/${model.id}/aliases/champion`, { version_id: versions[0].id });
  await session.api(token, 'POST', `/models/${model.id}/aliases/champion/protect`);

  // the author asks, from the model page
  await session.signIn(AUTHOR);
  await go(`/teams/ml/models/${model.id}`);
  await page.click('#aliases li[data-alias=champion] a.request-move');
  await page.waitForURL(/\/teams\/ml\/reviews\/new\?/);
  await page.selectOption('#request-form select[name=version]', versions[1].id);
  await page.fill('#request-form input[name=title]', 'Promote v2: better AUC');
  await page.fill('#request-form textarea[name=justification]', 'AUC 0.88 against 0.81');
  await page.click('#request-form button[type=submit]');
  await page.waitForSelector('#request-opened a');
  await page.click('#request-opened a');
  await page.waitForSelector('#request-state[data-state=open]');
  assert.equal(await page.$('#review-form'), null, 'the author cannot approve their own request');
  assert.ok((await page.textContent('#waiting-on')).includes(APPROVER.email), 'who may still approve');
  await session.signOut();

  // the approver sees the badge, opens the request, reads the diff, approves
  await session.signIn(APPROVER);
  await go('/teams/ml');
  assert.equal((await page.textContent('#reviews-badge')).trim(), '1');
  await page.click('#nav-reviews');
  await page.waitForSelector('#requests a:has-text("Promote v2")');
  await page.click('#requests a:has-text("Promote v2")');
  await page.waitForSelector('#diff-before');
  assert.equal(await page.textContent('#diff-before'), 'v1');
  assert.equal(await page.textContent('#diff-after'), 'v2');
  const metrics = await page.textContent('#diff-metrics');
  assert.ok(metrics.includes('0.810000') && metrics.includes('0.880000'), metrics);
  await page.fill('#review-form textarea[name=comment]', 'Looks right');
  await page.click('#review-form button[value=approve]');
  // the worker applies it; the page follows by itself
  await page.waitForSelector('#request-state[data-state=applied]', { timeout: 30_000 });

  // the alias moved, and its history names the request, who asked and who approved
  await go(`/teams/ml/models/${model.id}`);
  await page.waitForSelector('#aliases li[data-alias=champion]:has-text("→ v2")');
  const history = await session.api(token, 'GET', `/models/${model.id}/aliases/champion/history`);
  assert.equal(history.items[0].changed_by, AUTHOR.email);
  assert.ok(history.items[0].reason.includes(APPROVER.email), history.items[0].reason);
  // the alias's page shows the same from the audit log: the request, who asked, who approved
  await page.click('#aliases li[data-alias=champion] a.alias-page');
  await page.waitForSelector('#changes tbody tr');
  const row = '#changes tbody tr:first-child';
  assert.equal(await page.textContent(`${row} td.what .change`), 'champion: v1 → v2');
  assert.equal(await page.textContent(`${row} .author`), AUTHOR.email);
  assert.equal(await page.textContent(`${row} .approvers`), APPROVER.email);
  await page.click(`${row} td.request a`);
  await page.waitForSelector('#request-state[data-state=applied]');
});
