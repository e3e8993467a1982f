-- Bandit allocation: an endpoint's production weights set by Thompson
-- sampling on an outcome metric, recomputed every interval within a least
-- and a most share per variant (endpoints::bandit).
create table endpoint_bandit (
    endpoint_id uuid primary key references endpoint (endpoint_id) on delete cascade,
    metric text not null check (metric ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    kind text not null check (kind in ('binary', 'real')),
    goal text not null check (goal in ('increase', 'decrease')),
    interval_seconds integer not null check (interval_seconds between 1 and 86400),
    min_share double precision not null check (min_share >= 0 and min_share <= 0.5),
    max_share double precision not null check (max_share >= 0.5 and max_share <= 1),
    -- the approved change request it runs under, when the team's policy asked for one
    request_id uuid references change_request (request_id),
    started_by uuid not null references app_user (user_id),
    -- the posteriors count outcomes from here on
    started_at timestamptz not null default now(),
    next_at timestamptz not null default now(),
    constraint endpoint_bandit_bounds check (min_share <= max_share)
);
create index endpoint_bandit_due on endpoint_bandit (next_at);

-- Each recomputation: per variant its units, mean, chance of being best and
-- the share given (kept: the last 500 per endpoint).
create table endpoint_bandit_run (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    at timestamptz not null default now(),
    variants jsonb not null,
    -- whether the weights were changed (a change under a point is not made)
    changed boolean not null,
    primary key (endpoint_id, at)
);
