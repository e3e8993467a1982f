-- Every process also caches model versions by id (the registry's most
-- common read): a version's update or delete announces its key, and a
-- model renamed or deleted announces every version (they carry its name).
create or replace function capstan_cache_notify_version() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'alias:' || r.model_id || ':');
    perform pg_notify('capstan_cache', 'version:' || r.version_id);
    return null;
end $$;
create trigger capstan_cache_version_deleted after delete on model_version
    for each row execute function capstan_cache_notify_version();

create or replace function capstan_cache_notify_model_name() returns trigger language plpgsql as $$
begin
    perform pg_notify('capstan_cache', 'model-name:');
    perform pg_notify('capstan_cache', 'version:');
    return null;
end $$;
