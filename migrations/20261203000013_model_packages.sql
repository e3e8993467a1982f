-- AWS mode mirrors the registry in SageMaker's: a model is a Model Package
-- Group, a version a Model Package. The group's name is fixed when the first
-- version asks for a package (or when a group is imported), so a retry after
-- a crash looks for the same group.
alter table model add column package_group text;
alter table model add constraint model_package_group_key unique (package_group);
-- imported from SageMaker rather than created by Capstan
alter table model add column package_group_imported boolean not null default false;

alter table model_version drop constraint model_version_source_check;
alter table model_version add constraint model_version_source_check
    check (source in ('training_job', 'artifact', 'sagemaker'));

-- The intent: a row per version that SageMaker must hold, written in the
-- transaction that registers the version or changes its status (`dirty`).
-- The worker that holds its lease creates the package (finding one a crashed
-- attempt made, by its `capstan:version-id` metadata, instead of making a
-- second), then pushes the status, and clears `dirty` only if nobody changed
-- the version meanwhile (`generation`).
create table model_package_sync (
    version_id uuid primary key references model_version (version_id) on delete cascade,
    package_arn text,
    -- the approval status SageMaker was last given
    synced_status model_version_status,
    dirty boolean not null default true,
    generation bigint not null default 1,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    lease_owner uuid,
    lease_until timestamptz,
    synced_at timestamptz,
    updated_at timestamptz not null default now()
);
create index model_package_sync_due on model_package_sync (next_attempt_at) where dirty;
