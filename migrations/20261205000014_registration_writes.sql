-- Registering a version ran two row triggers: one counted the model's
-- versions (a second update of the model's row, after the one that took
-- the version's number), one copied the version's metrics into
-- `model_version_metric` through a query of its own. Measured with
-- pgbench, they were a fifth of the database's work per registration.
-- The registering statement now does both (`registry::versions::insert`:
-- one update of the model takes the number and counts the version, and
-- the metric rows are written in the same statement; the SageMaker import,
-- the other writer of versions, writes both too). Deleting a version still
-- uncounts it by trigger (deletes are rare and come from several places).
drop trigger model_version_metrics_kept on model_version;
drop function model_version_metrics_kept();

drop trigger model_version_count on model_version;
create or replace function model_version_count() returns trigger language plpgsql as $$
begin
    update model set version_count = version_count - 1 where model_id = old.model_id;
    return null;
end $$;
create trigger model_version_uncount after delete on model_version
    for each row execute function model_version_count();

-- A version registered from an artifact has no training job: its row no
-- longer gets entries in the two indexes on `training_job_id` (a job is
-- registered once per model; a job's versions are found by job), which
-- only ever look a job up.
alter table model_version drop constraint model_version_job_key;
create unique index model_version_job_key on model_version (model_id, training_job_id)
    where training_job_id is not null;
drop index model_version_job_idx;
create index model_version_job_idx on model_version (training_job_id) where training_job_id is not null;
