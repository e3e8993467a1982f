-- IAM roles besides the team's own that a site admin lets the team's
-- launches name (role_arn); any other role is refused.
alter table team add column allowed_role_arns text[] not null default '{}';
