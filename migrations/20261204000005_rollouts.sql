-- Rollouts: traffic moved from a baseline variant to a candidate by steps
-- (canary, linear or manual), each step judged by guardrails over the window
-- since it began; a failed guardrail sends the traffic back to the baseline.
create table rollout (
    rollout_id uuid primary key,
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    baseline text not null,
    candidate text not null,
    strategy text not null check (strategy in ('canary', 'linear', 'manual')),
    -- linear and manual: the share added per step; canary: the canary's share
    step_percent integer not null check (step_percent between 1 and 50),
    -- linear: seconds between steps; canary: the bake time; manual: the least time a step is watched
    interval_seconds integer not null check (interval_seconds between 0 and 3600),
    guardrails jsonb not null,
    -- the baseline's and the candidate's weights together: what the steps share out between them
    pair_weight double precision not null check (pair_weight > 0 and pair_weight < 'Infinity'),
    state text not null default 'running'
        check (state in ('running', 'paused', 'completed', 'rolled_back', 'aborted')),
    -- the candidate's share of the pair now
    percent integer not null default 0 check (percent between 0 and 100),
    reason text,
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    constraint rollout_distinct check (baseline <> candidate)
);
create unique index rollout_one_live on rollout (endpoint_id) where state in ('running', 'paused');
create index rollout_endpoint_idx on rollout (endpoint_id, created_at desc);

-- The steps taken, each with the guardrails' figures when it ended.
create table rollout_step (
    rollout_id uuid not null references rollout (rollout_id) on delete cascade,
    seq integer not null,
    percent integer not null check (percent between 0 and 100),
    started_at timestamptz not null default now(),
    -- a user's email, or capstan for a step the worker took
    started_by text not null,
    ended_at timestamptz,
    result text check (result in ('passed', 'failed', 'aborted', 'rolled_back')),
    checks jsonb not null default '[]',
    primary key (rollout_id, seq)
);
