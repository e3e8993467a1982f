// Runs the end-to-end suite with Node's built-in test runner, then scans the
// log of every Capstan the tests started for panics.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const logs = mkdtempSync(join(tmpdir(), 'capstan-e2e-logs-'));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', 'tests/'], {
  stdio: 'inherit', cwd: import.meta.dirname, env: { ...process.env, E2E_LOG_DIR: logs },
});
const files = readdirSync(logs);
const panicked = files.filter((f) => readFileSync(join(logs, f), 'utf8').includes('panicked'));
for (const f of panicked) console.error(`\n${f} contains a panic:\n${readFileSync(join(logs, f), 'utf8')}`);
console.log(`log scan: ${files.length} server logs, ${panicked.length} with a panic`);
rmSync(logs, { recursive: true, force: true });
process.exit(panicked.length ? 1 : (r.status ?? 1));
