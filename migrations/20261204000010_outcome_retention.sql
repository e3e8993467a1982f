-- Outcomes are kept 30 days to recognise duplicates (housekeeping deletes
-- older ones; the per-minute sums stay): an index by arrival, which only grows.
create index endpoint_outcome_received_idx on endpoint_outcome using brin (received_at);
