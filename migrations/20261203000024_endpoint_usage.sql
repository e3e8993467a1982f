-- What each endpoint variant ran on, and from when to when: its cost is
-- instance-hours × the price of its instance type when it was deployed so.
-- A row opens when a variant is deployed as it is (the endpoint created, or
-- the variant added, or its version, instance type or count changed) and
-- closes when it changes again, is removed, or the endpoint is deleted.
-- Rows outlive their endpoint (a team's month counts deleted endpoints too).
create table endpoint_usage (
    usage_id uuid primary key,
    endpoint_id uuid not null,
    team_id uuid not null references team (team_id) on delete cascade,
    endpoint_name text not null,
    variant text not null,
    version_id uuid references model_version (version_id) on delete set null,
    instance_type text not null,
    instance_count integer not null check (instance_count >= 1),
    -- null: the instance type had no price
    usd_per_hour double precision check (usd_per_hour >= 0),
    shadow boolean not null,
    started_at timestamptz not null default now(),
    ended_at timestamptz,
    check (ended_at is null or ended_at >= started_at)
);
create unique index endpoint_usage_open on endpoint_usage (endpoint_id, variant) where ended_at is null;
create index endpoint_usage_team on endpoint_usage (team_id, started_at);
create index endpoint_usage_endpoint on endpoint_usage (endpoint_id, started_at);

-- endpoints that exist already start accruing now
insert into endpoint_usage (usage_id, endpoint_id, team_id, endpoint_name, variant, version_id, instance_type,
                            instance_count, usd_per_hour, shadow)
select gen_random_uuid(), e.endpoint_id, e.team_id, e.name, ev.name, ev.version_id, ev.instance_type,
       ev.instance_count, null, ev.shadow_percent is not null
from endpoint e join endpoint_variant ev on ev.endpoint_id = e.endpoint_id
where e.desired = 'running';
