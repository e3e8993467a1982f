-- What the gateway saw, per endpoint variant and minute, added in batches
-- by every Capstan process (a row may get counts from several).
create table endpoint_metric (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    variant text not null,
    minute timestamptz not null,
    requests bigint not null default 0,
    errors_4xx bigint not null default 0,
    errors_5xx bigint not null default 0,
    model_errors bigint not null default 0,
    latency_ms_sum double precision not null default 0,
    -- counts per latency bucket (serving::traffic::LATENCY_BOUNDS_MS, and one above the last)
    latency_buckets bigint[] not null,
    shadow_requests bigint not null default 0,
    shadow_agree bigint not null default 0,
    primary key (endpoint_id, variant, minute)
);
