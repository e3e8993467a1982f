-- A team's monthly budget (USD, UTC months) over training and endpoints:
-- an alert at `alert_percent` of it and another at 100 %, each raised once
-- a month (`budget_alert`), as an audit event that webhooks deliver.
create table team_budget (
    team_id uuid primary key references team (team_id) on delete cascade,
    monthly_usd double precision not null check (monthly_usd > 0 and monthly_usd < 'Infinity'),
    alert_percent integer not null check (alert_percent between 1 and 100),
    updated_by uuid not null references app_user (user_id),
    updated_at timestamptz not null default now()
);

create table budget_alert (
    team_id uuid not null references team (team_id) on delete cascade,
    -- YYYY-MM
    month text not null,
    level text not null check (level in ('alert', 'exceeded')),
    spent_usd double precision not null,
    monthly_usd double precision not null,
    raised_at timestamptz not null default now(),
    primary key (team_id, month, level)
);
