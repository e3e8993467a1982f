// The foundation journey a new user takes: first-run setup with the console
// token, sign-in, teams, members and roles, API tokens, audit, sign-out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, closeSession, hydrated } from './harness.mjs';

const ADMIN = { email: 'ada@example.com', password: 'correct horse battery staple' };
const VIEWER = { email: 'vic@example.com', password: 'viewer password 123' };

let session, capstan, page, go;

before(async () => {
  session = await openSession();
  ({ capstan, page, go } = session);
});

after(() => closeSession(session));

test('first run: the setup link from the console creates the site admin', async () => {
  assert.ok(capstan.setupUrl, `setup link printed:\n${capstan.output()}`);
  const url = new URL(capstan.setupUrl);
  // A wrong token creates nothing.
  await go('/setup?token=not-the-token');
  await page.fill('input[name=email]', ADMIN.email);
  await page.fill('input[name=display_name]', 'Ada');
  await page.fill('input[name=password]', ADMIN.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('.field-error[data-field=token]');
  // The real link works and signs the new admin in.
  await go(url.pathname + url.search);
  await page.fill('input[name=email]', ADMIN.email);
  await page.fill('input[name=display_name]', 'Ada');
  await page.fill('input[name=password]', ADMIN.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('text=Your teams');
  await session.signOut();
});

test('sign in: a wrong password is refused, the right one works', async () => {
  await go('/login');
  await page.fill('input[name=email]', ADMIN.email);
  await page.fill('input[name=password]', 'wrong password entirely');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=Wrong email or password.');
  await session.signIn(ADMIN);
});

test('an admin creates a team and adds a viewer', async () => {
  await page.fill('#create-team input[name=slug]', 'ml-platform');
  await page.fill('#create-team input[name=name]', 'ML Platform');
  await page.click('#create-team button[type=submit]');
  await page.waitForSelector('a[href="/teams/ml-platform"]');

  const out = capstan.cli(['user', 'create', '--email', VIEWER.email, '--name', 'Vic'], VIEWER.password + '\n');
  assert.match(out, /created user vic@example.com/);

  await go('/teams/ml-platform');
  await page.fill('#add-member input[name=email]', VIEWER.email);
  await page.selectOption('#add-member select[name=role]', 'viewer');
  await page.click('#add-member button[type=submit]');
  await page.waitForSelector(`#members td:text("${VIEWER.email}")`);

  // the team's own SageMaker role: a bad ARN is refused, a good one is kept
  const role = '#team-settings input[name=sagemaker_role_arn]';
  await page.fill(role, 'arn:aws:iam::1:role/x');
  await page.click('#team-settings button[type=submit]');
  await page.waitForSelector('#team-settings .field-error[data-field=sagemaker_role_arn]');
  assert.equal(await page.inputValue(role), 'arn:aws:iam::1:role/x', 'what was typed stays for correcting');
  await page.fill(role, 'arn:aws:iam::123456789012:role/MlPlatform');
  await page.click('#team-settings button[type=submit]');
  await page.waitForSelector('#team-settings .field-error', { state: 'detached' });
  await go('/teams/ml-platform');
  assert.equal(await page.inputValue(role), 'arn:aws:iam::123456789012:role/MlPlatform');
  await session.signOut();
});

test('an admin registers a dataset; a bad name is refused with a field error', async () => {
  await session.signIn(ADMIN);
  await go('/teams/ml-platform/datasets');
  await page.fill('#create-dataset input[name=name]', 'Bad Name');
  await page.click('#create-dataset button[type=submit]');
  await page.waitForSelector('.field-error[data-field=name]');
  await page.fill('#create-dataset input[name=name]', 'churn-events');
  await page.fill('#create-dataset input[name=description]', 'Daily churn events');
  await page.fill('#create-dataset input[name=tags]', 'tabular, churn');
  await page.click('#create-dataset button[type=submit]');
  await page.waitForSelector('#datasets td:has-text("churn-events")');
  assert.equal(await page.locator('#datasets .pill').count(), 2);
  await session.signOut();
});

test('a viewer sees no member controls and is refused by the server function', async () => {
  await session.signIn(VIEWER);
  await go('/teams/ml-platform');
  await page.waitForSelector(`#members td:text("${ADMIN.email}")`);
  assert.equal(await page.locator('#add-member').count(), 0);
  assert.equal(await page.locator('#members select').count(), 0);
  const res = await page.evaluate(async () => {
    const r = await fetch('/rpc/add_member', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ team: 'ml-platform', email: 'vic@example.com', role: 'admin' }),
    });
    return { status: r.status, body: await r.text() };
  });
  assert.equal(res.status, 403);
  assert.match(res.body, /Forbidden/);
});

test('a token created in the UI authenticates /api/v1/me', async () => {
  await go('/tokens');
  await page.fill('#create-token input[name=name]', 'laptop');
  await page.click('#create-token button[type=submit]');
  const secret = (await page.textContent('#token-secret')).trim();
  assert.match(secret, /^cap_[0-9a-f]+$/);
  await page.waitForSelector('#tokens td:text("laptop")');
  const r = await fetch(capstan.base + '/api/v1/me', { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).email, VIEWER.email);
  const anon = await fetch(capstan.base + '/api/v1/me');
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('content-type'), 'application/problem+json');
  await session.signOut();
});

test('the audit page shows what happened, then sign-out ends the session', async () => {
  await session.signIn(ADMIN);
  await go('/audit?team=ml-platform');
  await page.waitForSelector('code:text("team.created")');
  await page.waitForSelector('code:text("team.member_added")');
  await go('/audit');
  await page.waitForSelector('code:text("auth.login_failed")');
  await session.signOut();
  await page.goto(capstan.base + '/tokens');
  await page.waitForURL(/\/login$/);
});
