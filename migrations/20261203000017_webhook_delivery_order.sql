-- Deliveries are listed newest first by id: give them time-ordered ids
-- (UUID version 7, from the clock in milliseconds) instead of random ones.
create function capstan_uuid_v7() returns uuid language sql volatile as $$
    select encode(
        set_bit(
            set_bit(
                overlay(uuid_send(gen_random_uuid())
                        placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                        from 1 for 6),
                52, 1),
            53, 1),
        'hex')::uuid
$$;

create or replace function webhook_fan_out() returns trigger language plpgsql as $$
begin
    if new.team_id is null then
        return null;
    end if;
    insert into webhook_delivery (delivery_id, webhook_id, event_type, payload)
    select capstan_uuid_v7(), w.webhook_id, new.action,
           jsonb_build_object(
               'type', new.action,
               'timestamp', to_char(new.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'data', jsonb_build_object(
                   'team', (select slug from team where team_id = new.team_id),
                   'target_type', new.target_type,
                   'target_id', new.target_id,
                   'actor', new.actor_label,
                   'summary', new.summary,
                   'audit_event_id', new.audit_event_id))
    from webhook w
    where w.team_id = new.team_id and w.active
      and (new.action = any (w.event_types) or '*' = any (w.event_types));
    return null;
end $$;
