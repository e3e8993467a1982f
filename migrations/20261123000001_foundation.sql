-- Foundation: accounts, teams, memberships, API tokens, login attempts and the audit log.

create type team_role as enum ('viewer', 'member', 'approver', 'admin');

create table app_user (
    user_id uuid primary key,
    email text not null constraint app_user_email_key unique,
    display_name text not null,
    -- null for accounts that sign in through an external identity provider (later).
    password_hash text,
    is_site_admin boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table team (
    team_id uuid primary key,
    slug text not null constraint team_slug_key unique,
    name text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index team_slug_idx on team (slug, team_id);

create table team_member (
    team_id uuid not null references team (team_id) on delete cascade,
    user_id uuid not null references app_user (user_id) on delete cascade,
    role team_role not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint team_member_pkey primary key (team_id, user_id)
);
create index team_member_user_idx on team_member (user_id, team_id);

create table api_token (
    token_id uuid primary key,
    user_id uuid not null references app_user (user_id) on delete cascade,
    name text not null,
    -- the first characters of the secret, shown in lists so users can tell tokens apart
    prefix text not null,
    secret_hash bytea not null constraint api_token_secret_hash_key unique,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz
);
create index api_token_user_idx on api_token (user_id, created_at desc, token_id desc);

create table login_attempt (
    login_attempt_id bigint generated always as identity primary key,
    email text not null,
    client_addr text not null,
    succeeded boolean not null,
    created_at timestamptz not null default now()
);
create index login_attempt_email_idx on login_attempt (email, created_at);
create index login_attempt_addr_idx on login_attempt (client_addr, created_at);

-- One hash chain per team (and one for site-wide events): writers in different
-- teams never wait on each other; writers in one team take this row's lock.
create table audit_chain (
    chain_key text primary key,
    last_seq bigint not null,
    last_hash bytea not null
);

create table audit_event (
    audit_event_id uuid primary key,
    occurred_at timestamptz not null,
    chain_key text not null,
    chain_seq bigint not null,
    prev_hash bytea not null,
    hash bytea not null,
    -- no foreign keys: the log outlives the users, tokens and teams it names
    actor_user_id uuid,
    actor_token_id uuid,
    actor_label text not null,
    team_id uuid,
    action text not null,
    target_type text not null,
    target_id text,
    summary jsonb not null,
    request_id text,
    client_addr text,
    constraint audit_event_chain_key unique (chain_key, chain_seq)
);
create index audit_event_time_idx on audit_event (occurred_at desc, audit_event_id desc);
create index audit_event_team_idx on audit_event (team_id, occurred_at desc, audit_event_id desc);
create index audit_event_actor_idx on audit_event (actor_user_id, occurred_at desc, audit_event_id desc);
create index audit_event_action_idx on audit_event (action, occurred_at desc, audit_event_id desc);
