-- Datasets: named, team-owned collections of versioned data (versions come next).

create table dataset (
    dataset_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    name text not null,
    description text not null default '',
    tags text[] not null default '{}',
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- archived datasets leave lists but stay resolvable by id
    archived_at timestamptz,
    constraint dataset_team_name_key unique (team_id, name)
);
create index dataset_tags_idx on dataset using gin (tags);
