-- A version's model card (markdown: intended use, limitations, evaluation,
-- ethical considerations) and optional signature (its input and output
-- schema). Both are edited after registration, each edit audited; neither
-- is part of what a version is made of.
alter table model_version
    add column card text not null default '' check (char_length(card) <= 262144),
    add column signature jsonb,
    add column card_updated_by uuid references app_user (user_id),
    add column card_updated_at timestamptz;
