-- Webhooks: per-team endpoints that receive signed events (Standard
-- Webhooks). Every audit event of a team fans out, by the trigger below and
-- in the transaction that recorded it, into one delivery per active
-- endpoint subscribed to its type: an outbox that a worker empties.
create table webhook (
    webhook_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    url text not null check (char_length(url) <= 2048),
    description text not null default '',
    -- audit actions (`model_alias.set`), or `*` for every event
    event_types text[] not null,
    active boolean not null default true,
    -- `whsec_` + base64 of the key
    secret text not null,
    -- set while deliveries keep failing; after 24 hours the endpoint is disabled
    failing_since timestamptz,
    disabled_reason text,
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index webhook_team on webhook (team_id) where active;

create table webhook_delivery (
    delivery_id uuid primary key,
    webhook_id uuid not null references webhook (webhook_id) on delete cascade,
    event_type text not null,
    payload jsonb not null,
    -- pending → delivered | failed (after 24 hours of retries)
    state text not null default 'pending' check (state in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    lease_owner uuid,
    lease_until timestamptz,
    created_at timestamptz not null default now(),
    delivered_at timestamptz
);
create index webhook_delivery_due on webhook_delivery (next_attempt_at) where state = 'pending';
create index webhook_delivery_endpoint on webhook_delivery (webhook_id, delivery_id desc);

create table webhook_attempt (
    delivery_id uuid not null references webhook_delivery (delivery_id) on delete cascade,
    attempt integer not null,
    status_code integer,
    latency_ms integer not null,
    response_excerpt text not null default '',
    error text,
    attempted_at timestamptz not null default now(),
    primary key (delivery_id, attempt)
);

create function webhook_fan_out() returns trigger language plpgsql as $$
begin
    if new.team_id is null then
        return null;
    end if;
    insert into webhook_delivery (delivery_id, webhook_id, event_type, payload)
    select gen_random_uuid(), w.webhook_id, new.action,
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
create trigger webhook_fan_out after insert on audit_event
    for each row execute function webhook_fan_out();
