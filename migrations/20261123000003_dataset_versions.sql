-- Dataset versions: immutable snapshots of S3 data with a manifest per
-- object, drift checks, and browser uploads in progress.

create type dataset_version_status as enum ('uploading', 'scanning', 'ready', 'failed');

create table dataset_version (
    version_id uuid primary key,
    dataset_id uuid not null references dataset (dataset_id) on delete cascade,
    team_id uuid not null references team (team_id) on delete cascade,
    number integer not null,
    -- 'prefix' (registered from an S3 URI) or 'upload' (files sent from a browser)
    source text not null check (source in ('prefix', 'upload')),
    -- the S3 URI the user gave, or where an upload landed
    source_uri text not null,
    snapshot boolean not null,
    -- where the version's objects live: the source prefix, or Capstan's managed copy
    bucket text not null,
    prefix text not null,
    status dataset_version_status not null,
    failure text,
    object_count bigint not null default 0,
    byte_count bigint not null default 0,
    -- SHA-256 over the manifest sorted by key ("key\tsize\tetag\n" per object)
    digest text,
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    constraint dataset_version_number_key unique (dataset_id, number)
);
create index dataset_version_active_idx on dataset_version (status) where status in ('uploading', 'scanning');

-- A ready version never changes: its totals, digest and location are frozen.
create function dataset_version_frozen() returns trigger language plpgsql as $$
begin
    if old.status = 'ready' and (new.status, new.digest, new.object_count, new.byte_count, new.bucket, new.prefix, new.number)
        is distinct from (old.status, old.digest, old.object_count, old.byte_count, old.bucket, old.prefix, old.number) then
        raise exception 'dataset version % is ready and cannot change', old.version_id;
    end if;
    return new;
end
$$;
create trigger dataset_version_frozen before update on dataset_version
    for each row execute function dataset_version_frozen();

-- The manifest: one row per object, keys relative to the version's prefix,
-- compared bytewise so the order matches S3 listings.
create table dataset_object (
    version_id uuid not null references dataset_version (version_id) on delete cascade,
    key text collate "C" not null,
    size bigint not null,
    etag text not null,
    last_modified timestamptz,
    primary key (version_id, key)
);

-- Drift checks ("verify"): the version's location re-listed and compared.
create table dataset_check (
    check_id uuid primary key,
    version_id uuid not null references dataset_version (version_id) on delete cascade,
    status text not null check (status in ('running', 'done', 'failed')),
    added bigint not null default 0,
    removed bigint not null default 0,
    changed bigint not null default 0,
    failure text,
    checked_by uuid not null references app_user (user_id),
    started_at timestamptz not null default now(),
    checked_at timestamptz
);
create index dataset_check_version_idx on dataset_check (version_id, started_at desc);

create table dataset_drift (
    check_id uuid not null references dataset_check (check_id) on delete cascade,
    key text collate "C" not null,
    change text not null check (change in ('added', 'removed', 'changed')),
    old_size bigint,
    new_size bigint,
    old_etag text,
    new_etag text,
    primary key (check_id, key)
);

-- Browser uploads: one S3 multipart upload per file, straight into the
-- version's managed prefix.
create table dataset_upload_file (
    version_id uuid not null references dataset_version (version_id) on delete cascade,
    path text collate "C" not null,
    size bigint not null,
    part_size bigint not null,
    part_count integer not null,
    s3_upload_id text not null,
    primary key (version_id, path)
);
