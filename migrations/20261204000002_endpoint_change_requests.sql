-- Change requests for endpoints: creating, changing, deleting an endpoint
-- and changing its weights go through a change request when the team's
-- policy covers the kind. Such a request names an endpoint (or, to create
-- one, nothing yet) instead of a model; a policy for an endpoint kind covers
-- every endpoint of the team (model_id and alias stay null).
alter table change_request alter column model_id drop not null;
alter table change_request
    add column endpoint_id uuid references endpoint (endpoint_id) on delete set null;
alter table change_request
    add constraint change_request_target check (model_id is not null or kind like 'endpoint.%');
alter table approval_policy
    add constraint approval_policy_endpoint_kinds check (kind not like 'endpoint.%' or model_id is null);
