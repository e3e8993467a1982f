// A Capstan that dies without shutting down (a crash, kill -9) leaves its
// private PostgreSQL running; the next start from the same folder must take
// it over, and stop it on a clean shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startCapstan } from './harness.mjs';

const pidFile = (dataDir) => join(dataDir, 'postgres', 'data', 'postmaster.pid');
const running = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('after a crash the next start adopts the private PostgreSQL and stops it on shutdown', async () => {
  const first = await startCapstan();
  await first.crash();
  assert.ok(existsSync(pidFile(first.dataDir)), 'PostgreSQL outlived the crashed Capstan');
  const postgres = Number(readFileSync(pidFile(first.dataDir), 'utf8').split('\n')[0]);
  assert.ok(running(postgres));

  const second = await startCapstan({ workDir: first.workDir });
  assert.match(second.output(), /adopting the private PostgreSQL/);
  const res = await fetch(second.base + '/readyz');
  assert.equal(res.status, 200, await res.text());
  const dataDir = second.dataDir;
  const workDir = second.workDir;
  // a clean shutdown (SIGTERM), keeping the folder to look at
  process.kill(second.pid, 'SIGTERM');
  for (let i = 0; i < 100 && running(second.pid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!running(second.pid), 'capstan stopped');
  for (let i = 0; i < 100 && running(postgres); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!running(postgres), 'the adopted PostgreSQL was stopped with it');
  assert.ok(!existsSync(pidFile(dataDir)));
  assert.ok(!second.output().includes('panicked'), second.output());
  rmSync(workDir, { recursive: true, force: true });
});
