-- AWS mode: the instances' average CPU use (percent of one vCPU, as
-- SageMaker's CPUUtilization) and memory use per variant and minute, read
-- from CloudWatch with the other counts; the health score's resource part.
alter table endpoint_metric add column cw_cpu_percent double precision,
                            add column cw_memory_percent double precision;
