// Starts a real `capstan serve` in zero-config local mode (its own private
// PostgreSQL under a fresh data dir) and a headless Debian Chromium.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const BIN = process.env.CAPSTAN_BIN;
if (!BIN) throw new Error('CAPSTAN_BIN must point at the capstan binary');

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
}

export async function startCapstan() {
  const dataDir = mkdtempSync(join(tmpdir(), 'capstan-e2e-'));
  chmodSync(dataDir, 0o755);
  const port = await freePort();
  const s3Port = await freePort();
  const env = {
    ...process.env, CAPSTAN_DATA_DIR: dataDir, CAPSTAN_ADDR: `127.0.0.1:${port}`,
    CAPSTAN_LOCAL_S3_ADDR: `127.0.0.1:${s3Port}`, RUST_LOG: 'warn',
  };
  delete env.DATABASE_URL;
  delete env.CAPSTAN_PUBLIC_URL;
  const proc = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (!out.includes('Capstan is running')) {
    if (proc.exitCode !== null) throw new Error(`capstan exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`capstan did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const setup = out.match(/(http:\/\/\S+\/setup\?token=[0-9a-f]+)/);
  const cli = (args, input) => execFileSync(BIN, args, { env, input, encoding: 'utf8' });
  return {
    base, dataDir, pid: proc.pid, setupUrl: setup && setup[1], cli, output: () => out,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
      return proc.exitCode;
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/// Waits until the wasm bundle has hydrated the page, so clicks reach Leptos.
export async function hydrated(page) {
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true', null, { timeout: 30_000 });
}

/// One Capstan and one browser page for a test file: `go(path)` opens a page
/// and waits for hydration; `close()` shuts both down and returns Capstan's
/// exit code.
export async function openSession() {
  const capstan = await startCapstan();
  const browser = await launchBrowser();
  const page = await browser.newPage();
  page.on('dialog', (d) => d.accept());
  return {
    capstan, browser, page,
    async go(path) {
      await page.goto(capstan.base + path);
      await hydrated(page);
    },
    async close() {
      await browser.close();
      return capstan.stop();
    },
  };
}
