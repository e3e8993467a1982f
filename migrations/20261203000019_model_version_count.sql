-- A model's number of versions, kept by a trigger, so lists of models read
-- it from the row instead of counting each model's versions per request.
alter table model add column version_count integer not null default 0;
update model m set version_count = (select count(*) from model_version v where v.model_id = m.model_id);

create function model_version_count() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        update model set version_count = version_count + 1 where model_id = new.model_id;
    else
        update model set version_count = version_count - 1 where model_id = old.model_id;
    end if;
    return null;
end $$;

create trigger model_version_count after insert or delete on model_version
    for each row execute function model_version_count();
