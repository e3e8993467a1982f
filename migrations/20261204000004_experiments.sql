-- Experiments on an endpoint's production variants: outcomes reported for
-- invocations, joined to the variant that served each, and the settings of
-- the analysis (endpoints::outcomes, endpoints::experiment).

-- One outcome of one invocation under a named metric; a second report of
-- the same (request, metric) is a duplicate and changes nothing.
create table endpoint_outcome (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    metric text not null check (metric ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    request_id text not null check (length(request_id) between 1 and 200),
    variant text not null,
    value double precision not null check (value > '-Infinity' and value < 'Infinity'),
    -- when the invocation was served (from its id), else when the outcome came
    served_at timestamptz not null,
    received_at timestamptz not null default now(),
    primary key (endpoint_id, metric, request_id)
);

-- The outcomes' sums per served minute, kept by the statement that adds
-- the outcomes, so an analysis reads minutes, not outcomes.
create table endpoint_outcome_minute (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    metric text not null,
    variant text not null,
    minute timestamptz not null,
    n bigint not null,
    sum double precision not null,
    sum_squares double precision not null,
    primary key (endpoint_id, metric, variant, minute)
);

-- What decides an endpoint's experiment. One per endpoint.
create table endpoint_experiment (
    endpoint_id uuid primary key references endpoint (endpoint_id) on delete cascade,
    metric text not null check (metric ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    -- binary: a rate per invocation (an invocation without an outcome counts 0);
    -- real: the mean of the outcomes reported
    kind text not null check (kind in ('binary', 'real')),
    goal text not null default 'increase' check (goal in ('increase', 'decrease')),
    baseline text not null,
    alpha double precision not null default 0.05 check (alpha >= 0.001 and alpha <= 0.2),
    started_at timestamptz not null default now(),
    updated_by uuid not null references app_user (user_id),
    updated_at timestamptz not null default now()
);

-- When the split last changed (weights or variants): an analysis compares
-- the variants from then on, over a window in which the split held still.
alter table endpoint add column split_changed_at timestamptz not null default now();
