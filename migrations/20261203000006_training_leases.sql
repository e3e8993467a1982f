-- Several Capstan processes may share one database. A training job is
-- launched, followed and has its logs read by the process that holds its
-- lease, which it renews while it lives. When a process dies its leases run
-- out and another process takes its jobs over: a SageMaker job is followed
-- on from there; a local job, which died with its process, runs again there
-- (`restarts` counts how often, and a job interrupted too often fails).
alter table training_job
    add column lease_owner uuid,
    add column lease_until timestamptz,
    add column restarts integer not null default 0;
