// Datasets in the browser: upload a CSV straight to the local S3 endpoint
// through presigned multipart URLs, watch the progress bar finish, open the
// version and see its preview rows; then register a prefix as a new version.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, closeSession, hydrated } from './harness.mjs';
import { openSync, ftruncateSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const USER = { email: 'dana@example.com', password: 'dataset password 123' };
const CSV = 'sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n6.3,3.3,virginica\n';

let session, capstan, page, go;

before(async () => {
  session = await openSession();
  ({ capstan, page, go } = session);
  capstan.cli(['user', 'create', '--email', USER.email, '--name', 'Dana', '--site-admin'], USER.password + '\n');
});

after(() => closeSession(session));

test('upload a CSV, watch it finish, preview it; register a prefix', async () => {
  await go('/login');
  await page.fill('input[name=email]', USER.email);
  await page.fill('input[name=password]', USER.password);
  await page.click('button[type=submit]');
  await page.waitForURL(capstan.base + '/');
  await page.fill('#create-team input[name=slug]', 'data');
  await page.fill('#create-team input[name=name]', 'Data');
  await page.click('#create-team button[type=submit]');
  await page.waitForSelector('text=Data');

  await go('/teams/data/datasets');
  await page.fill('#create-dataset input[name=name]', 'iris');
  await page.fill('#create-dataset input[name=tags]', 'tabular');
  await page.click('#create-dataset button[type=submit]');
  await page.click('#datasets a:has-text("iris")');
  await page.waitForURL(/\/teams\/data\/datasets\/[0-9a-f-]+$/);
  await hydrated(page);
  await page.waitForSelector('text=No versions yet');

  // upload: the browser sends the file to S3 itself
  await page.setInputFiles('#upload-files', { name: 'iris.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
  await page.waitForSelector('.files li:has-text("iris.csv")');
  await page.click('#upload-start');
  await page.waitForSelector('#upload-status a:has-text("Open v1")', { timeout: 30_000 });
  const progress = await page.$eval('#overall-progress', (p) => [p.value, p.max]);
  assert.deepEqual(progress, [CSV.length, CSV.length], 'the overall progress bar is full');
  const fileProgress = await page.$eval('.file-progress', (p) => p.value === p.max && p.max > 0);
  assert.ok(fileProgress, 'the file progress bar is full');

  await page.click('#upload-status a');
  await page.waitForURL(/\/teams\/data\/versions\/[0-9a-f-]+$/);
  await hydrated(page);
  await page.waitForSelector('#version-facts [data-status=ready]', { timeout: 30_000 });
  assert.equal(await page.textContent('#object-count'), '1');
  const location = await page.textContent('#location');
  await page.click('#manifest a:has-text("Preview")');
  await page.waitForSelector('#preview-rows');
  const cells = await page.$$eval('#preview-rows tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(cells, [['5.1', '3.5', 'setosa'], ['4.9', '3.0', 'setosa'], ['6.3', '3.3', 'virginica']]);
  assert.match(await page.textContent('#preview .schema'), /sepal_length\s*float/);

  // register a prefix: a bad one is refused with the reason, then the upload's own location works
  await page.click('.crumbs a');
  await page.waitForURL(/\/teams\/data\/datasets\/[0-9a-f-]+$/);
  await hydrated(page);
  await page.fill('#prefix-form input[name=source_uri]', 's3://capstan/nothing-here/');
  await page.click('#prefix-form button[type=submit]');
  await page.waitForSelector('.field-error:has-text("no objects under s3://capstan/nothing-here/")');
  await page.fill('#prefix-form input[name=source_uri]', location.trim());
  await page.click('#prefix-form button[type=submit]');
  await page.waitForSelector('#versions tr[data-number="2"] [data-status=ready]', { timeout: 30_000 });
  const row = await page.textContent('#versions tr[data-number="2"]');
  assert.ok(row.includes(location.trim()), row);
});

test('a running upload can be cancelled: the version is marked failed', async () => {
  // a sparse 400 MiB file: 50 parts, long enough to cancel mid-way
  const file = join(tmpdir(), `capstan-cancel-${process.pid}.bin`);
  const fd = openSync(file, 'w'); ftruncateSync(fd, 400 * 1024 * 1024); closeSync(fd);
  try {
    await page.waitForSelector('#upload-files');
    await page.setInputFiles('#upload-files', file);
    await page.click('#upload-start');
    await page.waitForFunction(() => document.querySelector('#overall-progress')?.value > 0);
    await page.click('#upload-cancel');
    await page.waitForSelector('#upload-status:has-text("Upload cancelled.")', { timeout: 30_000 });
    const sent = await page.$eval('#overall-progress', (p) => p.value < p.max);
    assert.ok(sent, 'the upload stopped before the end');
    await page.waitForSelector('#versions tr[data-number="3"] [data-status=failed]', { timeout: 30_000 });
    assert.match(await page.textContent('#versions tr[data-number="3"]'), /Upload cancelled by dana@example.com/);
  } finally {
    rmSync(file, { force: true });
  }
});
