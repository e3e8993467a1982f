-- Keys for invoking one endpoint with AWS Signature Version 4, so the AWS
-- SDKs' SageMaker Runtime clients work against Capstan unchanged. The
-- secret is kept (SigV4 is an HMAC: checking a signature needs it); it is
-- shown to the user once.
create table endpoint_invoke_key (
    key_id text primary key check (key_id ~ '^AKCP[A-Z0-9]{16}$'),
    endpoint_id uuid not null references endpoint (endpoint_id) on delete cascade,
    name text not null,
    secret text not null,
    created_by uuid not null references app_user (user_id),
    created_at timestamptz not null default now(),
    revoked_at timestamptz,
    last_used_at timestamptz
);
create index endpoint_invoke_key_endpoint_idx on endpoint_invoke_key (endpoint_id, created_at);

-- a key revoked: every process forgets it at once
create function capstan_cache_notify_invoke_key() returns trigger language plpgsql as $$
declare r record;
begin
    r := coalesce(new, old);
    perform pg_notify('capstan_cache', 'invoke-key:' || r.key_id);
    return null;
end $$;
create trigger capstan_cache_invoke_key_revoked after update on endpoint_invoke_key
    for each row when (old.revoked_at is distinct from new.revoked_at)
    execute function capstan_cache_notify_invoke_key();
create trigger capstan_cache_invoke_key_deleted after delete on endpoint_invoke_key
    for each row execute function capstan_cache_notify_invoke_key();
