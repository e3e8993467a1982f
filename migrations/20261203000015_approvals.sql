-- Change requests: a proposed change of a protected target, approved by a
-- team's policy before Capstan applies it, exactly once.

-- Who must approve which kind of change, per team, optionally narrowed to
-- one model's alias. No policy for a kind: it applies directly, except on
-- a protected alias (a built-in default: 1 approver).
create table approval_policy (
    policy_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    kind text not null,
    model_id uuid references model (model_id) on delete cascade,
    alias text,
    approvals_required integer not null check (approvals_required between 1 and 10),
    min_role team_role not null,
    require_admin boolean not null default false,
    expires_after_hours integer not null check (expires_after_hours between 1 and 2160),
    updated_by uuid not null references app_user (user_id),
    updated_at timestamptz not null default now(),
    constraint approval_policy_target check ((alias is null) or (model_id is not null)),
    constraint approval_policy_key unique nulls not distinct (team_id, kind, model_id, alias)
);

create type change_request_state as enum
    ('open', 'approved', 'applying', 'applied', 'failed', 'rejected', 'withdrawn', 'expired', 'stale');

create table change_request (
    request_id uuid primary key,
    team_id uuid not null references team (team_id) on delete cascade,
    kind text not null,
    -- what it changes (model and alias, or version) and to what
    model_id uuid not null references model (model_id) on delete cascade,
    alias text,
    version_id uuid references model_version (version_id) on delete cascade,
    proposal jsonb not null,
    -- the target's state when proposed (or last edited): applied only if it still holds
    base jsonb not null,
    title text not null check (char_length(title) between 1 and 200),
    justification text not null default '' check (char_length(justification) <= 10000),
    author_id uuid not null references app_user (user_id),
    state change_request_state not null default 'open',
    -- the policy as it was when proposed
    approvals_required integer not null,
    min_role team_role not null,
    require_admin boolean not null,
    expires_at timestamptz not null,
    -- editing an open request starts a new revision: approvals of older ones no longer count
    revision integer not null default 1,
    result jsonb,
    error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    applied_at timestamptz
);
create index change_request_team_state on change_request (team_id, state, created_at desc);
create index change_request_open_expiry on change_request (expires_at) where state = 'open';
create index change_request_author on change_request (author_id, created_at desc);

create table change_request_review (
    request_id uuid not null references change_request (request_id) on delete cascade,
    reviewer_id uuid not null references app_user (user_id),
    revision integer not null,
    decision text not null check (decision in ('approve', 'reject')),
    -- the reviewer's role when they decided
    role team_role not null,
    comment text not null default '' check (char_length(comment) <= 10000),
    created_at timestamptz not null default now(),
    primary key (request_id, reviewer_id, revision)
);

-- The request's timeline.
create table change_request_event (
    event_id uuid primary key,
    request_id uuid not null references change_request (request_id) on delete cascade,
    actor_id uuid references app_user (user_id),
    action text not null,
    from_state change_request_state,
    to_state change_request_state,
    comment text not null default '',
    created_at timestamptz not null default now()
);
create index change_request_event_request on change_request_event (request_id, event_id);

-- The outbox: written by the approval that reaches the quorum, in its
-- transaction; the worker holding the lease applies the request.
create table change_request_outbox (
    request_id uuid primary key references change_request (request_id) on delete cascade,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    lease_owner uuid,
    lease_until timestamptz,
    created_at timestamptz not null default now()
);

-- Keys of changes applied once: a domain function applying a change
-- request inserts its key in the same transaction as the change, so a
-- retry after a crash finds it applied instead of applying it again.
create table applied_once (
    key text primary key,
    applied_at timestamptz not null default now()
);
