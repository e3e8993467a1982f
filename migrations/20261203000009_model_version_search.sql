-- Searching versions by metric, parameter and tag. Each version's metrics
-- are also kept one row per metric (filled by the database when a version
-- is registered, so no writer can forget), indexed by team, name and value:
-- `metrics.auc > 0.9` and `order by metrics.auc` read the index instead of
-- every version. Parameters and tags are searched by containment (GIN).
create table model_version_metric (
    version_id uuid not null references model_version (version_id) on delete cascade,
    team_id uuid not null references team (team_id) on delete cascade,
    name text not null,
    value double precision not null,
    primary key (version_id, name)
);
create index model_version_metric_search_idx on model_version_metric (team_id, name, value, version_id);

create function model_version_metrics_kept() returns trigger language plpgsql as $$
begin
    insert into model_version_metric (version_id, team_id, name, value)
    select new.version_id, m.team_id, e.key, (e.value)::double precision
    from model m, jsonb_each(new.metrics) e
    where m.model_id = new.model_id and jsonb_typeof(e.value) = 'number';
    return new;
end $$;
create trigger model_version_metrics_kept after insert on model_version
    for each row execute function model_version_metrics_kept();

insert into model_version_metric (version_id, team_id, name, value)
select v.version_id, m.team_id, e.key, (e.value)::double precision
from model_version v join model m on m.model_id = v.model_id, jsonb_each(v.metrics) e
where jsonb_typeof(e.value) = 'number';

create index model_version_parameters_idx on model_version using gin (parameters jsonb_path_ops);
create index model_version_tags_idx on model_version using gin (tags jsonb_path_ops);
create index model_version_created_idx on model_version (created_at desc, version_id desc);
create index model_team_idx on model (team_id, model_id);
