-- AWS mode: how SageMaker replaces the fleet for an endpoint's last update
-- (its blue/green DeploymentConfig), as the update asked; null: all at once.
alter table endpoint add column deployment jsonb;
