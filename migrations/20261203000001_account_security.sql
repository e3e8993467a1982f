-- Account security: a session is valid only while its user's session_version
-- is the one it was signed in with (a password change or "sign out
-- everywhere" bumps it), and site admins can disable an account.
alter table app_user add column session_version integer not null default 0;
alter table app_user add column disabled_at timestamptz;
