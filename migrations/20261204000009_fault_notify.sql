-- A fault switched on or off changes the gateway's routing table: every
-- process drops its cached route, as for variants and processes.
create trigger capstan_cache_endpoint_fault after insert or update or delete on endpoint_fault
    for each row execute function capstan_cache_notify_endpoint_part();
