-- The MLflow-compatible API resolves names on every call: the caller's
-- teams, `<team>/<model>` to a model, a version number to a version, and
-- the aliases naming a version; lists are read page by page. Each is cached
-- in every process; these triggers announce the keys a write makes stale.

-- a membership added, changed or removed: the member's teams
create or replace function capstan_cache_notify_member() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'member:' || r.team_id || ':' || r.user_id);
    perform pg_notify('capstan_cache', 'teams-of:' || r.user_id);
    if tg_op = 'UPDATE' and (old.team_id, old.user_id) is distinct from (new.team_id, new.user_id) then
        perform pg_notify('capstan_cache', 'member:' || old.team_id || ':' || old.user_id);
        perform pg_notify('capstan_cache', 'teams-of:' || old.user_id);
    end if;
    return null;
end $$;

-- an alias set, moved or deleted: the aliases naming each version of its model
create or replace function capstan_cache_notify_alias() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'alias:' || r.model_id || ':' || r.alias);
    perform pg_notify('capstan_cache', 'aliases-of:' || r.model_id || ':');
    return null;
end $$;

-- a version changed or deleted: also its number (a deleted number is never reused)
create or replace function capstan_cache_notify_version() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'alias:' || r.model_id || ':');
    perform pg_notify('capstan_cache', 'version:' || r.version_id);
    perform pg_notify('capstan_cache', 'version-number:' || r.model_id || ':' || r.number);
    return null;
end $$;

-- Whole pages of a team's lists (models, versions) are cached too: any
-- change of the team's models, versions or aliases drops them all.
create function capstan_cache_notify_registry_pages() returns trigger language plpgsql as $$
declare
    r record;
    team uuid;
begin
    r := coalesce(new, old);
    if tg_table_name = 'model' then
        team := r.team_id;
    else
        select m.team_id into team from model m where m.model_id = r.model_id;
    end if;
    if team is not null then
        perform pg_notify('capstan_cache', 'page:' || team || ':');
    end if;
    return null;
end $$;
create trigger capstan_cache_pages_model after insert or update or delete on model
    for each row execute function capstan_cache_notify_registry_pages();
create trigger capstan_cache_pages_version after insert or update or delete on model_version
    for each row execute function capstan_cache_notify_registry_pages();
create trigger capstan_cache_pages_alias after insert or update or delete on model_alias
    for each row execute function capstan_cache_notify_registry_pages();
