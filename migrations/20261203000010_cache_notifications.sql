-- Every Capstan process keeps an in-process cache of its hottest reads
-- (verified API tokens, team memberships, alias resolutions) and drops an
-- entry when the database says it changed: these triggers send the changed
-- keys on channel `capstan_cache` (delivered when the writing transaction
-- commits), whoever writes. A key ending in ':' stands for every key under it.

create function capstan_cache_notify_member() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'member:' || r.team_id || ':' || r.user_id);
    if tg_op = 'UPDATE' and (old.team_id, old.user_id) is distinct from (new.team_id, new.user_id) then
        perform pg_notify('capstan_cache', 'member:' || old.team_id || ':' || old.user_id);
    end if;
    return null;
end $$;
create trigger capstan_cache_member after insert or update or delete on team_member
    for each row execute function capstan_cache_notify_member();

-- a token revoked or changed, or its user disabled or changed: drop every
-- cached token (these are rare; the last-used stamp does not count)
create function capstan_cache_notify_tokens() returns trigger language plpgsql as $$
begin
    perform pg_notify('capstan_cache', 'token:');
    return null;
end $$;
create trigger capstan_cache_token_changed after update on api_token
    for each row when ((old.revoked_at, old.expires_at, old.user_id) is distinct from (new.revoked_at, new.expires_at, new.user_id))
    execute function capstan_cache_notify_tokens();
create trigger capstan_cache_token_deleted after delete on api_token
    for each row execute function capstan_cache_notify_tokens();
create trigger capstan_cache_user_changed after update on app_user
    for each row when ((old.disabled_at, old.is_site_admin, old.email, old.display_name)
                       is distinct from (new.disabled_at, new.is_site_admin, new.email, new.display_name))
    execute function capstan_cache_notify_tokens();
create trigger capstan_cache_user_deleted after delete on app_user
    for each row execute function capstan_cache_notify_tokens();

-- an alias set, moved, protected or deleted
create function capstan_cache_notify_alias() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'alias:' || r.model_id || ':' || r.alias);
    return null;
end $$;
create trigger capstan_cache_alias after insert or update or delete on model_alias
    for each row execute function capstan_cache_notify_alias();

-- a version's status, description or tags changed: every alias of its model
-- may serve it
create function capstan_cache_notify_version() returns trigger language plpgsql as $$
begin
    perform pg_notify('capstan_cache', 'alias:' || new.model_id || ':');
    return null;
end $$;
create trigger capstan_cache_version after update on model_version
    for each row execute function capstan_cache_notify_version();

-- a model renamed or deleted: names resolved to models may have changed
create function capstan_cache_notify_model_name() returns trigger language plpgsql as $$
begin
    perform pg_notify('capstan_cache', 'model-name:');
    return null;
end $$;
create trigger capstan_cache_model_renamed after update on model
    for each row when (old.name is distinct from new.name) execute function capstan_cache_notify_model_name();
create trigger capstan_cache_model_deleted after delete on model
    for each row execute function capstan_cache_notify_model_name();
