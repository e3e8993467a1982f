-- A transaction that sends a notification holds a database-wide lock from
-- its commit's start to its end (PostgreSQL queues notifications in commit
-- order), so every registration of a version, which announced
-- `page:<team>:` from its triggers, waited for the previous one's flush to
-- disk: one flush per version, about 700 versions/s on a disk like ours.
-- A new version's pages are now announced just after its commit, by the
-- registering process (`registry::domain::versions_added`); registrations
-- commit side by side and share the disk's flushes. Every other change of
-- a model, a version or an alias still announces itself in its transaction.
create or replace function capstan_cache_notify_registry_pages() returns trigger language plpgsql as $$
declare
    r record;
    team uuid;
begin
    r := coalesce(new, old);
    -- the counters a registration moves: announced after its commit
    if tg_table_name = 'model' and tg_op = 'UPDATE'
       and to_jsonb(old) - 'last_number' - 'version_count' = to_jsonb(new) - 'last_number' - 'version_count' then
        return null;
    end if;
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

drop trigger capstan_cache_pages_version on model_version;
create trigger capstan_cache_pages_version after update or delete on model_version
    for each row execute function capstan_cache_notify_registry_pages();
