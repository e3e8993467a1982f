// The OpenAPI document tells the truth, checked by a client nobody here
// wrote: schemathesis (pinned in the tools venv by the setup) generates
// requests from /api/v1/openapi.json and runs every check it has against a
// real `capstan serve` (the run command's binary and defaults), as a user
// generating a client from the document would rely on it. A fixed seed and
// a bounded number of examples per operation keep it to a few minutes.
// `schemathesis.toml` beside this folder lists the few answers a schema
// cannot predict, each with its reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startCapstan } from './harness.mjs';

const ST = process.env.SCHEMATHESIS;

test('schemathesis finds no failure with every check on', { timeout: 900_000 }, async () => {
  assert.ok(ST, 'SCHEMATHESIS must point at the st command (scripts/test.sh sets it)');
  const capstan = await startCapstan();
  try {
    capstan.cli(['user', 'create', '--email', 'admin@example.com', '--site-admin'], 'correct horse battery staple');
    const token = capstan.cli(['token', 'create', '--email', 'admin@example.com', '--name', 'schemathesis']).trim();
    // a team with a dataset, so team-scoped operations reach their checks and not only a 404
    const call = async (method, path, body) => {
      const res = await fetch(capstan.base + '/api/v1' + path, {
        method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body && JSON.stringify(body),
      });
      const text = await res.text();
      assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    await call('POST', '/teams', { slug: 'contract', name: 'Contract' });
    await call('POST', '/teams/contract/datasets', { name: 'churn' });
    const r = spawnSync(ST, [
      '--config-file', join(import.meta.dirname, '..', 'schemathesis.toml'),
      'run', `${capstan.base}/api/v1/openapi.json`,
      '--checks', 'all',
      '-H', `Authorization: Bearer ${token}`,
      '--seed', '20261203',
      '--max-examples', '10',
      '--workers', '1',
      '--no-color',
    ], { encoding: 'utf8', timeout: 800_000, maxBuffer: 64 * 1024 * 1024 });
    const out = `${r.stdout}\n${r.stderr}`;
    if (r.status !== 0) console.log(out);
    assert.equal(r.status, 0, `schemathesis reported failures (output above)\n${out.slice(-4000)}`);
  } finally {
    await capstan.stop();
  }
});
