// Manual check (not part of the suite): upload a 1 GiB file through the
// browser uploader and print the time and the server's resident memory.
// Usage: CAPSTAN_BIN=… LEPTOS_SITE_ROOT=… node big-upload.mjs [MiB]
import { openSession } from './tests/harness.mjs';
import { openSync, ftruncateSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mib = Number(process.argv[2] || 1024);
const file = join(tmpdir(), `capstan-big-${process.pid}.bin`);
const fd = openSync(file, 'w'); ftruncateSync(fd, mib * 1024 * 1024); closeSync(fd);
const s = await openSession();
const rss = () => {
  const pid = s.capstan.pid;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(status.match(/VmRSS:\s+(\d+)/)[1]) / 1024);
};
try {
  s.capstan.cli(['user', 'create', '--email', 'big@example.com', '--site-admin'], 'big upload password\n');
  await s.go('/login');
  await s.page.fill('input[name=email]', 'big@example.com');
  await s.page.fill('input[name=password]', 'big upload password');
  await s.page.click('button[type=submit]');
  await s.page.waitForURL(s.capstan.base + '/');
  await s.page.fill('#create-team input[name=slug]', 'big');
  await s.page.fill('#create-team input[name=name]', 'Big');
  await s.page.click('#create-team button[type=submit]');
  await s.page.waitForSelector('text=Big');
  await s.go('/teams/big/datasets');
  await s.page.fill('#create-dataset input[name=name]', 'blob');
  await s.page.click('#create-dataset button[type=submit]');
  await s.page.click('#datasets a:has-text("blob")');
  await s.page.waitForSelector('#upload-files');
  await s.page.waitForFunction(() => document.body.dataset.hydrated === 'true');
  await s.page.setInputFiles('#upload-files', file);
  const before = rss();
  const t0 = Date.now();
  await s.page.click('#upload-start');
  await s.page.waitForSelector('#upload-status a', { timeout: 600_000 });
  const secs = (Date.now() - t0) / 1000;
  console.log(`${mib} MiB uploaded from Chromium in ${secs.toFixed(1)} s (${(mib * 1.048576 / secs).toFixed(0)} MB/s); server RSS ${before} MiB before, ${rss()} MiB after`);
} finally {
  await s.close();
  rmSync(file, { force: true });
}
