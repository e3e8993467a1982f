//! Browser uploads into a new dataset version. Capstan never carries the
//! data: it starts one S3 multipart upload per file in the version's managed
//! prefix, hands out presigned URLs for the parts, and completes (or aborts)
//! the uploads. Completion scans the prefix like any other version.

use crate::datasets::types::{DatasetVersion, VersionStatus};
use crate::datasets::types::{
    NewUpload, PartUrl, PartsRequest, UploadCompletion, UploadPlan, UploadStarted, part_size_for,
};
use crate::datasets::versions::{NewRow, insert_row, load};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::{AppError, FieldError};
use crate::kernel::roles::Action;
use crate::kernel::state::AppState;
use serde_json::json;
use storage::aws_sdk_s3::presigning::PresigningConfig;
use storage::{S3Failure, aws_sdk_s3};
use uuid::Uuid;

const MAX_FILES: usize = 1000;
const MAX_FILE_SIZE: i64 = 5 * 1024 * 1024 * 1024 * 1024;

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 1024 {
        return Err("Use a path of 1-1024 bytes.".into());
    }
    storage::check_relative(path).map_err(|m| format!("The path {m}"))
}

pub async fn start(ctx: &Ctx, dataset_id: Uuid, input: NewUpload) -> Result<UploadStarted, AppError> {
    let dataset = crate::datasets::domain::get(ctx, dataset_id).await?;
    let (team, _) = crate::teams::domain::load(ctx, &dataset.team, Action::Contribute).await?;
    if dataset.archived_at.is_some() {
        return Err(AppError::Conflict { field: None, message: "The dataset is archived.".into() });
    }
    let mut errors = Vec::new();
    if input.files.is_empty() {
        errors.push(FieldError::new("files", "Choose at least one file."));
    }
    if input.files.len() > MAX_FILES {
        errors.push(FieldError::new("files", format!("Upload at most {MAX_FILES} files at once.")));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, f) in input.files.iter().enumerate() {
        if let Err(m) = check_path(&f.path) {
            errors.push(FieldError::new(&format!("files[{i}].path"), m));
        } else if !seen.insert(f.path.as_str()) {
            errors.push(FieldError::new(&format!("files[{i}].path"), format!("{} appears twice.", f.path)));
        }
        if f.size < 1 {
            errors.push(FieldError::new(
                &format!("files[{i}].size"),
                format!("{} is empty: zero-byte files cannot be uploaded.", f.path),
            ));
        } else if f.size > MAX_FILE_SIZE {
            errors.push(FieldError::new(&format!("files[{i}].size"), "Files can be at most 5 TiB."));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let plans: Vec<UploadPlan> = input
        .files
        .iter()
        .map(|f| {
            let part_size = part_size_for(f.size);
            let part_count = i32::try_from((f.size + part_size - 1) / part_size).unwrap_or(i32::MAX);
            UploadPlan { path: f.path.clone(), size: f.size, part_size, part_count }
        })
        .collect();

    let mut tx = ctx.pool().begin().await?;
    let row = NewRow {
        dataset_id,
        source: "upload",
        source_uri: "",
        snapshot: true,
        location: None,
        status: VersionStatus::Uploading,
    };
    let (id, number, bucket, prefix) = insert_row(ctx, &mut tx, row).await?;
    let location = format!("s3://{bucket}/{prefix}");
    sqlx::query!("update dataset_version set source_uri = $2 where version_id = $1", id, location)
        .execute(&mut *tx)
        .await?;
    let client = &ctx.state.storage.client;
    let mut started: Vec<(String, String)> = Vec::new();
    for plan in &plans {
        let key = format!("{prefix}{}", plan.path);
        let created = client.create_multipart_upload().bucket(&bucket).key(&key).send().await;
        let upload_id = match created {
            Ok(out) => out.upload_id().unwrap_or_default().to_owned(),
            Err(e) => {
                abort_all(&ctx.state, &bucket, &started).await;
                let failure = S3Failure::from(e);
                tracing::warn!(%failure, "could not start a multipart upload");
                return Err(AppError::Conflict {
                    field: Some("files".into()),
                    message: format!("Could not start the upload to {location}: {failure}"),
                });
            }
        };
        started.push((key, upload_id.clone()));
        sqlx::query!(
            "insert into dataset_upload_file (version_id, path, size, part_size, part_count, s3_upload_id)
             values ($1, $2, $3, $4, $5, $6)",
            id,
            plan.path,
            plan.size,
            plan.part_size,
            plan.part_count,
            upload_id
        )
        .execute(&mut *tx)
        .await?;
    }
    let total: i64 = plans.iter().map(|p| p.size).sum();
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "dataset_version.upload_started",
            target_type: "dataset_version",
            target_id: Some(id.to_string()),
            summary: json!({ "dataset": dataset.name, "number": number, "files": plans.len(), "bytes": total }),
        },
    )
    .await?;
    if let Err(e) = tx.commit().await {
        abort_all(&ctx.state, &bucket, &started).await;
        return Err(e.into());
    }
    let version = crate::datasets::versions::get(ctx, id).await?;
    Ok(UploadStarted { version, files: plans })
}

async fn abort_all(state: &AppState, bucket: &str, uploads: &[(String, String)]) {
    for (key, upload_id) in uploads {
        let aborted =
            state.storage.client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
        if let Err(e) = aborted {
            let failure = S3Failure::from(e);
            if failure.code != "NoSuchUpload" {
                tracing::warn!(%failure, key, "could not abort a multipart upload");
            }
        }
    }
}

/// The version, which must still be uploading, with its team id.
async fn uploading(ctx: &Ctx, id: Uuid) -> Result<crate::datasets::versions::Loaded, AppError> {
    let loaded = load(ctx, id, Action::Contribute).await?;
    if loaded.version.status != VersionStatus::Uploading {
        return Err(AppError::Conflict {
            field: None,
            message: format!("Version {} is {}, not uploading.", loaded.version.number, loaded.version.status.as_str()),
        });
    }
    Ok(loaded)
}

pub async fn presign(ctx: &Ctx, id: Uuid, input: PartsRequest) -> Result<Vec<PartUrl>, AppError> {
    let loaded = uploading(ctx, id).await?;
    let file = sqlx::query!(
        "select part_count, s3_upload_id from dataset_upload_file where version_id = $1 and path = $2",
        id,
        input.path
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::field("path", format!("{} is not part of this upload.", input.path)))?;
    if input.parts.is_empty() || input.parts.len() > 1000 {
        return Err(AppError::field("parts", "Ask for 1-1000 parts at a time."));
    }
    if let Some(bad) = input.parts.iter().find(|&&n| n < 1 || n > file.part_count) {
        return Err(AppError::field("parts", format!("Part {bad} is outside 1-{}.", file.part_count)));
    }
    let key = format!("{}{}", loaded.prefix, input.path);
    let config = PresigningConfig::expires_in(std::time::Duration::from_secs(3600)).map_err(|_| AppError::Internal)?;
    let mut urls = Vec::with_capacity(input.parts.len());
    for &number in &input.parts {
        let presigned = ctx
            .state
            .storage
            .presigner()
            .upload_part()
            .bucket(&loaded.bucket)
            .key(&key)
            .upload_id(&file.s3_upload_id)
            .part_number(number)
            .presigned(config.clone())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "presigning failed");
                AppError::Internal
            })?;
        urls.push(PartUrl { number, url: presigned.uri().to_owned() });
    }
    Ok(urls)
}

pub async fn complete(ctx: &Ctx, id: Uuid, input: UploadCompletion) -> Result<DatasetVersion, AppError> {
    let loaded = uploading(ctx, id).await?;
    let files = sqlx::query!(
        "select path, size, part_count, s3_upload_id from dataset_upload_file where version_id = $1 order by path",
        id
    )
    .fetch_all(ctx.pool())
    .await?;
    let mut errors = Vec::new();
    for (i, f) in input.files.iter().enumerate() {
        if !files.iter().any(|r| r.path == f.path) {
            errors
                .push(FieldError::new(&format!("files[{i}].path"), format!("{} is not part of this upload.", f.path)));
        }
    }
    for row in &files {
        let Some((i, f)) = input.files.iter().enumerate().find(|(_, f)| f.path == row.path) else {
            errors.push(FieldError::new("files", format!("{} was not completed.", row.path)));
            continue;
        };
        let mut numbers: Vec<i32> = f.parts.iter().map(|p| p.number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let missing: Vec<String> =
            (1..=row.part_count).filter(|n| numbers.binary_search(n).is_err()).map(|n| n.to_string()).collect();
        if !missing.is_empty() {
            errors.push(FieldError::new(
                &format!("files[{i}].parts"),
                format!("{}: part {} of {} missing.", row.path, missing.join(", "), row.part_count),
            ));
        } else if numbers.len() != f.parts.len() || numbers.last().is_some_and(|&n| n > row.part_count) {
            errors.push(FieldError::new(
                &format!("files[{i}].parts"),
                format!("{}: parts must be 1-{} once each.", row.path, row.part_count),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let client = &ctx.state.storage.client;
    for (i, f) in input.files.iter().enumerate() {
        let Some(row) = files.iter().find(|r| r.path == f.path) else { continue };
        let key = format!("{}{}", loaded.prefix, f.path);
        let mut parts = f.parts.clone();
        parts.sort_by_key(|p| p.number);
        let upload = aws_sdk_s3::types::CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| aws_sdk_s3::types::CompletedPart::builder().part_number(p.number).e_tag(&p.etag).build())
                    .collect(),
            ))
            .build();
        let done = client
            .complete_multipart_upload()
            .bucket(&loaded.bucket)
            .key(&key)
            .upload_id(&row.s3_upload_id)
            .multipart_upload(upload)
            .send()
            .await;
        if let Err(e) = done {
            let failure = S3Failure::from(e);
            // Completed anyway: by an earlier attempt that failed on a later
            // file, or the store answered in a form the SDK could not parse.
            let head = client.head_object().bucket(&loaded.bucket).key(&key).send().await;
            let already = head.is_ok_and(|h| h.content_length() == Some(row.size));
            if !already {
                return Err(AppError::field(&format!("files[{i}].parts"), format!("{}: {failure}", f.path)));
            }
        }
    }
    let mut tx = ctx.pool().begin().await?;
    let moved = sqlx::query!(
        "update dataset_version set status = 'scanning' where version_id = $1 and status = 'uploading'",
        id
    )
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(AppError::Conflict { field: None, message: "The upload was cancelled meanwhile.".into() });
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(loaded.team_id),
            action: "dataset_version.uploaded",
            target_type: "dataset_version",
            target_id: Some(id.to_string()),
            summary: json!({ "dataset": loaded.version.dataset, "number": loaded.version.number, "files": files.len() }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::datasets::versions::start_scan(&ctx.state, id).await;
    crate::datasets::versions::get(ctx, id).await
}

pub async fn abort(ctx: &Ctx, id: Uuid) -> Result<DatasetVersion, AppError> {
    let loaded = uploading(ctx, id).await?;
    let actor = ctx.actor()?;
    // the status and its audit event in one transaction; only the call that
    // moved the version out of `uploading` cancels it (a racing completion wins
    // or loses as a whole)
    let mut tx = ctx.pool().begin().await?;
    if !mark_failed(&mut tx, id, &format!("Upload cancelled by {}.", actor.email)).await? {
        return Err(AppError::Conflict { field: None, message: "This upload is no longer in progress.".into() });
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(loaded.team_id),
            action: "dataset_version.upload_cancelled",
            target_type: "dataset_version",
            target_id: Some(id.to_string()),
            summary: json!({ "dataset": loaded.version.dataset, "number": loaded.version.number }),
        },
    )
    .await?;
    tx.commit().await?;
    abort_parts(&ctx.state, id, &loaded.bucket, &loaded.prefix).await?;
    crate::datasets::versions::get(ctx, id).await
}

/// Moves an uploading version to `failed`; false when it was not uploading.
async fn mark_failed(conn: &mut sqlx::PgConnection, id: Uuid, reason: &str) -> Result<bool, AppError> {
    let done = sqlx::query!(
        "update dataset_version set status = 'failed', failure = $2, finished_at = now()
         where version_id = $1 and status = 'uploading'",
        id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Aborts the S3 multipart uploads of a version that is no longer uploading.
async fn abort_parts(state: &AppState, id: Uuid, bucket: &str, prefix: &str) -> Result<(), AppError> {
    let uploads: Vec<(String, String)> =
        sqlx::query!("select path, s3_upload_id from dataset_upload_file where version_id = $1", id)
            .fetch_all(&state.pool)
            .await?
            .into_iter()
            .map(|r| (format!("{prefix}{}", r.path), r.s3_upload_id))
            .collect();
    abort_all(state, bucket, &uploads).await;
    Ok(())
}

/// Aborts uploads left unfinished for more than `age`; returns how many versions were given up.
pub async fn clean_stale(state: &AppState, age: time::Duration) -> Result<usize, AppError> {
    let cutoff = time::OffsetDateTime::now_utc() - age;
    let stale = sqlx::query!(
        "select version_id, bucket, prefix from dataset_version where status = 'uploading' and created_at < $1",
        cutoff
    )
    .fetch_all(&state.pool)
    .await?;
    for v in &stale {
        let mut conn = state.pool.acquire().await?;
        if mark_failed(&mut conn, v.version_id, "Upload abandoned: not completed within a day.").await? {
            abort_parts(state, v.version_id, &v.bucket, &v.prefix).await?;
        }
    }
    Ok(stale.len())
}
