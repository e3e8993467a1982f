// Runs the end-to-end suite with Node's built-in test runner.
import { spawnSync } from 'node:child_process';
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', 'tests/'], { stdio: 'inherit', cwd: import.meta.dirname });
process.exit(r.status ?? 1);
