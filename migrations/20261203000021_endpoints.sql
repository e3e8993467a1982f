-- Endpoints: a team's deployed model versions, as production variants that
-- share traffic by weight (share = weight / sum of weights, as on SageMaker)
-- and at most one shadow variant that gets a sampled copy of the traffic.
create table endpoint (
    endpoint_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    name text not null,
    -- the name in SageMaker and in the gateway's path: <team slug>-<name>, unique on the site
    engine_name text not null unique,
    backend text not null check (backend in ('local', 'sagemaker')),
    status text not null default 'Creating'
        check (status in ('Creating', 'InService', 'Updating', 'RollingBack', 'Failed', 'Deleting')),
    failure_reason text,
    -- what should run: the serving worker makes it so (deleted = stop and remove)
    desired text not null default 'running' check (desired in ('running', 'deleted')),
    -- bumped by every change of variants or weights: the worker deploys each generation once
    generation integer not null default 1,
    deployed_generation integer not null default 0,
    capture_percent integer check (capture_percent between 1 and 100),
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint endpoint_team_name_key unique (team_id, name)
);
create index endpoint_team_idx on endpoint (team_id, name);

create table endpoint_variant (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    name text not null,
    position smallint not null,
    -- a deployed version cannot be deleted
    version_id uuid not null references model_version (version_id),
    instance_type text not null,
    instance_count integer not null check (instance_count between 1 and 10),
    weight double precision not null check (weight >= 0 and weight < 'Infinity'),
    -- null: a production variant; a percentage: the shadow variant
    shadow_percent integer check (shadow_percent between 1 and 100),
    primary key (endpoint_id, name)
);
create unique index endpoint_one_shadow on endpoint_variant (endpoint_id) where shadow_percent is not null;
create index endpoint_variant_version_idx on endpoint_variant (version_id);

-- Local mode: the processes serving each variant, as the process that runs
-- them last saw them (the gateway of every process reads the addresses).
create table endpoint_instance (
    endpoint_id uuid not null,
    variant text not null,
    ordinal integer not null,
    address text,
    status text not null check (status in ('Starting', 'Healthy', 'Unhealthy', 'Crashed', 'Stopped')),
    restarts integer not null default 0,
    message text,
    updated_at timestamptz not null default now(),
    primary key (endpoint_id, variant, ordinal),
    foreign key (endpoint_id, variant) references endpoint_variant (endpoint_id, name) on delete cascade
);

-- the gateway's routing table of an endpoint (keyed by its engine name),
-- cached in every process
create function capstan_cache_notify_endpoint() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'endpoint-route:' || r.engine_name);
    return null;
end $$;
create trigger capstan_cache_endpoint after insert or update or delete on endpoint
    for each row execute function capstan_cache_notify_endpoint();

create function capstan_cache_notify_endpoint_part() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'endpoint-route:' || e.engine_name)
        from endpoint e where e.endpoint_id = r.endpoint_id;
    return null;
end $$;
create trigger capstan_cache_endpoint_variant after insert or update or delete on endpoint_variant
    for each row execute function capstan_cache_notify_endpoint_part();
create trigger capstan_cache_endpoint_instance after insert or update or delete on endpoint_instance
    for each row execute function capstan_cache_notify_endpoint_part();
