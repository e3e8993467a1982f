// The newcomer's path: a fresh install, every page opened by a full load
// (reload, bookmark, pasted URL) with real ids, the main forms used with
// JavaScript switched off, and a browser bundle that arrives compressed and
// cacheable. The harness fails a file whose server died, answered 5xx or
// logged a panic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, closeSession, hydrated } from './harness.mjs';

const USER = { email: 'nina@example.com', password: 'newcomer password 1' };

let session, capstan, page, go, ids;

before(async () => {
  session = await openSession();
  ({ capstan, page, go } = session);
});

after(() => closeSession(session));

test('setup, then the demo from the empty home page; a used setup link says so at once', async () => {
  await page.goto(capstan.setupUrl);
  await hydrated(page);
  await page.fill('input[name=email]', USER.email);
  await page.fill('input[name=display_name]', 'Nina');
  await page.fill('input[name=password]', USER.password);
  await page.click('button[type=submit]');
  await page.waitForURL(capstan.base + '/');
  await hydrated(page);
  await page.click('#demo-form button[type=submit]');
  // the first demo made a second user to approve change requests: its password is shown once
  await page.waitForSelector('#demo-reviewer', { timeout: 60_000 });
  assert.equal(await page.textContent('[data-testid=reviewer-email]'), 'reviewer@demo.example');
  assert.match(await page.textContent('[data-testid=reviewer-password]'), /^[0-9a-f]{24}$/);
  await page.click('#demo-continue');
  await page.waitForURL(/\/teams\/demo\/training\/[0-9a-f-]+$/, { timeout: 60_000 });
  const job = page.url().split('/').pop();
  const info = await page.evaluate(async (id) => (await fetch(`/api/v1/training-jobs/${id}`)).json(), job);
  const version = info.channels[0].version_id;
  const v = await page.evaluate(async (id) => (await fetch(`/api/v1/dataset-versions/${id}`)).json(), version);
  ids = { job, version, dataset: v.dataset_id };

  await page.goto(capstan.setupUrl);
  await page.waitForSelector('[data-testid=setup-done] a[href="/login"]');
  assert.equal(await page.$('input[name=password]'), null, 'no form on a used setup link');
});

test('every page survives a full load with real ids', async () => {
  const routes = [
    '/', '/teams', '/teams/demo', '/teams/demo/datasets', `/teams/demo/datasets/${ids.dataset}`,
    `/teams/demo/versions/${ids.version}`, `/teams/demo/versions/${ids.version}?key=train.csv`,
    '/teams/demo/training', '/teams/demo/training?status=completed', '/teams/demo/training/new', '/teams/demo/models',
    `/teams/demo/training/new?clone=${ids.job}`, `/teams/demo/training/${ids.job}`,
    '/tokens', '/admin/prices', '/admin/users', '/audit', '/audit?team=demo&action=training_job&from=2026-01-01',
    '/account', '/api/docs/',
  ];
  for (const path of routes) {
    const res = await page.goto(capstan.base + path);
    assert.ok(res.status() < 400, `${path}: ${res.status()}`);
    if (!path.startsWith('/api')) {
      await hydrated(page);
      assert.ok(await page.$('header.topbar'), `${path} has the navigation`);
    }
    assert.ok(capstan.alive(), `capstan died on ${path}`);
  }
  const res = await page.goto(capstan.base + '/no/such/page');
  assert.equal(res.status(), 404);
  await hydrated(page); // its scripts run: the nonce is there
  assert.ok(await page.$('header.topbar a[href="/tokens"]'), '404 page has the navigation');
});

test('the training status filter works with the page CSP in force', async () => {
  await go('/teams/demo/training');
  await page.selectOption('select[name=status]', 'failed');
  await page.waitForURL(/status=failed/);
  await page.waitForSelector('text=No training jobs yet');
});

test('without JavaScript: sign in (wrong, then right), create a team, register a dataset, read a job log', async () => {
  const ctx = await session.browser.newContext({ javaScriptEnabled: false });
  const p = await ctx.newPage();
  p.on('response', (r) => { if (r.status() >= 500) session.serverErrors.push(`${r.status()} ${r.url()} (no JS)`); });
  await p.goto(capstan.base + '/login');
  await p.fill('input[name=email]', USER.email);
  await p.fill('input[name=password]', 'not the password');
  await p.click('button[type=submit]');
  await p.waitForSelector('.field-error[data-field=password]');
  assert.match(await p.textContent('.field-error[data-field=password]'), /Wrong email or password/);
  assert.ok(!(await p.content()).includes('{"Validation"'), 'no raw error text');
  await p.fill('input[name=email]', USER.email);
  await p.fill('input[name=password]', USER.password);
  await p.click('button[type=submit]');
  await p.waitForURL(capstan.base + '/');

  await p.goto(capstan.base + '/teams');
  await p.fill('#create-team input[name=slug]', 'nojs');
  await p.fill('#create-team input[name=name]', 'No JS');
  await p.click('#create-team button[type=submit]');
  await p.waitForSelector('.team-list a[href="/teams/nojs"]');
  await p.fill('#create-team input[name=slug]', 'nojs');
  await p.fill('#create-team input[name=name]', 'Again');
  await p.click('#create-team button[type=submit]');
  await p.waitForSelector('.field-error[data-field=slug]');
  assert.equal(await p.locator('text=A team with this slug already exists.').count(), 1, 'said once, by the field');

  await p.goto(capstan.base + '/teams/nojs/datasets');
  await p.fill('#create-dataset input[name=name]', 'plain-form');
  await p.click('#create-dataset button[type=submit]');
  await p.waitForSelector('#datasets a:has-text("plain-form")');

  // the server renders the stored lines: reload until the running demo has logged an epoch
  let log = '';
  for (let i = 0; i < 60 && !log.includes('epoch='); i++) {
    if (i) await new Promise((r) => setTimeout(r, 1000));
    await p.goto(capstan.base + `/teams/demo/training/${ids.job}`);
    log = (await p.textContent('#log')) ?? '';
  }
  assert.ok(log.includes('epoch='), `the job page shows its log without JavaScript: ${log}`);
  await ctx.close();
});

test('the bundle is size-optimised, compressed, and cached by content hash', async () => {
  await go('/');
  const assets = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => /\/pkg\//.test(e.name)).map((e) => e.name));
  const wasm = assets.filter((a) => a.endsWith('.wasm'));
  assert.ok(wasm.some((a) => /\/capstan\.[0-9a-f]{16}\.wasm$/.test(a)), `the main module, named by content hash: ${wasm}`);
  // The page's own code is a chunk of its own (app/src/routes.rs), fetched with the main module.
  assert.ok(wasm.some((a) => /\/split_[a-z0-9_]+\.[0-9a-f]{16}\.wasm$/.test(a)), `the page's chunk: ${wasm}`);
  for (const url of wasm) assert.match(url, /\.[0-9a-f]{16}\.wasm$/, 'every wasm file is named by content hash');
  for (const url of assets) {
    const res = await fetch(url, { headers: { 'accept-encoding': 'br, gzip' } });
    assert.equal(res.headers.get('content-encoding'), 'br', url);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', url);
  }
  const favicon = await fetch(capstan.base + '/favicon.svg');
  assert.equal(favicon.headers.get('cache-control'), 'no-cache');
});
