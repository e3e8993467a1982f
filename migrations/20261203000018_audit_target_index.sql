-- A registry target's history (an alias, a model version) is read from the
-- audit log by target; change requests' events are found by their id.
create index audit_event_target_idx on audit_event (target_type, target_id, occurred_at desc, audit_event_id desc);
