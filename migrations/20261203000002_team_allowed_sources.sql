-- S3 locations outside Capstan's bucket that a team may name (dataset
-- sources, training sources and outputs), kept by site admins as
-- `s3://bucket/prefix/` entries. Anything else outside the bucket is refused.
alter table team add column allowed_sources text[] not null default '{}';
