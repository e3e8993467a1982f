// MLflow's own client against the MLflow-compatible registry API: the
// official `mlflow-skinny` (pinned in the tools venv by the setup) runs
// end2end/clients/mlflow_registry.py against a real `capstan serve` (the
// run command's binary and defaults), as a team with MLflow scripts would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startCapstan } from './harness.mjs';

const PYTHON = process.env.TOOLS_PYTHON;

test('the mlflow client creates, versions, aliases, searches and tags models in Capstan', { timeout: 300_000 }, async () => {
  assert.ok(PYTHON, 'TOOLS_PYTHON must point at the tools venv python (scripts/test.sh sets it)');
  const capstan = await startCapstan();
  try {
    capstan.cli(['user', 'create', '--email', 'mlflow@example.com', '--site-admin'], 'correct horse battery staple');
    const token = capstan.cli(['token', 'create', '--email', 'mlflow@example.com', '--name', 'mlflow']).trim();
    const call = async (method, path) => {
      const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
      if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(capstan.base + path, { method, headers, body: method === 'POST' ? '' : undefined });
      const text = await res.text();
      assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    // the demo: team `demo` and a training job whose artifact the client registers
    const { job } = await call('POST', '/rpc/create_demo');
    let done;
    for (let i = 0; i < 240; i++) {
      done = await call('GET', `/api/v1/training-jobs/${job.id}`);
      if (['completed', 'failed', 'stopped'].includes(done.status)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const r = spawnSync(PYTHON, [join(import.meta.dirname, '..', 'clients', 'mlflow_registry.py')], {
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, CAPSTAN_URL: capstan.base, MLFLOW_TRACKING_TOKEN: token, ARTIFACT_URI: done.artifact_uri },
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, out);
    assert.match(r.stdout, /every registry call behaved/);
  } finally {
    await capstan.stop();
  }
});
