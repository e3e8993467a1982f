-- A deleted model version leaves its alias history in place, without the
-- version; numbers are never given out again (the next number counts the
-- highest ever registered, kept on the model).
alter table model_alias_history
    drop constraint model_alias_history_from_version_fkey,
    drop constraint model_alias_history_to_version_fkey,
    add constraint model_alias_history_from_version_fkey
        foreign key (from_version) references model_version (version_id) on delete set null,
    add constraint model_alias_history_to_version_fkey
        foreign key (to_version) references model_version (version_id) on delete set null;

alter table model add column last_number integer not null default 0;
update model m set last_number = coalesce((select max(number) from model_version v where v.model_id = m.model_id), 0);
