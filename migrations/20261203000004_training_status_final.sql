-- The one rule for a finished training job in SQL, for every query that needs
-- it (the Rust side, TrainingStatus::is_final, is tested against it).
create function training_status_is_final(s training_status) returns boolean
    language sql immutable parallel safe
    return s in ('completed', 'failed', 'stopped');
