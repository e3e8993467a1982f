//! Dataset versions: immutable snapshots of S3 data. A version is registered
//! from an `s3://` prefix (optionally copied into Capstan's managed area) or
//! uploaded from a browser; a background scan records a manifest row per
//! object, the totals and a SHA-256 digest. "Verify" re-lists the version's
//! location and stores what drifted.

use crate::datasets::types::{
    Check, DatasetVersion, Drift, DriftQuery, ManifestEntry, ManifestQuery, NewVersion, VersionQuery, VersionStatus,
};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::state::AppState;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use storage::{S3Failure, S3Uri};
use uuid::Uuid;

/// Objects copied at once when snapshotting.
const COPY_CONCURRENCY: usize = 16;

/// A version row with the caller's role in its team.
pub(crate) struct Loaded {
    pub version: DatasetVersion,
    pub team_id: Uuid,
    pub bucket: String,
    pub prefix: String,
}

/// A version as stored, with the caller's role in its team (`None` in lists).
struct VersionRow {
    version_id: Uuid,
    dataset_id: Uuid,
    dataset: String,
    team: String,
    team_id: Uuid,
    number: i32,
    source: String,
    source_uri: String,
    snapshot: bool,
    bucket: String,
    prefix: String,
    status: VersionStatus,
    failure: Option<String>,
    object_count: i64,
    byte_count: i64,
    digest: Option<String>,
    created_by: String,
    created_at: time::OffsetDateTime,
    finished_at: Option<time::OffsetDateTime>,
    role: Option<Role>,
}

impl VersionRow {
    fn version(&self) -> DatasetVersion {
        DatasetVersion {
            id: self.version_id,
            dataset_id: self.dataset_id,
            dataset: self.dataset.clone(),
            team: self.team.clone(),
            number: self.number,
            source: self.source.clone(),
            source_uri: self.source_uri.clone(),
            snapshot: self.snapshot,
            location: format!("s3://{}/{}", self.bucket, self.prefix),
            status: self.status,
            failure: self.failure.clone(),
            object_count: self.object_count,
            byte_count: self.byte_count,
            digest: self.digest.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            finished_at: self.finished_at,
        }
    }
}

/// Loads a version and checks `action` against the caller's role; other
/// teams' versions are reported as not found.
pub(crate) async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<Loaded, AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query_as!(
        VersionRow,
        r#"select v.version_id, v.dataset_id, d.name as dataset, t.slug as team, v.team_id, v.number, v.source,
                  v.source_uri, v.snapshot, v.bucket, v.prefix, v.status as "status: VersionStatus", v.failure,
                  v.object_count, v.byte_count, v.digest, u.email as created_by, v.created_at, v.finished_at,
                  m.role as "role?: Role"
           from dataset_version v join dataset d on d.dataset_id = v.dataset_id
           join team t on t.team_id = v.team_id join app_user u on u.user_id = v.created_by
           left join team_member m on m.team_id = v.team_id and m.user_id = $2
           where v.version_id = $1"#,
        id,
        actor.user_id,
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Dataset version".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Dataset version")?;
    Ok(Loaded { version: row.version(), team_id: row.team_id, bucket: row.bucket, prefix: row.prefix })
}

pub async fn get(ctx: &Ctx, id: Uuid) -> Result<DatasetVersion, AppError> {
    Ok(load(ctx, id, Action::ReadTeam).await?.version)
}

pub async fn list(ctx: &Ctx, dataset_id: Uuid, q: VersionQuery) -> Result<Page<DatasetVersion>, AppError> {
    crate::datasets::domain::get(ctx, dataset_id).await?;
    let limit = page::limit(q.limit)?;
    // newest first: the cursor is the last number shown
    let before: Option<i32> = page::ssr::decode(q.cursor.as_deref())?;
    let items = sqlx::query_as!(
        VersionRow,
        r#"select v.version_id, v.dataset_id, d.name as dataset, t.slug as team, v.team_id, v.number, v.source,
                  v.source_uri, v.snapshot, v.bucket, v.prefix, v.status as "status: VersionStatus", v.failure,
                  v.object_count, v.byte_count, v.digest, u.email as created_by, v.created_at, v.finished_at,
                  null::team_role as "role?: Role"
           from dataset_version v join dataset d on d.dataset_id = v.dataset_id
           join team t on t.team_id = v.team_id join app_user u on u.user_id = v.created_by
           where v.dataset_id = $1 and v.number < $2
           order by v.number desc limit $3"#,
        dataset_id,
        before.unwrap_or(i32::MAX),
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?
    .iter()
    .map(VersionRow::version)
    .collect();
    Ok(page::ssr::build(items, limit, |v: &DatasetVersion| v.number))
}

/// Where a dataset's managed copies live.
pub(crate) fn managed_prefix(team: &str, dataset: &str, number: i32) -> String {
    format!("datasets/{team}/{dataset}/v{number}/")
}

/// A new version row in `status`, numbered next for the dataset; the
/// dataset row is locked so concurrent creations get distinct numbers.
pub(crate) struct NewRow<'a> {
    pub dataset_id: Uuid,
    pub source: &'a str,
    pub source_uri: &'a str,
    pub snapshot: bool,
    /// `None`: the managed area for this version.
    pub location: Option<(&'a str, &'a str)>,
    pub status: VersionStatus,
}

pub(crate) async fn insert_row(
    ctx: &Ctx,
    tx: &mut sqlx::PgConnection,
    row: NewRow<'_>,
) -> Result<(Uuid, i32, String, String), AppError> {
    let actor = ctx.actor()?;
    let dataset = sqlx::query!(
        "select d.team_id, d.name, t.slug from dataset d join team t on t.team_id = d.team_id
         where d.dataset_id = $1 for update of d",
        row.dataset_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let number = sqlx::query_scalar!(
        r#"select coalesce(max(number), 0) + 1 as "n!" from dataset_version where dataset_id = $1"#,
        row.dataset_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (bucket, prefix) = match row.location {
        Some((b, p)) => (b.to_owned(), p.to_owned()),
        None => (ctx.state.storage.bucket.clone(), managed_prefix(&dataset.slug, &dataset.name, number)),
    };
    let id = Uuid::now_v7();
    sqlx::query!(
        "insert into dataset_version (version_id, dataset_id, team_id, number, source, source_uri, snapshot,
                                      bucket, prefix, status, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        id,
        row.dataset_id,
        dataset.team_id,
        number,
        row.source,
        row.source_uri,
        row.snapshot,
        bucket,
        prefix,
        row.status as VersionStatus,
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    Ok((id, number, bucket, prefix))
}

/// Registers a version from an S3 prefix. The URI is checked and the
/// prefix probed before anything is written; the scan runs in the background.
pub async fn create(ctx: &Ctx, dataset_id: Uuid, input: NewVersion) -> Result<DatasetVersion, AppError> {
    let dataset = crate::datasets::domain::get(ctx, dataset_id).await?;
    let (team, _) = crate::teams::domain::load(ctx, &dataset.team, Action::Contribute).await?;
    if dataset.archived_at.is_some() {
        return Err(AppError::Conflict { field: None, message: "The dataset is archived.".into() });
    }
    let uri = S3Uri::parse(&input.source_uri).map_err(|m| AppError::field("source_uri", m))?;
    reachable(&ctx.state.storage.bucket, &team, &uri).map_err(|m| AppError::field("source_uri", m))?;
    probe(&ctx.state, &uri).await.map_err(|m| AppError::field("source_uri", m))?;
    let uri_text = uri.to_string();
    let mut tx = ctx.pool().begin().await?;
    let location = (!input.snapshot).then_some((uri.bucket.as_str(), uri.prefix.as_str()));
    let (id, number, ..) = insert_row(
        ctx,
        &mut tx,
        NewRow {
            dataset_id,
            source: "prefix",
            source_uri: &uri_text,
            snapshot: input.snapshot,
            location,
            status: VersionStatus::Scanning,
        },
    )
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "dataset_version.created",
            target_type: "dataset_version",
            target_id: Some(id.to_string()),
            summary: json!({ "dataset": dataset.name, "number": number, "source_uri": uri_text, "snapshot": input.snapshot }),
        },
    )
    .await?;
    tx.commit().await?;
    start_scan(&ctx.state, id).await;
    get(ctx, id).await
}

pub async fn delete(ctx: &Ctx, id: Uuid) -> Result<(), AppError> {
    let loaded = load(ctx, id, Action::Archive).await?;
    let v = &loaded.version;
    if v.status.in_progress() {
        return Err(AppError::Conflict {
            field: None,
            message: format!("Version {} is {}: cancel or wait for it first.", v.number, v.status.as_str()),
        });
    }
    let mut tx = ctx.pool().begin().await?;
    let deleted = sqlx::query!("delete from dataset_version where version_id = $1", id).execute(&mut *tx).await;
    match deleted {
        Ok(_) => {}
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("training_job_channel_version_id_fkey") => {
            return Err(AppError::Conflict {
                field: None,
                message: format!(
                    "Version {} trained a job (it is one of the job's inputs) and cannot be deleted: its lineage is kept.",
                    v.number
                ),
            });
        }
        // anything else that records lineage (later: model versions) protects it
        // too; the message never names the database's tables
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            return Err(AppError::Conflict {
                field: None,
                message: format!("Version {} is part of a recorded lineage and cannot be deleted.", v.number),
            });
        }
        Err(e) => return Err(e.into()),
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(loaded.team_id),
            action: "dataset_version.deleted",
            target_type: "dataset_version",
            target_id: Some(id.to_string()),
            summary: json!({ "dataset": v.dataset, "number": v.number, "location": v.location, "digest": v.digest }),
        },
    )
    .await?;
    // Capstan's copy goes too, unless another version was registered from it.
    let managed = loaded.bucket == ctx.state.storage.bucket && loaded.prefix.starts_with("datasets/");
    let shared = sqlx::query_scalar!(
        r#"select exists(select 1 from dataset_version where bucket = $1 and starts_with(prefix, $2)) as "e!""#,
        loaded.bucket,
        loaded.prefix
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    if managed && !shared {
        tokio::spawn(delete_objects(ctx.state.clone(), loaded.bucket, loaded.prefix));
    }
    Ok(())
}

/// Deletes every object under `prefix`, a page at a time.
async fn delete_objects(state: AppState, bucket: String, prefix: String) {
    use storage::aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let client = &state.storage.client;
    let mut pages = client.list_objects_v2().bucket(&bucket).prefix(&prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%bucket, %prefix, error = %S3Failure::from(e), "could not list a deleted version's objects");
                return;
            }
        };
        let ids: Vec<ObjectIdentifier> =
            page.contents().iter().filter_map(|o| ObjectIdentifier::builder().key(o.key()?).build().ok()).collect();
        if ids.is_empty() {
            continue;
        }
        let Ok(delete) = Delete::builder().set_objects(Some(ids)).quiet(true).build() else { return };
        if let Err(e) = client.delete_objects().bucket(&bucket).delete(delete).send().await {
            tracing::warn!(%bucket, %prefix, error = %S3Failure::from(e), "could not delete a deleted version's objects");
            return;
        }
    }
}

/// Folders of Capstan's own bucket that hold team data, as `<folder>/<team>/…`.
const TEAM_AREAS: [&str; 4] = ["datasets", "jobs", "models", "endpoints"];

/// Where a team may point Capstan: in Capstan's own bucket only its own
/// area (or folders outside the team areas); elsewhere only the locations
/// a site admin allowed it. Anything else gets one message that says
/// nothing of whether it exists (no probe happens before this check).
pub(crate) fn reachable(bucket: &str, team: &crate::teams::types::Team, uri: &S3Uri) -> Result<(), String> {
    if uri.bucket != bucket {
        let allowed = team
            .allowed_sources
            .iter()
            .filter_map(|a| S3Uri::parse(a).ok())
            .any(|a| a.bucket == uri.bucket && uri.prefix.starts_with(&a.prefix));
        return if allowed {
            Ok(())
        } else {
            Err(format!(
                "{uri} is not open to this team: use its area of s3://{bucket}/ or a location a site admin \
                 allowed for it."
            ))
        };
    }
    own_area(bucket, &team.slug, uri)
}

/// In Capstan's own bucket a team may register only its own area (or
/// folders outside the team areas): other teams' data is not reachable
/// by naming it.
pub(crate) fn own_area(bucket: &str, team: &str, uri: &S3Uri) -> Result<(), String> {
    let mut segments = uri.prefix.split('/');
    let first = segments.next().unwrap_or_default();
    if first.is_empty() {
        return Err(format!("Name a folder inside s3://{bucket}/, not the whole bucket."));
    }
    if TEAM_AREAS.contains(&first) && segments.next().is_none_or(|owner| owner != team) {
        return Err(format!("s3://{bucket}/{first}/ holds each team's own data: use s3://{bucket}/{first}/{team}/…"));
    }
    Ok(())
}

/// One small listing: the bucket must answer and the prefix hold objects.
pub(crate) async fn probe(state: &AppState, uri: &S3Uri) -> Result<(), String> {
    let out = state
        .storage
        .client
        .list_objects_v2()
        .bucket(&uri.bucket)
        .prefix(&uri.prefix)
        .max_keys(10)
        .send()
        .await
        .map_err(|e| format!("{uri}: {}", S3Failure::from(e)))?;
    if !out.contents().iter().any(|o| counts(o.key().unwrap_or_default(), o.size().unwrap_or_default())) {
        return Err(format!("no objects under {uri}"));
    }
    Ok(())
}

/// Zero-byte keys ending in `/` are folder markers made by consoles, not data.
fn counts(key: &str, size: i64) -> bool {
    !(key.ends_with('/') && size == 0)
}

/// How long a scan's or a check's lease lasts; the holder renews it every
/// third of that while it works.
const LEASE_SECS: f64 = 60.0;

/// Takes the scan of version `id` for this process, unless another live
/// process holds it. True when this process should run it.
pub async fn claim_scan(state: &AppState, id: Uuid) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query!(
        "update dataset_version set lease_owner = $2, lease_until = now() + make_interval(secs => $3)
         where version_id = $1 and status = 'scanning'
           and (lease_until is null or lease_until < now() or lease_owner = $2)",
        id,
        state.instance,
        LEASE_SECS
    )
    .execute(&state.pool)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Starts the scan of version `id` here if this process could take it.
pub async fn start_scan(state: &AppState, id: Uuid) -> bool {
    match claim_scan(state, id).await {
        Ok(true) => {
            tokio::spawn(scan(state.clone(), id));
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::error!(version = %id, error = %e, "failed to take a dataset scan");
            false
        }
    }
}

/// Takes over what no live process holds: versions `scanning` without a
/// lease or with one that ran out start over here, and drift checks whose
/// process died are closed as interrupted. Run at start-up and every few
/// seconds; returns how many scans it started.
pub async fn resume_scans(state: AppState) -> usize {
    let interrupted = sqlx::query!(
        "update dataset_check set status = 'failed', failure = 'Interrupted (Capstan stopped): verify again.',
                checked_at = now()
         where status = 'running' and (lease_until is null or lease_until < now())"
    )
    .execute(&state.pool)
    .await;
    if let Err(e) = interrupted {
        tracing::error!(error = %e, "failed to close interrupted drift checks");
    }
    let ids = sqlx::query_scalar!(
        "select version_id from dataset_version
         where status = 'scanning' and (lease_until is null or lease_until < now())"
    )
    .fetch_all(&state.pool)
    .await;
    let mut started = 0;
    match ids {
        Ok(ids) => {
            for id in ids {
                if start_scan(&state, id).await {
                    tracing::info!(version = %id, "resuming dataset scan");
                    started += 1;
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "failed to find unfinished dataset scans"),
    }
    started
}

/// Renews this process's lease on a scan (or, with `check`, a drift check)
/// until the returned task is aborted.
fn renew_lease(state: &AppState, id: Uuid, check: bool) -> tokio::task::JoinHandle<()> {
    let (pool, me) = (state.pool.clone(), state.instance);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs_f64(LEASE_SECS / 3.0)).await;
            let renewed = if check {
                sqlx::query!(
                    "update dataset_check set lease_until = now() + make_interval(secs => $3)
                     where check_id = $1 and lease_owner = $2",
                    id,
                    me,
                    LEASE_SECS
                )
                .execute(&pool)
                .await
            } else {
                sqlx::query!(
                    "update dataset_version set lease_until = now() + make_interval(secs => $3)
                     where version_id = $1 and lease_owner = $2",
                    id,
                    me,
                    LEASE_SECS
                )
                .execute(&pool)
                .await
            };
            if let Err(e) = renewed {
                tracing::warn!(id = %id, error = %e, "failed to renew a work lease");
            }
        }
    })
}

/// Lists (and for snapshots copies) the version's objects, records the
/// manifest, and marks the version ready, or failed with the reason and
/// no manifest rows.
pub async fn scan(state: AppState, id: Uuid) {
    let lease = renew_lease(&state, id, false);
    let outcome = scan_objects(&state, id).await;
    lease.abort();
    let result = match outcome {
        Ok(()) => Ok(()),
        Err(reason) => {
            tracing::warn!(version = %id, %reason, "dataset scan failed");
            fail(&state, id, &reason).await
        }
    };
    if let Err(e) = result {
        tracing::error!(version = %id, error = %e, "failed to record the dataset scan outcome");
    }
}

/// A database failure in background work, as the version or check shows it:
/// the cause is logged on the server, never shown (it may name tables,
/// constraints or values).
fn internal(e: sqlx::Error) -> String {
    tracing::error!(error = %e, "database error in background dataset work");
    "Capstan could not record this (an internal error, logged on the server). Try again.".to_owned()
}

async fn fail(state: &AppState, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    sqlx::query!("delete from dataset_object where version_id = $1", id).execute(&mut *tx).await?;
    sqlx::query!(
        "update dataset_version set status = 'failed', failure = $2, object_count = 0, byte_count = 0,
                finished_at = now()
         where version_id = $1 and status in ('scanning', 'uploading')",
        id,
        reason
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn scan_objects(state: &AppState, id: Uuid) -> Result<(), String> {
    let db = internal;
    // only the lease holder scans (another process may have taken it over)
    let Some(v) = sqlx::query!(
        "select source, source_uri, snapshot, bucket, prefix from dataset_version
         where version_id = $1 and status = 'scanning' and lease_owner = $2",
        id,
        state.instance
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(db)?
    else {
        return Ok(());
    };
    // a resumed scan starts from a clean slate
    sqlx::query!("delete from dataset_object where version_id = $1", id).execute(&state.pool).await.map_err(db)?;
    let copy = v.snapshot && v.source == "prefix";
    let source =
        if copy { S3Uri::parse(&v.source_uri)? } else { S3Uri { bucket: v.bucket.clone(), prefix: v.prefix.clone() } };
    let client = &state.storage.client;
    let mut pages = client.list_objects_v2().bucket(&source.bucket).prefix(&source.prefix).into_paginator().send();
    let (mut objects, mut bytes, mut list_calls) = (0_i64, 0_i64, 0_u64);
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("{source}: {}", S3Failure::from(e)))?;
        list_calls += 1;
        let mut entries: Vec<ManifestEntry> = page
            .contents()
            .iter()
            .filter(|o| counts(o.key().unwrap_or_default(), o.size().unwrap_or_default()))
            .map(|o| ManifestEntry {
                key: o.key().unwrap_or_default().strip_prefix(source.prefix.as_str()).unwrap_or_default().to_owned(),
                size: o.size().unwrap_or_default(),
                etag: o.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                last_modified: o.last_modified().and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
            })
            .collect();
        if copy {
            entries = copy_page(state, &source, &v.bucket, &v.prefix, entries).await?;
        }
        objects += i64::try_from(entries.len()).unwrap_or(i64::MAX);
        bytes += entries.iter().map(|e| e.size).sum::<i64>();
        if !insert_entries(state, id, &entries, objects, bytes).await.map_err(db)? {
            tracing::warn!(version = %id, "lost the lease of a dataset scan; leaving it to its new holder");
            return Ok(());
        }
    }
    if objects == 0 {
        return Err(format!("no objects under {source}"));
    }
    let digest = manifest_digest(&state.pool, id).await.map_err(db)?;
    let done = sqlx::query!(
        "update dataset_version set status = 'ready', digest = $2, finished_at = now()
         where version_id = $1 and status = 'scanning' and lease_owner = $3",
        id,
        digest,
        state.instance
    )
    .execute(&state.pool)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        // the lease lapsed while this process was stalled: the new holder finishes it
        tracing::warn!(version = %id, "lost the lease of a dataset scan; leaving it to its new holder");
        return Ok(());
    }
    tracing::info!(version = %id, objects, bytes, list_calls, "dataset version ready");
    Ok(())
}

/// Copies one listing page into the managed prefix; entries come back with the copies' ETags.
async fn copy_page(
    state: &AppState,
    source: &S3Uri,
    bucket: &str,
    prefix: &str,
    entries: Vec<ManifestEntry>,
) -> Result<Vec<ManifestEntry>, String> {
    let client = &state.storage.client;
    futures_util::stream::iter(entries)
        .map(|entry| async move {
            let from = format!("{}{}", source.prefix, entry.key);
            let to = format!("{prefix}{}", entry.key);
            let copied = storage::copy_object(
                client,
                (&source.bucket, &from),
                entry.size,
                (bucket, &to),
                storage::CopyPlan::default(),
            )
            .await
            .map_err(|e| format!("copying s3://{}/{from}: {e}", source.bucket))?;
            Ok::<_, String>(ManifestEntry {
                etag: copied.etag,
                last_modified: copied
                    .last_modified
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .or(entry.last_modified),
                ..entry
            })
        })
        .buffered(COPY_CONCURRENCY)
        .try_collect()
        .await
}

/// Appends a page of manifest rows and updates the live totals.
/// Records one listing page of the manifest, under the scan's lease: false
/// (and nothing written) when this process no longer holds it.
async fn insert_entries(
    state: &AppState,
    id: Uuid,
    entries: &[ManifestEntry],
    objects: i64,
    bytes: i64,
) -> Result<bool, sqlx::Error> {
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let sizes: Vec<i64> = entries.iter().map(|e| e.size).collect();
    let etags: Vec<&str> = entries.iter().map(|e| e.etag.as_str()).collect();
    let times: Vec<Option<time::OffsetDateTime>> = entries.iter().map(|e| e.last_modified).collect();
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "insert into dataset_object (version_id, key, size, etag, last_modified)
         select $1, * from unnest($2::text[], $3::bigint[], $4::text[], $5::timestamptz[])
         on conflict (version_id, key) do nothing",
        id,
        &keys as &[&str],
        &sizes,
        &etags as &[&str],
        &times as &[Option<time::OffsetDateTime>],
    )
    .execute(&mut *tx)
    .await?;
    let held = sqlx::query!(
        "update dataset_version set object_count = $2, byte_count = $3 where version_id = $1 and lease_owner = $4",
        id,
        objects,
        bytes,
        state.instance
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !held {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// SHA-256 over the manifest in key order.
pub(crate) async fn manifest_digest(pool: &sqlx::PgPool, id: Uuid) -> Result<String, sqlx::Error> {
    let mut rows =
        sqlx::query!("select key, size, etag from dataset_object where version_id = $1 order by key", id).fetch(pool);
    let mut hasher = Sha256::new();
    while let Some(row) = rows.try_next().await? {
        hasher.update(format!("{}\t{}\t{}\n", row.key, row.size, row.etag).as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

pub async fn manifest(ctx: &Ctx, id: Uuid, q: ManifestQuery) -> Result<Page<ManifestEntry>, AppError> {
    load(ctx, id, Action::ReadTeam).await?;
    let limit = page::limit(q.limit)?;
    let after: Option<String> = page::ssr::decode(q.cursor.as_deref())?;
    let prefix = q.prefix.unwrap_or_default();
    // keys from `prefix` (inclusive) up to the first key past every key that starts with it
    let items = sqlx::query_as!(
        ManifestEntry,
        r#"select key as "key!", size, etag, last_modified from dataset_object
           where version_id = $1 and key > $2 and key >= $3 and starts_with(key, $3)
           order by key limit $4"#,
        id,
        after.unwrap_or_default(),
        prefix,
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    Ok(page::ssr::build(items, limit, |e: &ManifestEntry| e.key.clone()))
}

/// Starts a drift check in the background; the returned check is `running`.
pub async fn verify(ctx: &Ctx, id: Uuid) -> Result<Check, AppError> {
    let loaded = load(ctx, id, Action::Contribute).await?;
    if loaded.version.status != VersionStatus::Ready {
        return Err(AppError::Conflict { field: None, message: "Only ready versions can be verified.".into() });
    }
    let actor = ctx.actor()?;
    let check_id = Uuid::now_v7();
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into dataset_check (check_id, version_id, status, checked_by, lease_owner, lease_until)
         values ($1, $2, 'running', $3, $4, now() + make_interval(secs => $5))",
        check_id,
        id,
        actor.user_id,
        ctx.state.instance,
        LEASE_SECS
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(loaded.team_id),
            action: "dataset_version.verified",
            target_type: "dataset_version",
            target_id: Some(id.to_string()),
            summary: json!({ "check": check_id, "dataset": loaded.version.dataset, "number": loaded.version.number }),
        },
    )
    .await?;
    tx.commit().await?;
    tokio::spawn(run_check(ctx.state.clone(), check_id, id, loaded.bucket, loaded.prefix));
    check(ctx, check_id).await
}

async fn check(ctx: &Ctx, check_id: Uuid) -> Result<Check, AppError> {
    sqlx::query_as!(
        Check,
        "select c.check_id as id, c.version_id, c.status, c.added, c.removed, c.changed, c.failure,
                u.email as checked_by, c.started_at, c.checked_at
         from dataset_check c join app_user u on u.user_id = c.checked_by where c.check_id = $1",
        check_id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Check".into()))
}

pub async fn latest_check(ctx: &Ctx, id: Uuid) -> Result<Option<Check>, AppError> {
    load(ctx, id, Action::ReadTeam).await?;
    Ok(sqlx::query_as!(
        Check,
        "select c.check_id as id, c.version_id, c.status, c.added, c.removed, c.changed, c.failure,
                u.email as checked_by, c.started_at, c.checked_at
         from dataset_check c join app_user u on u.user_id = c.checked_by
         where c.version_id = $1 order by c.started_at desc limit 1",
        id
    )
    .fetch_optional(ctx.pool())
    .await?)
}

pub async fn drift(ctx: &Ctx, id: Uuid, q: DriftQuery) -> Result<Page<Drift>, AppError> {
    load(ctx, id, Action::ReadTeam).await?;
    let limit = page::limit(q.limit)?;
    let after: Option<String> = page::ssr::decode(q.cursor.as_deref())?;
    let check_id = match q.check {
        Some(c) => c,
        None => match latest_check(ctx, id).await? {
            Some(c) => c.id,
            None => return Ok(Page { items: Vec::new(), next_cursor: None }),
        },
    };
    let items = sqlx::query_as!(
        Drift,
        r#"select r.key as "key!", r.change, r.old_size, r.new_size, r.old_etag, r.new_etag
           from dataset_drift r join dataset_check c on c.check_id = r.check_id
           where r.check_id = $1 and c.version_id = $2 and r.key > $3
           order by r.key limit $4"#,
        check_id,
        id,
        after.unwrap_or_default(),
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    Ok(page::ssr::build(items, limit, |d: &Drift| d.key.clone()))
}

/// Re-lists the version's location and records every difference from the manifest.
pub async fn run_check(state: AppState, check_id: Uuid, id: Uuid, bucket: String, prefix: String) {
    let lease = renew_lease(&state, check_id, true);
    let result = compare(&state, check_id, id, &S3Uri { bucket, prefix }).await;
    lease.abort();
    let recorded = match result {
        Ok((added, removed, changed)) => {
            sqlx::query!(
                "update dataset_check set status = 'done', added = $2, removed = $3, changed = $4, checked_at = now()
                 where check_id = $1",
                check_id,
                added,
                removed,
                changed
            )
            .execute(&state.pool)
            .await
        }
        Err(reason) => {
            sqlx::query!(
                "update dataset_check set status = 'failed', failure = $2, checked_at = now() where check_id = $1",
                check_id,
                reason
            )
            .execute(&state.pool)
            .await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(check = %check_id, error = %e, "failed to record a drift check");
    }
}

async fn compare(state: &AppState, check_id: Uuid, id: Uuid, location: &S3Uri) -> Result<(i64, i64, i64), String> {
    let db = internal;
    let mut recorded: std::collections::HashMap<String, (i64, String)> =
        sqlx::query!("select key, size, etag from dataset_object where version_id = $1", id)
            .fetch(&state.pool)
            .map_ok(|r| (r.key, (r.size, r.etag)))
            .try_collect()
            .await
            .map_err(db)?;
    let mut pages = state
        .storage
        .client
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&location.prefix)
        .into_paginator()
        .send();
    let (mut added, mut changed) = (0, 0);
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("{location}: {}", S3Failure::from(e)))?;
        let mut found = Vec::new();
        for o in page.contents() {
            let (key, size) = (o.key().unwrap_or_default(), o.size().unwrap_or_default());
            if !counts(key, size) {
                continue;
            }
            let rel = key.strip_prefix(location.prefix.as_str()).unwrap_or(key).to_owned();
            let etag = o.e_tag().unwrap_or_default().trim_matches('"').to_owned();
            match recorded.remove(&rel) {
                None => {
                    added += 1;
                    found.push(Drift {
                        key: rel,
                        change: "added".into(),
                        old_size: None,
                        new_size: Some(size),
                        old_etag: None,
                        new_etag: Some(etag),
                    });
                }
                Some((old_size, old_etag)) if old_size != size || old_etag != etag => {
                    changed += 1;
                    found.push(Drift {
                        key: rel,
                        change: "changed".into(),
                        old_size: Some(old_size),
                        new_size: Some(size),
                        old_etag: Some(old_etag),
                        new_etag: Some(etag),
                    });
                }
                Some(_) => {}
            }
        }
        insert_drift(&state.pool, check_id, &found).await.map_err(db)?;
    }
    let removed: Vec<Drift> = recorded
        .into_iter()
        .map(|(key, (size, etag))| Drift {
            key,
            change: "removed".into(),
            old_size: Some(size),
            new_size: None,
            old_etag: Some(etag),
            new_etag: None,
        })
        .collect();
    for chunk in removed.chunks(1000) {
        insert_drift(&state.pool, check_id, chunk).await.map_err(db)?;
    }
    Ok((added, i64::try_from(removed.len()).unwrap_or(i64::MAX), changed))
}

async fn insert_drift(pool: &sqlx::PgPool, check_id: Uuid, rows: &[Drift]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = rows.iter().map(|d| d.key.as_str()).collect();
    let changes: Vec<&str> = rows.iter().map(|d| d.change.as_str()).collect();
    let old_sizes: Vec<Option<i64>> = rows.iter().map(|d| d.old_size).collect();
    let new_sizes: Vec<Option<i64>> = rows.iter().map(|d| d.new_size).collect();
    let old_etags: Vec<Option<&str>> = rows.iter().map(|d| d.old_etag.as_deref()).collect();
    let new_etags: Vec<Option<&str>> = rows.iter().map(|d| d.new_etag.as_deref()).collect();
    sqlx::query!(
        "insert into dataset_drift (check_id, key, change, old_size, new_size, old_etag, new_etag)
         select $1, * from unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])",
        check_id,
        &keys as &[&str],
        &changes as &[&str],
        &old_sizes as &[Option<i64>],
        &new_sizes as &[Option<i64>],
        &old_etags as &[Option<&str>],
        &new_etags as &[Option<&str>],
    )
    .execute(pool)
    .await?;
    Ok(())
}
