//! The authorization matrix: every REST route and every server function,
//! called by every kind of caller, checked against the table below.
//! Add a row for each new route or server function.

mod common;

use common::{Auth, TestApp, TestUser};
use http::Method;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;

/// Callers, in the order the table's outcome strings list them.
const CALLERS: [&str; 7] = ["anon", "viewer", "member", "approver", "admin", "other_admin", "site_admin"];

/// One row: what is called and the status each caller must get.
struct Case {
    /// `GET /api/v1/...` for REST, `fn name` for a server function taking
    /// form fields, `json name` for one taking a JSON body, `upload /path`
    /// for a multipart POST of a one-file source folder.
    call: &'static str,
    /// JSON body (REST) or form fields (server function), with `{caller}`,
    /// `{target}`, `{victim}` and `{viewer_token}` placeholders.
    input: serde_json::Value,
    /// Expected status per caller, space-separated, in `CALLERS` order.
    expect: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        // ---- REST ----
        Case { call: "GET /api/v1/me", input: json!(null), expect: "401 200 200 200 200 200 200" },
        Case { call: "GET /api/v1/teams", input: json!(null), expect: "401 200 200 200 200 200 200" },
        Case {
            call: "POST /api/v1/teams",
            input: json!({"slug": "t-{caller_slug}", "name": "T"}),
            expect: "401 201 201 201 201 201 201",
        },
        Case { call: "GET /api/v1/teams/alpha", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "PATCH /api/v1/teams/alpha",
            input: json!({"name": "Alpha"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "PATCH /api/v1/teams/alpha",
            // only site admins choose a team's IAM role
            input: json!({"sagemaker_role_arn": "arn:aws:iam::123456789012:role/Alpha"}),
            expect: "401 403 403 403 403 404 200",
        },
        Case { call: "GET /api/v1/teams/alpha/members", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "POST /api/v1/teams/alpha/members",
            input: json!({"email": "extra-{caller}@example.com", "role": "viewer"}),
            expect: "401 403 403 403 201 404 201",
        },
        Case {
            call: "PATCH /api/v1/teams/alpha/members/{target}",
            input: json!({"role": "member"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "DELETE /api/v1/teams/alpha/members/{victim}",
            input: json!(null),
            expect: "401 403 403 403 204 404 204",
        },
        Case { call: "GET /api/v1/tokens", input: json!(null), expect: "401 200 200 200 200 200 200" },
        Case { call: "POST /api/v1/tokens", input: json!({"name": "ci"}), expect: "401 201 201 201 201 201 201" },
        // only the owner can revoke a token; nobody else learns it exists
        Case {
            call: "DELETE /api/v1/tokens/{viewer_token}",
            input: json!(null),
            expect: "401 204 404 404 404 404 404",
        },
        Case { call: "GET /api/v1/audit-events", input: json!(null), expect: "401 200 200 200 200 200 200" },
        Case { call: "GET /api/v1/audit-events?team=alpha", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case { call: "GET /api/v1/users", input: json!(null), expect: "401 403 403 403 403 403 200" },
        Case {
            call: "POST /api/v1/users",
            input: json!({"email": "new-{caller}@example.com", "display_name": "N", "password": "long enough password"}),
            expect: "401 403 403 403 403 403 201",
        },
        Case {
            call: "PATCH /api/v1/users/{target}",
            input: json!({"disabled": false}),
            expect: "401 403 403 403 403 403 200",
        },
        Case { call: "GET /api/v1/teams/alpha/datasets", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "POST /api/v1/teams/alpha/datasets",
            input: json!({"name": "d-{caller_slug}", "tags": ["x"]}),
            expect: "401 403 201 201 201 404 201",
        },
        Case { call: "GET /api/v1/datasets/{dataset}", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "PATCH /api/v1/datasets/{dataset}",
            input: json!({"description": "by {caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/datasets/{dataset}/archive",
            input: json!(null),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "GET /api/v1/datasets/{dataset2}/versions",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/datasets/{dataset2}/versions",
            input: json!({"source_uri": "s3://capstan/matrix/"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "GET /api/v1/dataset-versions/{version}",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/dataset-versions/{version}/manifest",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/dataset-versions/{version}/preview?key=a.csv",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/dataset-versions/{version}/verify",
            input: json!(null),
            expect: "401 403 202 202 202 404 202",
        },
        Case {
            call: "GET /api/v1/dataset-versions/{version}/verify",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/dataset-versions/{version}/drift",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/datasets/{dataset2}/uploads",
            input: json!({"files": [{"path": "x.csv", "size": 3}]}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "POST /api/v1/dataset-versions/{upload}/upload/parts",
            input: json!({"path": "f.csv", "parts": [1]}),
            expect: "401 403 200 200 200 404 200",
        },
        // authorized callers get as far as validation: no part was uploaded
        Case {
            call: "POST /api/v1/dataset-versions/{upload}/upload/complete",
            input: json!({"files": []}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/dataset-versions/{upload}/upload/abort",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        // each caller deletes its own failed (cancelled) upload version
        Case {
            call: "DELETE /api/v1/dataset-versions/{upload}",
            input: json!(null),
            expect: "401 403 403 403 204 404 204",
        },
        Case {
            call: "GET /api/v1/teams/alpha/training-jobs",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/teams/alpha/training-jobs",
            input: json!({"name": "r-{caller_slug}", "entry_point": "train.py", "source_uri": "{source}", "instance_type": "ml.m5.large"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "GET /api/v1/teams/alpha/training-cost",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "GET /api/v1/training-jobs/{job}", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "GET /api/v1/training-jobs/{job}/logs",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/training-jobs/{job}/metrics",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/training-jobs/{job_stop}/stop",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        // the model registry; {beta_job} is a completed job of team beta, unknown to alpha's models
        Case { call: "GET /api/v1/teams/alpha/models", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "POST /api/v1/teams/alpha/models",
            input: json!({"name": "m-{caller_slug}"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case { call: "GET /api/v1/models/{model}", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "PATCH /api/v1/models/{model}",
            input: json!({"description": "by {caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/models/{model_archive}/archive",
            input: json!(null),
            expect: "401 403 403 403 200 404 200",
        },
        Case { call: "GET /api/v1/models/{model}/versions", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "GET /api/v1/teams/alpha/model-versions",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/teams/alpha/model-versions/compare?ids={model_version},{pending_version}",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        // a version of team beta is not one of alpha's to compare
        Case {
            call: "GET /api/v1/teams/alpha/model-versions/compare?ids={model_version},{beta_model_version}",
            input: json!(null),
            expect: "401 404 404 404 404 404 404",
        },
        Case {
            call: "GET /api/v1/teams/alpha/models/shared/aliases/shared",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        // authorized callers get as far as validation: the shared job has not completed
        Case {
            call: "POST /api/v1/models/{model}/versions",
            input: json!({"training_job_id": "{job}"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/models/{model}/versions",
            input: json!({"training_job_id": "{beta_job}"}),
            expect: "401 403 422 422 422 404 422",
        },
        // an artifact in team beta's area of the bucket is not alpha's to register
        Case {
            call: "POST /api/v1/models/{model}/versions",
            input: json!({"artifact_uri": "s3://capstan/models/beta/model.tar.gz"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "GET /api/v1/model-versions/{model_version}",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/model-versions/{model_version}/card",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "PUT /api/v1/model-versions/{model_version}/card",
            input: json!({"markdown": "by {caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/model-versions/{model_version}/lineage",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/model-versions/{model_version}/changes",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/models/{model}/aliases/shared/changes",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/model-versions/{model_version}/download",
            input: json!(null),
            expect: "401 303 303 303 303 404 303",
        },
        Case {
            call: "PATCH /api/v1/model-versions/{model_version}",
            input: json!({"description": "by {caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "GET /api/v1/models/{model}/aliases", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "GET /api/v1/models/{model}/aliases/shared",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/models/{model}/aliases/shared/history",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "PUT /api/v1/models/{model}/aliases/a-{caller_slug}",
            input: json!({"version_id": "{model_version}"}),
            expect: "401 403 200 200 200 404 200",
        },
        // a version of team beta's model is not a version of alpha's
        Case {
            call: "PUT /api/v1/models/{model}/aliases/b-{caller_slug}",
            input: json!({"version_id": "{beta_model_version}"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "DELETE /api/v1/models/{model}/aliases/d-{caller_slug}",
            input: json!(null),
            expect: "401 403 204 204 204 404 204",
        },
        Case {
            call: "POST /api/v1/models/{model}/aliases/p-{caller_slug}/protect",
            input: json!(null),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "POST /api/v1/models/{model}/aliases/shared/unprotect",
            input: json!(null),
            expect: "401 403 403 403 200 404 200",
        },
        // each caller decides on its own pending version
        Case {
            call: "POST /api/v1/model-versions/{pending_version}/status",
            input: json!({"status": "Approved", "reason": "by {caller}"}),
            expect: "401 403 403 200 200 404 200",
        },
        Case { call: "GET /api/v1/openapi.json", input: json!(null), expect: "200 200 200 200 200 200 200" },
        Case {
            call: "upload /api/v1/teams/alpha/training-sources",
            input: json!(null),
            expect: "401 403 201 201 201 404 201",
        },
        Case { call: "GET /healthz", input: json!(null), expect: "200 200 200 200 200 200 200" },
        Case { call: "GET /readyz", input: json!(null), expect: "200 200 200 200 200 200 200" },
        Case { call: "GET /metrics", input: json!(null), expect: "200 200 200 200 200 200 200" },
        Case { call: "GET /api/docs/", input: json!(null), expect: "200 200 200 200 200 200 200" },
        Case {
            call: "GET /api/v1/training-jobs/{job}/logs?format=text",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        // a ready version (one per caller): admins delete it
        Case {
            call: "DELETE /api/v1/dataset-versions/{ready}",
            input: json!(null),
            expect: "401 403 403 403 204 404 204",
        },
        // ---- another team's ids and areas in request bodies (the caller varies, and so does the target) ----
        Case {
            call: "POST /api/v1/teams/alpha/training-jobs",
            input: json!({"name": "x-{caller_slug}", "entry_point": "train.py", "source_uri": "{source}", "instance_type": "ml.m5.large",
                          "channels": [{"name": "train", "version_id": "{beta_version}"}]}),
            expect: "401 403 404 404 404 404 404",
        },
        Case {
            call: "POST /api/v1/teams/alpha/training-jobs",
            input: json!({"name": "x-{caller_slug}", "entry_point": "train.py", "source_uri": "{beta_source}", "instance_type": "ml.m5.large"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/teams/alpha/training-jobs",
            input: json!({"name": "x-{caller_slug}", "entry_point": "train.py", "source_uri": "{source}", "instance_type": "ml.m5.large",
                          "output_uri": "s3://capstan/jobs/beta/"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/teams/alpha/training-jobs",
            input: json!({"name": "x-{caller_slug}", "entry_point": "train.py", "source_uri": "{source}", "instance_type": "ml.m5.large",
                          "output_uri": "s3://capstan/jobs/alpha/../beta/"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/teams/alpha/training-jobs",
            input: json!({"name": "x-{caller_slug}", "entry_point": "train.py", "source_uri": "{source}", "instance_type": "ml.m5.large",
                          "spot": true, "max_runtime_seconds": 600, "max_wait_seconds": 600, "checkpoint_uri": "s3://capstan/jobs/beta/ckpt/"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/datasets/{dataset2}/versions",
            input: json!({"source_uri": "s3://capstan/datasets/beta/matrix/"}),
            expect: "401 403 422 422 422 404 422",
        },
        // only site admins allow a team other IAM roles
        Case {
            call: "PATCH /api/v1/teams/alpha",
            input: json!({"allowed_role_arns": ["arn:aws:iam::123456789012:role/R-{caller_slug}"]}),
            expect: "401 403 403 403 403 404 200",
        },
        // only site admins open outside locations to a team
        Case {
            call: "PATCH /api/v1/teams/alpha",
            input: json!({"allowed_sources": ["s3://external-{caller_slug}/x/"]}),
            expect: "401 403 403 403 403 404 200",
        },
        Case {
            call: "POST /api/v1/datasets/{dataset2}/versions",
            input: json!({"source_uri": "s3://capstan/datasets/alpha/../beta/matrix/"}),
            expect: "401 403 422 422 422 404 422",
        },
        // ---- the MLflow-compatible registry API (errors in MLflow's shape, same roles) ----
        Case {
            call: "GET /api/2.0/mlflow/registered-models/get?name=alpha/shared",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/2.0/mlflow/registered-models/create",
            input: json!({"name": "alpha/mlflow-{caller_slug}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/2.0/mlflow/registered-models/alias",
            input: json!({"name": "alpha/shared", "alias": "m-{caller_slug}", "version": "1"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "GET /api/2.0/mlflow/registered-models/alias?name=alpha/shared&alias=shared",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/2.0/mlflow/model-versions/set-tag",
            input: json!({"name": "alpha/shared", "version": "1", "key": "by", "value": "{caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "GET /api/2.0/mlflow/model-versions/get-download-uri?name=alpha/shared&version=1",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        // a search only looks through the caller's own teams
        Case {
            call: "GET /api/2.0/mlflow/model-versions/search?filter=name%3D%27alpha%2Fshared%27",
            input: json!(null),
            expect: "401 200 200 200 200 200 200",
        },
        Case {
            call: "DELETE /api/2.0/mlflow/registered-models/delete",
            input: json!({"name": "alpha/archive-{caller_slug}"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "POST /api/2.0/mlflow/registered-models/rename",
            input: json!({"name": "alpha/rename-{caller_slug}", "new_name": "alpha/renamed-{caller_slug}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "PATCH /api/2.0/mlflow/registered-models/update",
            input: json!({"name": "alpha/shared", "description": "by {caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        // a search only looks through the caller's own teams
        Case {
            call: "GET /api/2.0/mlflow/registered-models/search?filter=name%3D%27alpha%2Fshared%27",
            input: json!(null),
            expect: "401 200 200 200 200 200 200",
        },
        Case {
            call: "DELETE /api/2.0/mlflow/registered-models/delete-tag",
            input: json!({"name": "alpha/shared", "key": "none"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/2.0/mlflow/registered-models/get-latest-versions",
            input: json!({"name": "alpha/shared"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/2.0/mlflow/model-versions/create",
            input: json!({"name": "alpha/shared", "source": "s3://capstan/models/alpha/matrix/model.tar.gz"}),
            expect: "401 403 200 200 200 404 200",
        },
        // an artifact in another team's area is refused before anything is looked up
        Case {
            call: "POST /api/2.0/mlflow/model-versions/create",
            input: json!({"name": "alpha/shared", "source": "s3://capstan/models/beta/model.tar.gz"}),
            expect: "401 403 400 400 400 404 400",
        },
        Case {
            call: "GET /api/2.0/mlflow/model-versions/get?name=alpha/shared&version=1",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "PATCH /api/2.0/mlflow/model-versions/update",
            input: json!({"name": "alpha/shared", "version": "1", "description": "by {caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "DELETE /api/2.0/mlflow/model-versions/delete-tag",
            input: json!({"name": "alpha/shared", "version": "1", "key": "none"}),
            expect: "401 403 200 200 200 404 200",
        },
        // each caller's own first pending version (no alias names it)
        Case {
            call: "DELETE /api/2.0/mlflow/model-versions/delete",
            input: json!({"name": "alpha/shared", "version": "{pending_number}"}),
            expect: "401 403 403 403 200 404 200",
        },
        // ---- SageMaker's model registry (AWS mode only: local mode answers 409 after the role check) ----
        Case {
            call: "GET /api/v1/model-versions/{model_version}/sagemaker",
            input: json!(null),
            expect: "401 404 404 404 404 404 404",
        },
        Case {
            call: "GET /api/v1/teams/alpha/sagemaker/model-package-groups",
            input: json!(null),
            expect: "401 403 403 403 409 404 409",
        },
        Case {
            call: "POST /api/v1/teams/alpha/models/import",
            input: json!({"group": "fraud-detector"}),
            expect: "401 403 403 403 409 404 409",
        },
        Case {
            call: "fn version_package",
            input: json!({"id": "{model_version}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn package_groups", input: json!({"team": "alpha"}), expect: "401 403 403 403 200 404 200" },
        Case {
            call: "fn import_group",
            input: json!({"team": "alpha", "group": "fraud-detector", "name": ""}),
            expect: "401 403 403 403 409 404 409",
        },
        // ---- change requests (member@ wrote every request below; each caller acts on its own) ----
        Case {
            call: "GET /api/v1/teams/alpha/approval-policies",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "PUT /api/v1/teams/alpha/approval-policies",
            input: json!({"policies": [{"kind": "alias.protect", "approvals_required": 1, "min_role": "admin", "expires_after_hours": 24}]}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "GET /api/v1/teams/alpha/change-requests",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/teams/alpha/change-requests",
            input: json!({"change": {"kind": "alias.move", "model_id": "{model}", "alias": "shared", "version_id": "{pending_version2}"}, "title": "by {caller}"}),
            expect: "401 403 201 201 201 404 201",
        },
        // a version of team beta's model cannot be a target of alpha's request
        Case {
            call: "POST /api/v1/teams/alpha/change-requests",
            input: json!({"change": {"kind": "alias.move", "model_id": "{model}", "alias": "shared", "version_id": "{beta_model_version}"}, "title": "by {caller}"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "GET /api/v1/change-requests/{cr_edit}",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "PATCH /api/v1/change-requests/{cr_edit}",
            input: json!({"title": "edited by {caller}"}),
            expect: "401 403 200 403 403 404 403",
        },
        Case {
            call: "POST /api/v1/change-requests/{cr_approve}/approve",
            input: json!({"comment": "by {caller}"}),
            expect: "401 403 409 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/change-requests/{cr_reject}/reject",
            input: json!({"comment": "by {caller}"}),
            expect: "401 403 409 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/change-requests/{cr_withdraw}/withdraw",
            input: json!({"comment": ""}),
            expect: "401 403 200 403 200 404 200",
        },
        Case {
            call: "fn list_change_requests",
            input: json!({"team": "alpha", "tab": "review"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn get_change_request",
            input: json!({"id": "{cr_edit}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn reviews_waiting", input: json!({}), expect: "200 200 200 200 200 200 200" },
        Case {
            call: "fn decide_change_request",
            input: json!({"id": "{cr_decide}", "decision": "reject", "comment": ""}),
            expect: "401 403 409 200 200 404 200",
        },
        Case {
            call: "fn request_alias_move",
            input: json!({"team": "alpha", "model": "{model}", "alias": "shared", "version": "{pending_version2}", "title": "t", "justification": ""}),
            expect: "401 403 200 200 200 404 200",
        },
        // ---- webhooks (team admins) ----
        Case { call: "GET /api/v1/teams/alpha/webhooks", input: json!(null), expect: "401 403 403 403 200 404 200" },
        Case {
            call: "POST /api/v1/teams/alpha/webhooks",
            input: json!({"url": "https://hooks.example.com/{caller_slug}", "event_types": ["*"]}),
            expect: "401 403 403 403 201 404 201",
        },
        Case { call: "GET /api/v1/webhooks/{webhook}", input: json!(null), expect: "401 403 403 403 200 404 200" },
        Case {
            call: "PATCH /api/v1/webhooks/{webhook}",
            input: json!({"description": "by {caller}"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "GET /api/v1/webhooks/{webhook}/deliveries",
            input: json!(null),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "POST /api/v1/webhook-deliveries/{delivery}/redeliver",
            input: json!(null),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "DELETE /api/v1/webhooks/{webhook_del}",
            input: json!(null),
            expect: "401 403 403 403 204 404 204",
        },
        Case { call: "fn list_webhooks", input: json!({"team": "alpha"}), expect: "401 403 403 403 200 404 200" },
        Case {
            call: "fn create_webhook",
            input: json!({"team": "alpha", "url": "https://hooks.example.com/f-{caller_slug}", "description": "", "event_types": "*"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "fn set_webhook_active",
            input: json!({"id": "{webhook}", "active": "true"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case { call: "fn get_webhook", input: json!({"id": "{webhook}"}), expect: "401 403 403 403 200 404 200" },
        Case {
            call: "fn webhook_deliveries",
            input: json!({"id": "{webhook}"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "fn redeliver_webhook",
            input: json!({"delivery": "{delivery}"}),
            expect: "401 403 403 403 200 404 200",
        },
        // ---- server functions ----
        Case { call: "fn get_me", input: json!({}), expect: "200 200 200 200 200 200 200" },
        // anyone signed in may create their own demo team and job
        Case { call: "fn create_demo", input: json!({}), expect: "401 200 200 200 200 200 200" },
        // ---- budgets ----
        Case { call: "GET /api/v1/teams/alpha/budget", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "PUT /api/v1/teams/alpha/budget",
            input: json!({"monthly_usd": 1000, "alert_percent": 80}),
            expect: "401 403 403 403 200 404 200",
        },
        Case { call: "fn get_budget", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn set_budget_form",
            input: json!({"team": "alpha", "monthly_usd": "500", "alert_percent": "75"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case { call: "fn remove_budget", input: json!({"team": "alpha"}), expect: "401 403 403 403 200 404 200" },
        Case { call: "DELETE /api/v1/teams/alpha/budget", input: json!(null), expect: "401 403 403 403 204 404 204" },
        // ---- endpoints ----
        Case { call: "GET /api/v1/teams/alpha/endpoints", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "POST /api/v1/teams/alpha/endpoints",
            input: json!({"name": "e-{caller_slug}", "variants": [{"name": "a", "version_id": "{model_version}",
                          "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1}]}),
            expect: "401 403 201 201 201 404 201",
        },
        // a version of another team is not the caller's to deploy, whoever calls
        Case {
            call: "POST /api/v1/teams/alpha/endpoints",
            input: json!({"name": "x-{caller_slug}", "variants": [{"name": "a", "version_id": "{beta_model_version}",
                          "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1}]}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "GET /api/v1/teams/alpha/endpoint-spend",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn endpoint_spend", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "GET /api/v1/endpoints/{endpoint}", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "PUT /api/v1/endpoints/{endpoint}/weights",
            input: json!({"weights": [{"variant": "a", "weight": 2}]}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "PATCH /api/v1/endpoints/{endpoint}",
            input: json!({"variants": [{"name": "a", "version_id": "{model_version}", "instance_type": "ml.m5.large",
                          "instance_count": 2, "weight": 1}]}),
            expect: "401 403 200 200 200 404 200",
        },
        // another team's version cannot be swapped in, whoever calls
        Case {
            call: "PATCH /api/v1/endpoints/{endpoint}",
            input: json!({"variants": [{"name": "a", "version_id": "{beta_model_version}", "instance_type": "ml.m5.large",
                          "instance_count": 1, "weight": 1}]}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "DELETE /api/v1/endpoints/{endpoint_del}",
            input: json!(null),
            expect: "401 403 403 403 204 404 204",
        },
        // the gateway answers in SageMaker Runtime's shapes: 403 AccessDenied, 400 for an endpoint
        // the caller cannot see; this test process runs no model, so the allowed get 503
        Case {
            call: "POST /endpoints/alpha-shared/invocations",
            input: json!([[1, 2]]),
            expect: "403 403 503 503 503 400 503",
        },
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/invocations",
            input: json!([[1, 2]]),
            expect: "403 403 503 503 503 400 503",
        },
        Case { call: "fn list_endpoints", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn get_endpoint", input: json!({"id": "{endpoint}"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn endpoint_options", input: json!({"team": "alpha"}), expect: "401 403 200 200 200 404 200" },
        Case {
            call: "fn create_endpoint_form",
            input: json!({"team": "alpha", "name": "f-{caller_slug}", "variants[0][name]": "a",
                          "variants[0][version_id]": "{model_version}", "variants[0][instance_type]": "ml.m5.large",
                          "variants[0][instance_count]": "1", "variants[0][weight]": "1"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "json create_endpoint",
            input: json!({"team": "alpha", "endpoint": {"name": "j-{caller_slug}", "variants": [{"name": "a",
                          "version_id": "{model_version}", "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1}]}}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn set_endpoint_weights_form",
            input: json!({"id": "{endpoint}", "variant[0]": "a", "weight[0]": "3"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "json set_endpoint_weights",
            input: json!({"id": "{endpoint}", "weights": {"weights": [{"variant": "a", "weight": 1}]}}),
            expect: "401 403 200 200 200 404 200",
        },
        // a change request for an endpoint change: members of the endpoint's team open it (REST and the
        // new-request page's server function); another team's endpoint is not found in it
        Case {
            call: "POST /api/v1/teams/alpha/change-requests",
            input: json!({"change": {"kind": "endpoint.weights", "endpoint_id": "{endpoint}",
                                     "weights": [{"variant": "a", "weight": 13}]}, "title": "by {caller}"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "POST /api/v1/teams/alpha/change-requests",
            input: json!({"change": {"kind": "endpoint.rollout", "endpoint_id": "{endpoint}", "rollout": {"baseline": "a",
                          "candidate": "c-{caller_slug}", "candidate_version_id": "{model_version}", "strategy": "linear"}},
                          "title": "by {caller}"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "POST /api/v1/teams/alpha/change-requests",
            input: json!({"change": {"kind": "endpoint.bandit", "endpoint_id": "{bandit}", "bandit": {"metric": "conversion",
                          "kind": "real"}}, "title": "by {caller}"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "fn request_endpoint_change",
            input: json!({"team": "alpha", "kind": "endpoint.weights", "endpoint": "{endpoint}", "variant[0]": "a",
                          "weight[0]": "17", "title": "by {caller}", "justification": ""}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn request_endpoint_change",
            input: json!({"team": "alpha", "kind": "endpoint.rollout", "endpoint": "{endpoint}",
                          "rollout[baseline]": "a", "rollout[candidate]": "f-{caller_slug}",
                          "rollout[candidate_version_id]": "{model_version}", "rollout[strategy]": "linear",
                          "rollout[step_percent]": "10", "rollout[interval_seconds]": "60",
                          "rollout[max_error_rate]": "5", "rollout[min_requests]": "50",
                          "title": "by {caller}", "justification": ""}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn request_endpoint_change",
            input: json!({"team": "alpha", "kind": "endpoint.bandit", "endpoint": "{bandit}",
                          "bandit[metric]": "conversion", "bandit[metric_kind]": "binary", "bandit[goal]": "increase",
                          "bandit[interval_seconds]": "60", "bandit[min_percent]": "10", "bandit[max_percent]": "90",
                          "title": "by {caller}", "justification": ""}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn request_endpoint_change",
            input: json!({"team": "beta", "kind": "endpoint.delete", "endpoint": "{endpoint}", "title": "by {caller}",
                          "justification": ""}),
            expect: "401 404 404 404 404 404 404",
        },
        // sample traffic: members; one stream per endpoint, so on the shared endpoint the callers after
        // the first allowed one get 409; on their own endpoints each allowed caller starts one
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/sample-traffic",
            input: json!({"body": "1,2", "rate": 1, "seconds": 60}),
            expect: "401 403 202 409 409 404 409",
        },
        Case {
            call: "fn send_sample_traffic",
            input: json!({"id": "{endpoint_del2}", "body": "1,2", "content_type": "text/csv", "rate": "1", "seconds": "1"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn update_endpoint_form",
            input: json!({"id": "{endpoint}", "variants[0][name]": "a", "variants[0][version_id]": "{model_version}",
                          "variants[0][instance_type]": "ml.m5.large", "variants[0][instance_count]": "1",
                          "variants[0][weight]": "1"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "json update_endpoint",
            input: json!({"id": "{endpoint}", "update": {"capture_percent": 5}}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn delete_endpoint",
            input: json!({"id": "{endpoint_del2}"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "fn test_invoke",
            input: json!({"id": "{endpoint}", "body": "1,2", "content_type": "text/csv", "variant": ""}),
            expect: "401 403 502 502 502 404 502",
        },
        Case {
            call: "GET /api/v1/endpoints/{endpoint}/invoke-keys",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/invoke-keys",
            input: json!({"name": "k-{caller}"}),
            expect: "401 403 201 201 201 404 201",
        },
        Case {
            call: "DELETE /api/v1/endpoints/{endpoint}/invoke-keys/{invoke_key}",
            input: json!(null),
            expect: "401 403 204 204 204 404 204",
        },
        Case { call: "fn list_invoke_keys", input: json!({"id": "{endpoint}"}), expect: "401 403 200 200 200 404 200" },
        Case {
            call: "fn create_invoke_key",
            input: json!({"id": "{endpoint}", "name": "f-{caller}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn revoke_invoke_key",
            input: json!({"id": "{endpoint}", "key": "{invoke_key2}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/endpoints/{endpoint}/metrics",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/endpoints/{endpoint}/events",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn endpoint_events", input: json!({"id": "{endpoint}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn endpoint_metrics",
            input: json!({"id": "{endpoint}", "window": "24h"}),
            expect: "401 200 200 200 200 404 200",
        },
        // rollouts: members start and command them, viewers read them; a candidate version of another
        // team is refused whoever calls (nothing written); one rollout per endpoint at a time
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/rollouts",
            input: json!({"baseline": "a", "candidate": "x-{caller_slug}", "candidate_version_id": "{beta_model_version}",
                          "strategy": "manual"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/rollouts",
            input: json!({"baseline": "a", "candidate": "r-{caller_slug}", "candidate_version_id": "{model_version}",
                          "strategy": "manual"}),
            expect: "401 403 201 409 409 404 409",
        },
        Case {
            call: "GET /api/v1/endpoints/{endpoint}/rollouts",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "GET /api/v1/rollouts/{rollout}", input: json!(null), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "POST /api/v1/rollouts/{rollout}/pause",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/rollouts/{rollout}/resume",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/rollouts/{rollout}/promote",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/rollouts/{rollout}/abort",
            input: json!(null),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn list_rollouts",
            input: json!({"endpoint": "{endpoint}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn get_rollout", input: json!({"id": "{rollout2}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn rollout_command",
            input: json!({"id": "{rollout2}", "command": "abort"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn start_rollout_form",
            input: json!({"id": "{endpoint}", "baseline": "a", "candidate": "a", "candidate_version_id": "",
                          "strategy": "canary", "step_percent": "10", "interval_seconds": "60", "max_error_rate": "5",
                          "min_requests": "50"}),
            expect: "401 403 422 422 422 404 422",
        },
        // experiments: members report outcomes and set the experiment, viewers read it; an outcome
        // naming a variant the endpoint does not have is refused, whoever calls
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/outcomes",
            input: json!({"request_id": "o-{caller}", "variant": "a", "metric": "conversion", "value": 1}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "POST /api/v1/endpoints/{endpoint}/outcomes",
            input: json!({"outcomes": [{"request_id": "z-{caller}", "variant": "zz", "metric": "conversion", "value": 1}]}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "PUT /api/v1/endpoints/{endpoint}/experiment",
            input: json!({"metric": "conversion", "kind": "binary", "baseline": "a"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "GET /api/v1/endpoints/{endpoint}/experiment",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn get_experiment", input: json!({"id": "{endpoint}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn set_experiment_form",
            input: json!({"id": "{endpoint}", "metric": "conversion", "kind": "real", "goal": "increase",
                          "baseline": "a", "alpha": "0.05"}),
            expect: "401 403 200 200 200 404 200",
        },
        // fault injection: members set and clear it on their team's endpoints
        Case {
            call: "PUT /api/v1/endpoints/{endpoint}/faults",
            input: json!({"variant": "a", "error_percent": 0}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn set_fault_form",
            input: json!({"id": "{endpoint}", "variant": "a", "error_percent": "0"}),
            expect: "401 403 200 200 200 404 200",
        },
        // health: viewers read the score, members set what it is judged against
        Case {
            call: "GET /api/v1/endpoints/{endpoint}/health",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "PUT /api/v1/endpoints/{endpoint}/health",
            input: json!({"latency_slo_ms": 800, "threshold": 80}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn get_health", input: json!({"id": "{endpoint}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn set_health_form",
            input: json!({"id": "{endpoint}", "latency_slo_ms": "800", "threshold": "80"}),
            expect: "401 403 200 200 200 404 200",
        },
        // bandits: members turn them on, change and stop them, viewers read them; an endpoint of one
        // variant has none to run (409 for those allowed)
        Case {
            call: "PUT /api/v1/endpoints/{bandit}/bandit",
            input: json!({"metric": "conversion", "kind": "binary", "min_share": 0.2}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "PUT /api/v1/endpoints/{endpoint}/bandit",
            input: json!({"metric": "conversion", "kind": "binary"}),
            expect: "401 403 409 409 409 404 409",
        },
        Case {
            call: "GET /api/v1/endpoints/{bandit}/bandit",
            input: json!(null),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "DELETE /api/v1/endpoints/{bandit_own}/bandit",
            input: json!(null),
            expect: "401 403 204 204 204 404 204",
        },
        Case { call: "fn get_bandit", input: json!({"id": "{bandit}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn set_bandit_form",
            input: json!({"id": "{bandit}", "metric": "conversion", "metric_kind": "binary", "goal": "increase",
                          "interval_seconds": "60", "min_percent": "10", "max_percent": "90"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn stop_bandit", input: json!({"id": "{bandit2}"}), expect: "401 403 200 200 200 404 200" },
        Case { call: "fn setup_open", input: json!({}), expect: "200 200 200 200 200 200 200" },
        Case {
            call: "fn setup",
            input: json!({"token": "x", "email": "s-{caller}@example.com", "display_name": "S", "password": "long enough password"}),
            expect: "409 409 409 409 409 409 409",
        },
        Case {
            call: "fn login",
            input: json!({"email": "nobody@example.com", "password": "wrong password!"}),
            expect: "422 422 422 422 422 422 422",
        },
        Case {
            call: "fn change_password",
            input: json!({"current_password": "not my password", "new_password": "a new long password"}),
            expect: "401 422 422 422 422 422 422",
        },
        Case { call: "fn list_teams", input: json!({}), expect: "401 200 200 200 200 200 200" },
        Case {
            call: "fn create_team",
            input: json!({"slug": "f-{caller_slug}", "name": "F"}),
            expect: "401 200 200 200 200 200 200",
        },
        Case { call: "fn get_team", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn update_team",
            input: json!({"team": "alpha", "name": "Alpha"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case { call: "fn list_members", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn add_member",
            input: json!({"team": "alpha", "email": "more-{caller}@example.com", "role": "viewer"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "fn change_member_role",
            input: json!({"team": "alpha", "user_id": "{target}", "role": "approver"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case {
            call: "fn remove_member",
            input: json!({"team": "alpha", "user_id": "{victim2}"}),
            expect: "401 403 403 403 200 404 200",
        },
        Case { call: "fn list_tokens", input: json!({}), expect: "401 200 200 200 200 200 200" },
        Case { call: "fn create_token", input: json!({"name": "ui"}), expect: "401 200 200 200 200 200 200" },
        Case {
            call: "fn revoke_token",
            input: json!({"token_id": "{viewer_token2}"}),
            expect: "401 200 404 404 404 404 404",
        },
        Case {
            call: "fn list_audit_events",
            input: json!({"query[team]": "alpha"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn list_users", input: json!({}), expect: "401 403 403 403 403 403 200" },
        Case {
            call: "fn create_user",
            input: json!({"email": "fn-{caller}@example.com", "display_name": "N", "password": "long enough password"}),
            expect: "401 403 403 403 403 403 200",
        },
        Case {
            call: "fn set_user_disabled",
            input: json!({"user_id": "{target}", "disabled": "false"}),
            expect: "401 403 403 403 403 403 200",
        },
        Case {
            call: "fn list_datasets",
            input: json!({"team": "alpha", "query[archived]": "false"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn create_dataset",
            input: json!({"team": "alpha", "name": "f-{caller_slug}", "description": "", "tags": "a, b"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn get_dataset", input: json!({"id": "{dataset}"}), expect: "401 200 200 200 200 404 200" },
        // the model registry's server functions
        Case {
            call: "fn list_models",
            input: json!({"team": "alpha", "query[archived]": "false"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn create_model",
            input: json!({"team": "alpha", "name": "fm-{caller_slug}", "description": ""}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn get_model", input: json!({"id": "{model}"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn list_model_versions", input: json!({"id": "{model}"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn search_versions", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn compare_versions",
            input: json!({"team": "alpha", "ids": "{model_version},{beta_model_version}"}),
            expect: "401 404 404 404 404 404 404",
        },
        Case {
            call: "fn get_model_version",
            input: json!({"id": "{model_version}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn get_card", input: json!({"id": "{model_version}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn save_card",
            input: json!({"id": "{model_version}", "markdown": "by {caller}", "signature": ""}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn preview_card", input: json!({"markdown": "# hi"}), expect: "401 200 200 200 200 200 200" },
        Case {
            call: "fn version_lineage",
            input: json!({"id": "{model_version}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn version_changes",
            input: json!({"id": "{model_version}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn alias_changes",
            input: json!({"model": "{model}", "alias": "shared"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn register_artifact",
            input: json!({"model": "{model}", "artifact_uri": "s3://capstan/models/beta/model.tar.gz", "image": "", "description": ""}),
            expect: "401 403 422 422 422 404 422",
        },
        // authorized callers get as far as validation: the shared job has not completed
        Case {
            call: "fn register_job",
            input: json!({"team": "alpha", "model": "shared", "job": "{job}"}),
            expect: "401 403 422 422 422 404 422",
        },
        // a job of team beta is unknown to alpha
        Case {
            call: "fn register_job",
            input: json!({"team": "alpha", "model": "shared", "job": "{beta_job}"}),
            expect: "401 403 422 422 422 404 422",
        },
        Case { call: "fn list_aliases", input: json!({"id": "{model}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn point_alias",
            input: json!({"model": "{model}", "alias": "f-{caller_slug}", "version": "{model_version}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn set_version_status",
            input: json!({"id": "{pending_version2}", "status": "Rejected"}),
            expect: "401 403 403 200 200 404 200",
        },
        Case {
            call: "fn update_dataset",
            input: json!({"id": "{dataset}", "description": "d", "tags": "t"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn archive_dataset", input: json!({"id": "{dataset}"}), expect: "401 403 403 403 200 404 200" },
        Case {
            call: "fn list_versions",
            input: json!({"dataset_id": "{dataset2}"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn get_version", input: json!({"id": "{version}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn create_version",
            input: json!({"dataset_id": "{dataset2}", "source_uri": "s3://capstan/matrix/", "snapshot": "on"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn list_manifest",
            input: json!({"id": "{version}", "prefix": "a"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case {
            call: "fn preview_object",
            input: json!({"id": "{version}", "key": "a.csv"}),
            expect: "401 200 200 200 200 404 200",
        },
        Case { call: "fn verify_version", input: json!({"id": "{version}"}), expect: "401 403 200 200 200 404 200" },
        Case { call: "fn latest_check", input: json!({"id": "{version}"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn list_drift", input: json!({"id": "{version}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "json start_upload",
            input: json!({"dataset_id": "{dataset2}", "files": [{"path": "y.csv", "size": 3}]}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "json presign_parts",
            input: json!({"version_id": "{upload2}", "path": "f.csv", "parts": [1]}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "json complete_upload",
            input: json!({"version_id": "{upload2}", "files": []}),
            expect: "401 403 422 422 422 404 422",
        },
        Case {
            call: "json abort_upload",
            input: json!({"version_id": "{upload2}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn delete_version", input: json!({"id": "{upload2}"}), expect: "401 403 403 403 200 404 200" },
        Case { call: "fn list_training_jobs", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn training_month_cost", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn launch_options", input: json!({"team": "alpha"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "fn check_metric_regex",
            input: json!({"team": "alpha", "regex": "loss=([0-9.]+)"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn check_metric_regex",
            input: json!({"team": "alpha", "regex": "loss=("}),
            expect: "401 403 422 422 422 404 422",
        },
        Case { call: "fn get_training_job", input: json!({"id": "{job}"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn training_metrics", input: json!({"id": "{job}"}), expect: "401 200 200 200 200 404 200" },
        Case { call: "fn training_log_tail", input: json!({"id": "{job}"}), expect: "401 200 200 200 200 404 200" },
        Case {
            call: "json launch_training",
            input: json!({"team": "alpha", "request": {"name": "j-{caller_slug}", "entry_point": "train.py", "source_uri": "{source}", "instance_type": "ml.m5.large"}}),
            expect: "401 403 200 200 200 404 200",
        },
        Case {
            call: "fn stop_training_job",
            input: json!({"id": "{job_stop2}"}),
            expect: "401 403 200 200 200 404 200",
        },
        Case { call: "fn get_prices", input: json!({}), expect: "401 200 200 200 200 200 200" },
        Case {
            call: "fn set_price",
            input: json!({"instance_type": "ml.m5.large", "usd_per_hour": "0.115"}),
            expect: "401 403 403 403 403 403 200",
        },
        Case {
            call: "fn delete_price",
            input: json!({"instance_type": "ml.c5.xlarge"}),
            expect: "401 403 403 403 403 403 200",
        },
        // sign-outs last: they end the sessions used above
        Case { call: "fn sign_out_everywhere", input: json!({}), expect: "401 200 200 200 200 200 200" },
        Case { call: "fn logout", input: json!({}), expect: "200 200 200 200 200 200 200" },
    ]
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn every_route_and_server_function_against_every_caller(pool: PgPool) {
    // every caller fails a password from the same address here: the sign-in
    // limits are tested elsewhere and must not answer for authorization
    let settings = app::kernel::state::Settings { login_max_failures: 1000, ..Default::default() };
    let app = TestApp::with_settings(pool, settings, Default::default()).await;
    let admin = app.user("admin@example.com", false).await;
    let other_admin = app.user("other@example.com", false).await;
    let site_admin = app.user("site@example.com", true).await;
    let viewer = app.user("viewer@example.com", false).await;
    let member = app.user("member@example.com", false).await;
    let approver = app.user("approver@example.com", false).await;
    let target = app.user("target@example.com", false).await;
    let members = [
        (viewer.email.as_str(), "viewer"),
        (member.email.as_str(), "member"),
        (approver.email.as_str(), "approver"),
        (target.email.as_str(), "viewer"),
    ];
    app.team_with_members("alpha", &Auth::Bearer(admin.token.clone()), &members).await;
    app.team_with_members("beta", &Auth::Bearer(other_admin.token.clone()), &[]).await;

    let users: HashMap<&str, &TestUser> = [
        ("viewer", &viewer),
        ("member", &member),
        ("approver", &approver),
        ("admin", &admin),
        ("other_admin", &other_admin),
        ("site_admin", &site_admin),
    ]
    .into_iter()
    .collect();

    // Per-caller fixtures: users to add and members to remove.
    let mut victims = HashMap::new();
    let mut victims2 = HashMap::new();
    for caller in CALLERS {
        for prefix in ["extra", "more"] {
            let input = app::accounts::domain::NewUser::parse(
                &format!("{prefix}-{caller}@example.com"),
                "x",
                common::PASSWORD,
                false,
            )
            .expect("valid");
            let actor = app::kernel::audit::AuditActor { user_id: None, token_id: None, label: "test".into() };
            app::accounts::domain::create_user(&app.pool, &actor, &Default::default(), input).await.expect("user");
        }
        for (map, prefix) in [(&mut victims, "victim"), (&mut victims2, "victimb")] {
            let input = app::accounts::domain::NewUser::parse(
                &format!("{prefix}-{caller}@example.com"),
                "x",
                common::PASSWORD,
                false,
            )
            .expect("valid");
            let actor = app::kernel::audit::AuditActor { user_id: None, token_id: None, label: "test".into() };
            let id =
                app::accounts::domain::create_user(&app.pool, &actor, &Default::default(), input).await.expect("user");
            let email = format!("{prefix}-{caller}@example.com");
            app.add_member("alpha", &Auth::Bearer(admin.token.clone()), &email, "member").await;
            map.insert(caller, id);
        }
    }
    let spare_token = |n: &str| {
        let app = &app;
        let viewer = viewer.clone();
        let n = n.to_owned();
        async move {
            let res = app
                .call(Method::POST, "/api/v1/tokens", &Auth::Bearer(viewer.token.clone()), Some(json!({"name": n})))
                .await;
            res.json()["token"]["id"].as_str().expect("id").to_owned()
        }
    };
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/alpha/datasets",
            &Auth::Bearer(admin.token.clone()),
            Some(json!({"name": "shared"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let dataset = res.json()["id"].as_str().expect("id").to_owned();
    // a second dataset with a ready version, and per caller two uploads in progress
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/alpha/datasets",
            &Auth::Bearer(admin.token.clone()),
            Some(json!({"name": "versioned"})),
        )
        .await;
    let dataset2 = res.json()["id"].as_str().expect("id").to_owned();
    app.put("capstan", "matrix/a.csv", "a,b\n1,2\n").await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{dataset2}/versions"),
            &Auth::Bearer(admin.token.clone()),
            Some(json!({"source_uri": "s3://capstan/matrix/"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let version = res.json()["id"].as_str().expect("id").to_owned();
    app.wait_for(&format!("/api/v1/dataset-versions/{version}"), &Auth::Bearer(admin.token.clone()), |v| {
        v["status"] == "ready"
    })
    .await;
    let mut uploads: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        for set in [1, 2] {
            let res = app
                .call(
                    Method::POST,
                    &format!("/api/v1/datasets/{dataset2}/uploads"),
                    &Auth::Bearer(admin.token.clone()),
                    Some(json!({"files": [{"path": "f.csv", "size": 10}]})),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text());
            uploads.insert((caller, set), res.json()["version"]["id"].as_str().expect("id").to_owned());
        }
    }
    // per caller a ready version of alpha (for deletion)
    let mut ready: HashMap<&str, String> = HashMap::new();
    for caller in CALLERS {
        let res = app
            .call(
                Method::POST,
                &format!("/api/v1/datasets/{dataset2}/versions"),
                &Auth::Bearer(admin.token.clone()),
                Some(json!({"source_uri": "s3://capstan/matrix/"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["id"].as_str().expect("id").to_owned();
        app.wait_for(&format!("/api/v1/dataset-versions/{id}"), &Auth::Bearer(admin.token.clone()), |v| {
            v["status"] == "ready"
        })
        .await;
        ready.insert(caller, id);
    }
    // team beta's own version and source archive: named in alpha's requests, they must not be reachable
    let beta = Auth::Bearer(other_admin.token.clone());
    let res = app.call(Method::POST, "/api/v1/teams/beta/datasets", &beta, Some(json!({"name": "theirs"}))).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let beta_dataset = res.json()["id"].as_str().expect("id").to_owned();
    app.put("capstan", "datasets/beta/matrix/a.csv", "a,b\n1,2\n").await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{beta_dataset}/versions"),
            &beta,
            Some(json!({"source_uri": "s3://capstan/datasets/beta/matrix/"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let beta_version = res.json()["id"].as_str().expect("id").to_owned();
    app.wait_for(&format!("/api/v1/dataset-versions/{beta_version}"), &beta, |v| v["status"] == "ready").await;
    let viewer_token = spare_token("spare").await;
    let viewer_token2 = spare_token("spare2").await;
    // training: a source archive in the team's area, one shared job, and per caller two jobs to stop
    let source = "s3://capstan/jobs/alpha/sources/matrix/sourcedir.tar.gz";
    let archive = common::source_archive(&[("train.py", b"print('hi')\n")]);
    app.put("capstan", "jobs/alpha/sources/matrix/sourcedir.tar.gz", archive.clone()).await;
    let beta_source = "s3://capstan/jobs/beta/sources/matrix/sourcedir.tar.gz";
    app.put("capstan", "jobs/beta/sources/matrix/sourcedir.tar.gz", archive).await;
    let launch = |name: String| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            let res = app
                .call(
                    Method::POST,
                    "/api/v1/teams/alpha/training-jobs",
                    &Auth::Bearer(token),
                    Some(json!({"name": name, "entry_point": "train.py", "source_uri": source, "instance_type": "ml.m5.large"})),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["id"].as_str().expect("id").to_owned()
        }
    };
    let job = launch("shared".into()).await;
    let mut jobs: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        for set in [1, 2] {
            jobs.insert((caller, set), launch(format!("stop-{}-{set}", caller.replace('_', "-"))).await);
        }
    }

    // the registry: a model of alpha with one version, per caller a model to archive,
    // and a completed job of beta
    let completed = |job: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query(
                "update training_job set status = 'completed', artifact_uri = 's3://capstan/jobs/x/model.tar.gz'
                 where job_id = $1::uuid",
            )
            .bind(&job)
            .execute(&pool)
            .await
            .expect("complete");
            job
        }
    };
    let alpha_admin = Auth::Bearer(admin.token.clone());
    let new_model = |name: String| {
        let app = &app;
        let auth = alpha_admin.clone();
        async move {
            let res = app.call(Method::POST, "/api/v1/teams/alpha/models", &auth, Some(json!({"name": name}))).await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["id"].as_str().expect("id").to_owned()
        }
    };
    let model = new_model("shared".into()).await;
    let registered = completed(launch("registered".into()).await).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/models/{model}/versions"),
            &alpha_admin,
            Some(json!({"training_job_id": registered})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let model_version = res.json()["id"].as_str().expect("id").to_owned();
    let mut archivable: HashMap<&str, String> = HashMap::new();
    let mut pending: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        archivable.insert(caller, new_model(format!("archive-{}", caller.replace('_', "-"))).await);
        new_model(format!("rename-{}", caller.replace('_', "-"))).await;
        for set in [1, 2] {
            let job = completed(launch(format!("pending-{}-{set}", caller.replace('_', "-"))).await).await;
            let res = app
                .call(
                    Method::POST,
                    &format!("/api/v1/models/{model}/versions"),
                    &alpha_admin,
                    Some(json!({"training_job_id": job})),
                )
                .await;
            assert_eq!(res.status, 201, "{}", res.text());
            pending.insert((caller, set), res.json()["id"].as_str().expect("id").to_owned());
        }
    }
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/beta/training-jobs",
            &beta,
            Some(json!({"name": "theirs", "entry_point": "train.py", "source_uri": beta_source, "instance_type": "ml.m5.large"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let beta_job = completed(res.json()["id"].as_str().expect("id").to_owned()).await;
    let res = app.call(Method::POST, "/api/v1/teams/beta/models", &beta, Some(json!({"name": "theirs"}))).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let beta_model = res.json()["id"].as_str().expect("id").to_owned();
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/models/{beta_model}/versions"),
            &beta,
            Some(json!({"training_job_id": beta_job})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let beta_model_version = res.json()["id"].as_str().expect("id").to_owned();
    // aliases of the shared model: one to read, and per caller one to delete and one to protect
    let mut alias_names = vec!["shared".to_owned()];
    for caller in CALLERS {
        let slug = caller.replace('_', "-");
        alias_names.extend([format!("d-{slug}"), format!("p-{slug}")]);
    }
    for alias in alias_names {
        let res = app
            .call(
                Method::PUT,
                &format!("/api/v1/models/{model}/aliases/{alias}"),
                &alpha_admin,
                Some(json!({"version_id": model_version})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }

    // a webhook of alpha with one delivery, and per caller one to delete
    let hook = |url: String| {
        let app = &app;
        let auth = alpha_admin.clone();
        async move {
            let body = json!({"url": url, "event_types": ["*"]});
            let res = app.call(Method::POST, "/api/v1/teams/alpha/webhooks", &auth, Some(body)).await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["webhook"]["id"].as_str().expect("id").to_owned()
        }
    };
    let webhook = hook("https://hooks.example.com/shared".into()).await;
    let mut doomed: HashMap<&str, String> = HashMap::new();
    for caller in CALLERS {
        doomed.insert(caller, hook(format!("https://hooks.example.com/del-{}", caller.replace('_', "-"))).await);
    }
    let delivery: String = sqlx::query_scalar(
        "select delivery_id::text from webhook_delivery where webhook_id = $1::uuid order by delivery_id limit 1",
    )
    .bind(&webhook)
    .fetch_one(&app.pool)
    .await
    .expect("a delivery of the webhook");
    // MLflow addresses versions by number: v1 is `model_version`, then each caller's pending pair in order
    let pending_number: HashMap<&str, usize> = CALLERS.iter().enumerate().map(|(i, c)| (*c, 2 + 2 * i)).collect();
    app.put("capstan", "models/alpha/matrix/model.tar.gz", "model").await;
    // change requests written by the member: per caller one to edit, approve, reject, withdraw and decide
    let member_auth = Auth::Bearer(member.token.clone());
    let mut requests: HashMap<(&str, &str), String> = HashMap::new();
    for caller in CALLERS {
        for purpose in ["edit", "approve", "reject", "withdraw", "decide"] {
            let body = json!({"change": {"kind": "alias.move", "model_id": model, "alias": "shared",
                                         "version_id": pending[&(caller, 2)]}, "title": purpose});
            let res = app.call(Method::POST, "/api/v1/teams/alpha/change-requests", &member_auth, Some(body)).await;
            assert_eq!(res.status, 201, "{}", res.text());
            requests.insert((caller, purpose), res.json()["id"].as_str().expect("id").to_owned());
        }
    }
    // endpoints of alpha: one shared, per caller two to delete (rows only: no model runs here)
    let new_endpoint = |name: String| {
        let app = &app;
        let auth = alpha_admin.clone();
        let version = model_version.clone();
        async move {
            let body = json!({"name": name, "variants": [{"name": "a", "version_id": version,
                              "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1}]});
            let res = app.call(Method::POST, "/api/v1/teams/alpha/endpoints", &auth, Some(body)).await;
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["id"].as_str().expect("id").to_owned()
        }
    };
    let endpoint = new_endpoint("shared".into()).await;
    let mut endpoints_del: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        for set in [1, 2] {
            endpoints_del.insert((caller, set), new_endpoint(format!("del{set}-{}", caller.replace('_', "-"))).await);
        }
    }
    // per caller two invoke keys of the shared endpoint, to revoke
    let mut invoke_keys: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        for set in [1, 2] {
            let path = format!("/api/v1/endpoints/{endpoint}/invoke-keys");
            let res =
                app.call(Method::POST, &path, &alpha_admin, Some(json!({"name": format!("{caller}-{set}")}))).await;
            assert_eq!(res.status, 201, "{}", res.text());
            invoke_keys.insert((caller, set), res.json()["key"]["id"].as_str().expect("id").to_owned());
        }
    }
    // per caller two endpoints with a manual rollout under way, to command
    let mut rollouts: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        for set in [1, 2] {
            let e = new_endpoint(format!("ro{set}-{}", caller.replace('_', "-"))).await;
            let body =
                json!({"baseline": "a", "candidate": "b", "candidate_version_id": model_version, "strategy": "manual"});
            let res =
                app.call(Method::POST, &format!("/api/v1/endpoints/{e}/rollouts"), &alpha_admin, Some(body)).await;
            assert_eq!(res.status, 201, "{}", res.text());
            rollouts.insert((caller, set), res.json()["id"].as_str().expect("id").to_owned());
        }
    }
    // endpoints of two variants with a bandit on: one shared, per caller two to stop
    let new_bandit = |name: String| {
        let app = &app;
        let auth = alpha_admin.clone();
        let version = model_version.clone();
        async move {
            let variant = |n: &str| {
                json!({"name": n, "version_id": version, "instance_type": "ml.m5.large",
                                          "instance_count": 1, "weight": 1})
            };
            let body = json!({"name": name, "variants": [variant("a"), variant("b")]});
            let res = app.call(Method::POST, "/api/v1/teams/alpha/endpoints", &auth, Some(body)).await;
            assert_eq!(res.status, 201, "{}", res.text());
            let id = res.json()["id"].as_str().expect("id").to_owned();
            let settings = json!({"metric": "conversion", "kind": "binary"});
            let res = app.call(Method::PUT, &format!("/api/v1/endpoints/{id}/bandit"), &auth, Some(settings)).await;
            assert_eq!(res.status, 200, "{}", res.text());
            id
        }
    };
    let bandit = new_bandit("bandit".into()).await;
    let mut bandits: HashMap<(&str, u8), String> = HashMap::new();
    for caller in CALLERS {
        for set in [1, 2] {
            bandits.insert((caller, set), new_bandit(format!("bd{set}-{}", caller.replace('_', "-"))).await);
        }
    }
    let mut failures = Vec::new();
    for case in cases() {
        let expected: Vec<u16> = case.expect.split_whitespace().map(|s| s.parse().expect("status")).collect();
        assert_eq!(expected.len(), CALLERS.len(), "row {} has a wrong number of outcomes", case.call);
        for (caller, want) in CALLERS.iter().zip(expected) {
            let fill = |s: &str| {
                s.replace("{caller_slug}", &caller.replace('_', "-"))
                    .replace("{caller}", caller)
                    .replace("{target}", &target.id.to_string())
                    .replace("{victim}", &victims[caller].to_string())
                    .replace("{victim2}", &victims2[caller].to_string())
                    .replace("{viewer_token}", &viewer_token)
                    .replace("{viewer_token2}", &viewer_token2)
                    .replace("{dataset2}", &dataset2)
                    .replace("{dataset}", &dataset)
                    .replace("{version}", &version)
                    .replace("{upload2}", &uploads[&(*caller, 2)])
                    .replace("{upload}", &uploads[&(*caller, 1)])
                    .replace("{beta_source}", beta_source)
                    .replace("{beta_version}", &beta_version)
                    .replace("{ready}", &ready[caller])
                    .replace("{source}", source)
                    .replace("{job_stop2}", &jobs[&(*caller, 2)])
                    .replace("{job_stop}", &jobs[&(*caller, 1)])
                    .replace("{job}", &job)
                    .replace("{beta_job}", &beta_job)
                    .replace("{model_archive}", &archivable[caller])
                    .replace("{model_version}", &model_version)
                    .replace("{beta_model_version}", &beta_model_version)
                    .replace("{pending_version2}", &pending[&(*caller, 2)])
                    .replace("{webhook_del}", &doomed[caller])
                    .replace("{webhook}", &webhook)
                    .replace("{delivery}", &delivery)
                    .replace("{cr_edit}", &requests[&(*caller, "edit")])
                    .replace("{cr_approve}", &requests[&(*caller, "approve")])
                    .replace("{cr_reject}", &requests[&(*caller, "reject")])
                    .replace("{cr_withdraw}", &requests[&(*caller, "withdraw")])
                    .replace("{cr_decide}", &requests[&(*caller, "decide")])
                    .replace("{pending_version}", &pending[&(*caller, 1)])
                    .replace("{pending_number}", &pending_number[caller].to_string())
                    .replace("{model}", &model)
                    .replace("{rollout2}", &rollouts[&(*caller, 2)])
                    .replace("{rollout}", &rollouts[&(*caller, 1)])
                    .replace("{invoke_key2}", &invoke_keys[&(*caller, 2)])
                    .replace("{invoke_key}", &invoke_keys[&(*caller, 1)])
                    .replace("{endpoint_del2}", &endpoints_del[&(*caller, 2)])
                    .replace("{endpoint_del}", &endpoints_del[&(*caller, 1)])
                    .replace("{endpoint}", &endpoint)
                    .replace("{bandit2}", &bandits[&(*caller, 2)])
                    .replace("{bandit_own}", &bandits[&(*caller, 1)])
                    .replace("{bandit}", &bandit)
            };
            let user = users.get(caller);
            let got = if let Some(name) = case.call.strip_prefix("json ") {
                // server functions taking JSON (the upload client's calls)
                let auth = user.map_or(Auth::None, |u| Auth::Cookie(u.cookie.clone()));
                let body = serde_json::from_str(&fill(&case.input.to_string())).expect("json");
                app.call(Method::POST, &format!("/rpc/{name}"), &auth, Some(body)).await
            } else if let Some(path) = case.call.strip_prefix("upload ") {
                let boundary = "matrix-boundary";
                let body = format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"train.py\"\r\n\r\nprint('hi')\n\r\n--{boundary}--\r\n"
                );
                let mut req = http::Request::builder()
                    .method(Method::POST)
                    .uri(path)
                    .header("content-type", format!("multipart/form-data; boundary={boundary}"));
                if let Some(u) = user {
                    req = req.header("authorization", format!("Bearer {}", u.token));
                }
                app.send(req.body(axum::body::Body::from(body)).expect("request")).await
            } else if let Some(name) = case.call.strip_prefix("fn ") {
                let auth = user.map_or(Auth::None, |u| Auth::Cookie(u.cookie.clone()));
                let fields: Vec<(String, String)> = case
                    .input
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), fill(v.as_str().unwrap_or_default()))).collect())
                    .unwrap_or_default();
                let args: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                app.server_fn(name, &auth, &args).await
            } else {
                let (method, path) = case.call.split_once(' ').expect("METHOD path");
                let auth = user.map_or(Auth::None, |u| Auth::Bearer(u.token.clone()));
                let body = (!case.input.is_null())
                    .then(|| serde_json::from_str(&fill(&case.input.to_string())).expect("json"));
                app.call(method.parse().expect("method"), &fill(path), &auth, body).await
            };
            if got.status.as_u16() != want {
                failures.push(format!("{} as {caller}: expected {want}, got {} {}", case.call, got.status, got.text()));
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix mismatches:\n{}", failures.join("\n"));
}
