-- Every registration updates its model's counters (`last_number`, and
-- `version_count` by trigger); the model-pages trigger fired on both and
-- compared the whole row as JSON to find nothing else had changed — a tenth
-- of the database's work per registration (measured with pgbench). Fired
-- only when another column is set, the function (which still ignores the
-- counters) runs when a page can change.
drop trigger capstan_cache_pages_model on model;
create trigger capstan_cache_pages_model after insert or delete on model
    for each row execute function capstan_cache_notify_registry_pages();
create trigger capstan_cache_pages_model_set
    after update of model_id, team_id, name, description, tags, archived_at, created_by, created_at, updated_at,
                    package_group, package_group_imported on model
    for each row execute function capstan_cache_notify_registry_pages();
