//! Dataset versions over REST: register from an S3 prefix, upload from a
//! client through presigned multipart URLs, browse the manifest, preview
//! objects and check for drift.

use super::{ApiJson, ApiPath, ApiQuery};
use app::datasets::types::{
    Check, DatasetVersion, Drift, DriftQuery, ManifestEntry, ManifestQuery, NewVersion, VersionQuery,
};
use app::datasets::types::{NewUpload, PartUrl, PartsRequest, UploadCompletion, UploadStarted};
use app::datasets::types::{Preview, PreviewQuery};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use axum::Json;
use http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, delete))
        .routes(routes!(manifest))
        .routes(routes!(preview))
        .routes(routes!(verify, latest_check))
        .routes(routes!(drift))
        .routes(routes!(start_upload))
        .routes(routes!(presign_parts))
        .routes(routes!(complete_upload))
        .routes(routes!(abort_upload))
}

/// The dataset's versions, newest first.
#[utoipa::path(get, path = "/datasets/{id}/versions", tag = "datasets", params(("id" = Uuid, Path), VersionQuery),
    responses((status = 200, body = Page<DatasetVersion>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Json<Page<DatasetVersion>>, AppError> {
    Ok(Json(app::datasets::versions::list(&ctx, id, q).await?))
}

/// Registers a version from an S3 prefix (members and up). The prefix is
/// probed first; the manifest is recorded in the background (`status`
/// goes `scanning` → `ready` | `failed`).
#[utoipa::path(post, path = "/datasets/{id}/versions", tag = "datasets", params(("id" = Uuid, Path)), request_body = NewVersion,
    responses((status = 201, body = DatasetVersion), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewVersion>,
) -> Result<(StatusCode, Json<DatasetVersion>), AppError> {
    Ok((StatusCode::CREATED, Json(app::datasets::versions::create(&ctx, id, input).await?)))
}

/// One version with its totals and digest (live counts while scanning).
#[utoipa::path(get, path = "/dataset-versions/{id}", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = DatasetVersion), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<DatasetVersion>, AppError> {
    Ok(Json(app::datasets::versions::get(&ctx, id).await?))
}

/// Deletes a version (team admins) and Capstan's copy of its objects.
/// Refused (409) while it is scanning or uploading, or when a training job
/// or model references it.
#[utoipa::path(delete, path = "/dataset-versions/{id}", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<StatusCode, AppError> {
    app::datasets::versions::delete(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The version's objects by key, optionally under a key prefix.
#[utoipa::path(get, path = "/dataset-versions/{id}/manifest", tag = "datasets", params(("id" = Uuid, Path), ManifestQuery),
    responses((status = 200, body = Page<ManifestEntry>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn manifest(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ManifestQuery>,
) -> Result<Json<Page<ManifestEntry>>, AppError> {
    Ok(Json(app::datasets::versions::manifest(&ctx, id, q).await?))
}

/// First rows and inferred columns of a CSV, TSV, JSON Lines or Parquet object (ranged reads only).
#[utoipa::path(get, path = "/dataset-versions/{id}/preview", tag = "datasets", params(("id" = Uuid, Path), PreviewQuery),
    responses((status = 200, body = Preview), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
async fn preview(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<Preview>, AppError> {
    Ok(Json(app::datasets::preview::preview(&ctx, id, q).await?))
}

/// Starts a drift check (members and up): the location is re-listed and
/// compared with the manifest in the background.
#[utoipa::path(post, path = "/dataset-versions/{id}/verify", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 202, body = Check), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn verify(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<(StatusCode, Json<Check>), AppError> {
    Ok((StatusCode::ACCEPTED, Json(app::datasets::versions::verify(&ctx, id).await?)))
}

/// The latest drift check.
#[utoipa::path(get, path = "/dataset-versions/{id}/verify", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = Check), (status = 404, body = Problem)))]
async fn latest_check(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Check>, AppError> {
    app::datasets::versions::latest_check(&ctx, id).await?.map(Json).ok_or_else(|| AppError::NotFound("Check".into()))
}

/// Objects added, removed or changed, as found by a check (the latest by default).
#[utoipa::path(get, path = "/dataset-versions/{id}/drift", tag = "datasets", params(("id" = Uuid, Path), DriftQuery),
    responses((status = 200, body = Page<Drift>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn drift(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DriftQuery>,
) -> Result<Json<Page<Drift>>, AppError> {
    Ok(Json(app::datasets::versions::drift(&ctx, id, q).await?))
}

/// Starts an upload into a new version (members and up): one S3 multipart
/// upload per file; the answer says how to cut each file into parts.
#[utoipa::path(post, path = "/datasets/{id}/uploads", tag = "datasets", params(("id" = Uuid, Path)), request_body = NewUpload,
    responses((status = 201, body = UploadStarted), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn start_upload(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NewUpload>,
) -> Result<(StatusCode, Json<UploadStarted>), AppError> {
    Ok((StatusCode::CREATED, Json(app::datasets::upload::start(&ctx, id, input).await?)))
}

/// Presigned `PUT` URLs for parts of one file (valid for an hour).
#[utoipa::path(post, path = "/dataset-versions/{id}/upload/parts", tag = "datasets", params(("id" = Uuid, Path)),
    request_body = PartsRequest,
    responses((status = 200, body = Vec<PartUrl>), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
async fn presign_parts(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<PartsRequest>,
) -> Result<Json<Vec<PartUrl>>, AppError> {
    Ok(Json(app::datasets::upload::presign(&ctx, id, input).await?))
}

/// Completes every file's multipart upload (all parts with their ETags) and
/// starts the scan; the version becomes `scanning`, then `ready`.
#[utoipa::path(post, path = "/dataset-versions/{id}/upload/complete", tag = "datasets", params(("id" = Uuid, Path)),
    request_body = UploadCompletion,
    responses((status = 200, body = DatasetVersion), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
async fn complete_upload(
    ctx: Ctx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<UploadCompletion>,
) -> Result<Json<DatasetVersion>, AppError> {
    Ok(Json(app::datasets::upload::complete(&ctx, id, input).await?))
}

/// Cancels an upload: the multipart uploads are aborted and the version marked failed.
#[utoipa::path(post, path = "/dataset-versions/{id}/upload/abort", tag = "datasets", params(("id" = Uuid, Path)),
    responses((status = 200, body = DatasetVersion), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn abort_upload(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<DatasetVersion>, AppError> {
    Ok(Json(app::datasets::upload::abort(&ctx, id).await?))
}
