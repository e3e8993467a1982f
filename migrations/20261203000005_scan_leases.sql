-- Several Capstan processes may share one database. A version's scan and a
-- drift check run in the process that holds their lease, which it renews
-- while it works; when a process dies its leases run out, and another
-- process takes the scan over (or closes the check as interrupted).
alter table dataset_version add column lease_owner uuid, add column lease_until timestamptz;
alter table dataset_check add column lease_owner uuid, add column lease_until timestamptz;
