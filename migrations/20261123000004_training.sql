-- Training jobs on SageMaker or the local runner: the launch request, the
-- engine's status as last reconciled, captured logs and metric series, and
-- the price table their cost is computed from.

create type training_status as enum (
    'requested', 'starting', 'downloading', 'training', 'uploading', 'stopping', 'completed', 'failed', 'stopped'
);

create table training_job (
    job_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    -- the name people gave it, unique in the team
    name text not null,
    -- the engine's job name: <name>-<12 hex of job_id>, SageMaker-legal and unique
    engine_name text not null unique,
    backend text not null check (backend in ('local', 'sagemaker')),
    status training_status not null default 'requested',
    secondary_status text,
    failure_reason text,
    -- the error code of a failed launch or call (AccessDeniedException, ValidationException, ...)
    error_code text,
    -- the last transient error while retrying (throttling); cleared on success
    last_error text,
    -- the launch request as entered (for display and clone) and what the engine receives
    request jsonb not null,
    spec jsonb not null,
    instance_type text not null,
    instance_count integer not null check (instance_count >= 1),
    max_runtime_seconds integer not null check (max_runtime_seconds >= 1),
    spot boolean not null default false,
    region text not null,
    -- on-demand price of one instance when launched (null: not in the price table)
    usd_per_hour double precision,
    output_uri text not null,
    artifact_uri text,
    transitions jsonb not null default '[]',
    final_metrics jsonb not null default '{}',
    billable_seconds bigint,
    training_seconds bigint,
    training_started_at timestamptz,
    training_ended_at timestamptz,
    -- the engine's LastModifiedTime when last described: unchanged listings need no describe
    engine_modified_at timestamptz,
    launch_attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    -- where log reading continues, and the last stored line's number
    log_cursor text,
    log_seq bigint not null default 0,
    logs_done boolean not null default false,
    stop_requested_by uuid references app_user (user_id),
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint training_job_name_key unique (team_id, name)
);
create index training_job_team_idx on training_job (team_id, created_at desc, job_id desc);
create index training_job_active_idx on training_job (backend, status)
    where status not in ('completed', 'failed', 'stopped') or not logs_done;

-- Input channels: each a dataset version of the job's team. No cascade: a
-- version that trained a job cannot be deleted (lineage).
create table training_job_channel (
    job_id uuid not null references training_job (job_id) on delete cascade,
    name text not null,
    version_id uuid not null references dataset_version (version_id),
    uri text not null,
    primary key (job_id, name)
);
create index training_job_channel_version_idx on training_job_channel (version_id);

create table training_log (
    job_id uuid not null references training_job (job_id) on delete cascade,
    seq bigint not null,
    at timestamptz not null,
    stream text not null,
    line text not null,
    primary key (job_id, seq)
);

-- Metric values found in log lines by the job's metric definitions.
create table training_metric (
    job_id uuid not null references training_job (job_id) on delete cascade,
    name text not null,
    seq bigint not null,
    at timestamptz not null,
    value double precision not null,
    primary key (job_id, name, seq)
);

-- On-demand USD per instance-hour; seeded from app/data/instance-prices.json,
-- edited by site admins (updated_by set).
create table instance_price (
    region text not null,
    instance_type text not null,
    usd_per_hour double precision not null check (usd_per_hour >= 0),
    updated_by uuid references app_user (user_id),
    updated_at timestamptz not null default now(),
    primary key (region, instance_type)
);

-- The IAM role SageMaker jobs of this team run as (overrides CAPSTAN_SAGEMAKER_ROLE_ARN).
alter table team add column sagemaker_role_arn text;
