-- AWS mode: what CloudWatch counted of each variant and minute (every
-- invocation, through the gateway or straight to SageMaker Runtime), set
-- (not added) by the serving worker, so reading it again changes nothing.
-- Where present, the endpoint's charts show these instead of the gateway's.
alter table endpoint_metric
    add column cw_requests bigint,
    add column cw_errors_4xx bigint,
    add column cw_errors_5xx bigint,
    add column cw_p50_ms double precision,
    add column cw_p95_ms double precision,
    add column cw_p99_ms double precision;
