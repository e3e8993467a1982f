-- Aliases name one version of a model (`champion` → v5). Every set, move
-- and delete is kept in the alias history with who, when, from → to and
-- why. A protected alias is not moved or deleted directly (a change request
-- does it, once approvals exist).
create table model_alias (
    model_id uuid not null references model (model_id) on delete cascade,
    alias text not null check (alias ~ '^[a-z][a-z0-9-]{0,39}$'),
    version_id uuid not null references model_version (version_id),
    protected boolean not null default false,
    updated_by uuid not null references app_user (user_id),
    updated_at timestamptz not null default now(),
    primary key (model_id, alias)
);
create index model_alias_version_idx on model_alias (version_id);

create table model_alias_history (
    event_id uuid primary key,
    model_id uuid not null references model (model_id) on delete cascade,
    alias text not null,
    -- null: the alias did not exist before (from) or was deleted (to)
    from_version uuid references model_version (version_id),
    to_version uuid references model_version (version_id),
    reason text not null default '',
    changed_by uuid not null references app_user (user_id),
    changed_at timestamptz not null default now()
);
create index model_alias_history_idx on model_alias_history (model_id, alias, changed_at desc, event_id desc);
