-- Fault injection, a switch for demos and staging: the gateway answers a
-- share of the invocations routed to a variant with a model error instead
-- of calling it, so a rollout's guardrails can be seen to roll it back
-- (endpoints::faults). Kept by variant name, across variant changes.
create table endpoint_fault (
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    variant text not null,
    error_percent integer not null check (error_percent between 1 and 100),
    set_by uuid not null references app_user (user_id),
    set_at timestamptz not null default now(),
    primary key (endpoint_id, variant)
);
