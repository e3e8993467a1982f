-- An endpoint's health score: a composite 0-100 of its error rate, its p99
-- latency against its SLO, the drift of its captured requests from its
-- model's training data (population stability index) and its healthy
-- capacity, recorded once a minute; below the threshold it raises an alert
-- and, when the endpoint opts in, rolls back its last rollout
-- (endpoints::health).
create table endpoint_health_settings (
    endpoint_id uuid primary key references endpoint (endpoint_id) on delete cascade,
    latency_slo_ms integer not null check (latency_slo_ms between 1 and 600000),
    threshold integer not null check (threshold between 1 and 100),
    auto_rollback boolean not null,
    updated_by uuid not null references app_user (user_id),
    updated_at timestamptz not null default now()
);

create table endpoint_health (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    minute timestamptz not null,
    -- none while no part could be judged (no traffic)
    score double precision check (score >= 0 and score <= 100),
    parts jsonb not null,
    -- whether this minute raised the alert (the score fell below the threshold)
    alerted boolean not null default false,
    primary key (endpoint_id, minute)
);
