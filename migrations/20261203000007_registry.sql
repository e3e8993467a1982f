-- The model registry: team-owned models and their numbered, immutable
-- versions. A version registered from a training job references the job
-- (and through its channels the dataset versions it read), so neither can
-- be deleted while the version exists.
create table model (
    model_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    name text not null,
    description text not null default '',
    -- key → value
    tags jsonb not null default '{}',
    archived_at timestamptz,
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint model_team_name_key unique (team_id, name)
);

-- SageMaker's ModelApprovalStatus, plus Archived
create type model_version_status as enum ('PendingManualApproval', 'Approved', 'Rejected', 'Archived');

create table model_version (
    version_id uuid primary key,
    model_id uuid not null references model (model_id) on delete cascade,
    number integer not null check (number >= 1),
    status model_version_status not null default 'PendingManualApproval',
    source text not null check (source in ('training_job', 'artifact')),
    artifact_uri text not null,
    image text,
    framework text,
    entry_point text,
    parameters jsonb not null default '{}',
    metrics jsonb not null default '{}',
    training_job_id uuid references training_job (job_id),
    description text not null default '',
    tags jsonb not null default '{}',
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint model_version_number_key unique (model_id, number),
    constraint model_version_job_key unique (model_id, training_job_id),
    constraint model_version_source_job check ((source = 'training_job') = (training_job_id is not null))
);
create index model_version_job_idx on model_version (training_job_id);

-- What a version is made of never changes once registered; its description,
-- tags and status do.
create function model_version_frozen() returns trigger language plpgsql as $$
begin
    if (new.model_id, new.number, new.source, new.artifact_uri, new.image, new.framework, new.entry_point,
        new.parameters, new.metrics, new.training_job_id, new.created_by, new.created_at)
       is distinct from
       (old.model_id, old.number, old.source, old.artifact_uri, old.image, old.framework, old.entry_point,
        old.parameters, old.metrics, old.training_job_id, old.created_by, old.created_at) then
        raise exception 'a model version''s artifact, lineage, parameters and metrics cannot change'
            using errcode = 'check_violation', constraint = 'model_version_frozen';
    end if;
    return new;
end $$;
create trigger model_version_frozen before update on model_version
    for each row execute function model_version_frozen();
