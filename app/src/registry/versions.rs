//! Model versions: registered from a completed training job of the model's
//! team, numbered 1, 2, 3… per model, and immutable once registered (the
//! database refuses a change to what a version is made of). The job, and
//! through its channels the dataset versions it read, are its lineage.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::validate::Errors;
use crate::registry::domain::{description, key_value_tags};
use crate::registry::types::{ModelVersion, ModelVersionStatus, ModelVersionUpdate, NewModelVersion, StatusChange};
use crate::training::types::{LaunchRequest, TrainingStatus};
use serde_json::json;
use std::collections::BTreeMap;
use storage::{S3Failure, S3Uri};
use time::OffsetDateTime;
use uuid::Uuid;

/// A version as the queries read it.
#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    version_id: Uuid,
    model_id: Uuid,
    model: String,
    team: String,
    number: i32,
    status: ModelVersionStatus,
    source: String,
    artifact_uri: String,
    image: Option<String>,
    framework: Option<String>,
    entry_point: Option<String>,
    parameters: serde_json::Value,
    metrics: serde_json::Value,
    training_job_id: Option<Uuid>,
    dataset_versions: Option<Vec<Uuid>>,
    description: String,
    tags: serde_json::Value,
    created_by: String,
    created_at: OffsetDateTime,
}

impl From<Row> for ModelVersion {
    fn from(r: Row) -> Self {
        Self {
            id: r.version_id,
            model_id: r.model_id,
            model: r.model,
            team: r.team,
            number: r.number,
            status: r.status,
            source: r.source,
            artifact_uri: r.artifact_uri,
            image: r.image,
            framework: r.framework,
            entry_point: r.entry_point,
            parameters: serde_json::from_value(r.parameters).unwrap_or_default(),
            metrics: serde_json::from_value(r.metrics).unwrap_or_default(),
            training_job_id: r.training_job_id,
            dataset_versions: r.dataset_versions.unwrap_or_default(),
            description: r.description,
            tags: serde_json::from_value(r.tags).unwrap_or_default(),
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// How long a version is served from the cache at most (a change reaches
/// every process's cache as soon as it commits; this bounds a lost
/// notification).
const VERSION_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// One version, if the caller may read its team: served from the cache
/// (with the caller's membership) without a database round trip while
/// nothing changed.
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<ModelVersion, AppError> {
    let actor = ctx.actor()?;
    let cache = &ctx.state.cache;
    let key = format!("version:{id}");
    if let Some((version, team_id)) = cache.get::<(ModelVersion, Uuid)>(&key) {
        authorize_owned(&actor.principal(), Action::ReadTeam, ctx.role_in(team_id).await?, "Model version")?;
        return Ok(version);
    }
    let ticket = cache.ticket();
    let (version, team_id) = load(ctx, id, Action::ReadTeam).await?;
    cache.put(key, (version.clone(), team_id), ticket, VERSION_TTL);
    Ok(version)
}

/// Drops the version from this process's cache after a write (the others
/// hear of it from the database).
fn forget(ctx: &Ctx, version: &ModelVersion) {
    ctx.state.cache.invalidate(&format!("alias:{}:", version.model_id));
    ctx.state.cache.invalidate(&format!("version:{}", version.id));
    ctx.state.cache.invalidate(&format!("version-number:{}:{}", version.model_id, version.number));
}

/// Loads a version with its team's id and checks `action` against the caller's role.
pub async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(ModelVersion, Uuid), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select v.version_id, v.model_id, m.name as model, t.slug as team, v.number, v.status as "status: ModelVersionStatus",
                  v.source, v.artifact_uri, v.image, v.framework, v.entry_point, v.parameters, v.metrics,
                  v.training_job_id,
                  array(select c.version_id from training_job_channel c where c.job_id = v.training_job_id
                        order by c.name) as dataset_versions,
                  v.description, v.tags, u.email as created_by, v.created_at, tm.role as "role?: Role", m.team_id
           from model_version v join model m on m.model_id = v.model_id join team t on t.team_id = m.team_id
           join app_user u on u.user_id = v.created_by
           left join team_member tm on tm.team_id = m.team_id and tm.user_id = $2
           where v.version_id = $1"#,
        id,
        actor.user_id,
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Model version".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Model version")?;
    let team_id = row.team_id;
    let version = Row {
        version_id: row.version_id,
        model_id: row.model_id,
        model: row.model,
        team: row.team,
        number: row.number,
        status: row.status,
        source: row.source,
        artifact_uri: row.artifact_uri,
        image: row.image,
        framework: row.framework,
        entry_point: row.entry_point,
        parameters: row.parameters,
        metrics: row.metrics,
        training_job_id: row.training_job_id,
        dataset_versions: row.dataset_versions,
        description: row.description,
        tags: row.tags,
        created_by: row.created_by,
        created_at: row.created_at,
    }
    .into();
    Ok((version, team_id))
}

/// A link to a version's artifact that works for an hour (a file artifact;
/// a folder answers a conflict naming it).
pub async fn download_url(ctx: &Ctx, id: Uuid) -> Result<String, AppError> {
    let version = get(ctx, id).await?;
    let uri = S3Uri::parse(&version.artifact_uri).map_err(|_| AppError::Internal)?;
    if version.artifact_uri.ends_with('/') {
        return Err(AppError::Conflict {
            field: None,
            message: format!("{} is a folder: copy its files with an S3 client.", version.artifact_uri),
        });
    }
    let config = storage::aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(3600))
        .map_err(|_| AppError::Internal)?;
    let presigned = ctx
        .state
        .storage
        .presigner()
        .get_object()
        .bucket(&uri.bucket)
        .key(uri.prefix.trim_end_matches('/'))
        .presigned(config)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "presigning failed");
            AppError::Internal
        })?;
    Ok(presigned.uri().to_owned())
}

/// Deletes a version (team admins) that no alias names; its number is not
/// given out again. Its alias history keeps the move, without the version.
pub async fn delete(ctx: &Ctx, id: Uuid) -> Result<(), AppError> {
    let (before, team_id) = load(ctx, id, Action::Archive).await?;
    let mut tx = ctx.pool().begin().await?;
    let aliases: Vec<String> =
        sqlx::query_scalar!("select alias from model_alias where version_id = $1 order by alias for update", id)
            .fetch_all(&mut *tx)
            .await?;
    if !aliases.is_empty() {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "Version {} is named by alias {}: move or delete the alias first.",
                before.number,
                aliases.join(", ")
            ),
        });
    }
    sqlx::query!("delete from model_version where version_id = $1", id).execute(&mut *tx).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_version.deleted",
            target_type: "model_version",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "model": before.model, "number": before.number,
                                         "artifact_uri": before.artifact_uri } }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    forget(ctx, &before);
    Ok(())
}

/// Changes a version's description or tags (members and up); audited with
/// before and after.
pub async fn update(ctx: &Ctx, id: Uuid, input: ModelVersionUpdate) -> Result<ModelVersion, AppError> {
    let (current, team_id) = load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    let desc = input.description.as_deref().map(|d| errors.check("description", description(d)));
    let tags = input.tags.as_ref().map(|t| errors.check("tags", key_value_tags(t)));
    errors.finish()?;
    let mut tx = ctx.pool().begin().await?;
    let before = sqlx::query!("select description, tags from model_version where version_id = $1 for update", id)
        .fetch_one(&mut *tx)
        .await?;
    let new_desc = desc.flatten().unwrap_or_else(|| before.description.clone());
    let new_tags = tags.flatten().map_or_else(|| before.tags.clone(), |t| json!(t));
    sqlx::query!(
        "update model_version set description = $2, tags = $3, updated_at = now() where version_id = $1",
        id,
        new_desc,
        new_tags
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_version.updated",
            target_type: "model_version",
            target_id: Some(id.to_string()),
            summary: json!({
                "before": { "description": before.description, "tags": before.tags },
                "after": { "description": new_desc, "tags": new_tags },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    // aliases of the model serve this version: this process drops them now, the others on notification
    forget(ctx, &current);
    if ctx.state.packages.is_some() {
        ctx.state.training_wake.notify_one();
    }
    get(ctx, id).await
}

/// Moves a version to another status (approvers and up), if the move is
/// allowed from where it is ([`ModelVersionStatus::may_become`]); `reason` goes
/// into the audit log. The approvals issue will call this from an applied
/// change request.
pub async fn set_status(ctx: &Ctx, id: Uuid, change: StatusChange) -> Result<ModelVersion, AppError> {
    set_status_via(ctx, id, change, crate::registry::gate::Route::Direct).await
}

/// [`set_status`] on its route: directly (refused when the team's policy
/// covers status decisions) or by an approved change request.
pub async fn set_status_via(
    ctx: &Ctx,
    id: Uuid,
    change: StatusChange,
    route: crate::registry::gate::Route,
) -> Result<ModelVersion, AppError> {
    let (current, team_id) = load(ctx, id, Action::Approve).await?;
    let reason = description(&change.reason).map_err(|m| AppError::field("reason", m))?;
    let mut tx = ctx.pool().begin().await?;
    // archiving is housekeeping, not a decision: no policy covers it
    if change.status != ModelVersionStatus::Archived || matches!(route, crate::registry::gate::Route::ChangeRequest(_))
    {
        let kind = crate::kernel::changes::kinds::VERSION_STATUS;
        let target = (Some(current.model_id), None);
        crate::registry::gate::gate(&mut tx, route, (&current.team, team_id), kind, target, false).await?;
    }
    let from = sqlx::query_scalar!(
        r#"select status as "status: ModelVersionStatus" from model_version where version_id = $1 for update"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if !from.may_become(change.status) {
        return Err(AppError::Conflict {
            field: Some("status".into()),
            message: format!("A version that is {} cannot become {}.", from.as_str(), change.status.as_str()),
        });
    }
    sqlx::query!(
        "update model_version set status = $2, updated_at = now() where version_id = $1",
        id,
        change.status as ModelVersionStatus
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_version.status_changed",
            target_type: "model_version",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "status": from.as_str() }, "after": { "status": change.status.as_str() },
                             "reason": reason, "request": route.request() }),
        },
    )
    .await?;
    crate::registry::packages::status_changed(&mut tx, id).await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team_id);
    // aliases of the model serve this version: this process drops them now, the others on notification
    forget(ctx, &current);
    if ctx.state.packages.is_some() {
        ctx.state.training_wake.notify_one();
    }
    get(ctx, id).await
}

/// What a version takes from its training job.
struct JobForVersion {
    job_id: Uuid,
    status: TrainingStatus,
    artifact_uri: Option<String>,
    request: serde_json::Value,
    image: Option<String>,
    final_metrics: serde_json::Value,
}

/// The job `id` of the team, if it can become a version: completed, with a
/// model artifact (whose URI comes second). A job of another team is as
/// unknown as one that does not exist.
async fn registrable_job(ctx: &Ctx, team_id: Uuid, id: Uuid) -> Result<(JobForVersion, String), AppError> {
    let job = sqlx::query_as!(
        JobForVersion,
        r#"select job_id, status as "status: TrainingStatus", artifact_uri, request, spec ->> 'image' as image,
                  final_metrics
           from training_job where job_id = $1 and team_id = $2"#,
        id,
        team_id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::field("training_job_id", "No training job of this team has this id."))?;
    match job.artifact_uri.clone().filter(|_| job.status == TrainingStatus::Completed) {
        Some(uri) => Ok((job, uri)),
        None => Err(AppError::field(
            "training_job_id",
            format!(
                "Only a completed job with a model artifact can be registered; this one is {}.",
                job.status.as_str()
            ),
        )),
    }
}

/// What a new version is made of, wherever it comes from.
struct Draft {
    source: &'static str,
    artifact_uri: String,
    image: Option<String>,
    framework: Option<String>,
    entry_point: Option<String>,
    parameters: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    training_job_id: Option<Uuid>,
}

/// Registers the model's next version (members and up), from a completed
/// training job of the model's team or from an artifact in S3 (see
/// [`NewModelVersion`]).
pub async fn register(ctx: &Ctx, model: Uuid, input: NewModelVersion) -> Result<ModelVersion, AppError> {
    let model = crate::registry::domain::identify(ctx, model, Action::Contribute).await?;
    let team_id = model.team_id;
    let mut errors = Errors::new();
    let desc = errors.check("description", description(&input.description));
    let tags = errors.check("tags", key_value_tags(&input.tags));
    let from_job = input.training_job_id.is_some();
    if from_job {
        for (field, given) in [
            ("artifact_uri", input.artifact_uri.is_some()),
            ("image", input.image.is_some()),
            ("framework", input.framework.is_some()),
            ("parameters", !input.parameters.is_empty()),
            ("metrics", !input.metrics.is_empty()),
        ] {
            if given {
                errors.push(field, "A version registered from a training job takes this from the job: leave it out.");
            }
        }
    } else if input.artifact_uri.is_none() {
        errors.push(
            "training_job_id",
            "Give training_job_id (a completed job of the team) or artifact_uri (an s3:// URI of a model.tar.gz \
             or a folder).",
        );
    }
    let artifact = (!from_job).then(|| {
        (
            input.image.as_deref().map(|i| errors.check("image", crate::training::validate::image_uri(i))),
            input.framework.as_deref().map(|f| errors.check("framework", framework(f))),
            errors.check("parameters", parameters(&input.parameters)),
            errors.check("metrics", metrics(&input.metrics)),
        )
    });
    errors.finish()?;
    let (Some(desc), Some(tags)) = (desc, tags) else { return Err(AppError::Internal) };
    let draft = match (input.training_job_id, artifact) {
        (Some(job), _) => job_draft(ctx, team_id, job).await?,
        (None, Some((image, framework, Some(parameters), Some(metrics)))) => {
            let uri = input.artifact_uri.as_deref().unwrap_or_default();
            Draft {
                source: "artifact",
                artifact_uri: existing_artifact(ctx, &model.team, uri).await?,
                image: image.flatten(),
                framework: framework.flatten(),
                entry_point: None,
                parameters,
                metrics,
                training_job_id: None,
            }
        }
        _ => return Err(AppError::Internal),
    };
    insert(ctx, &model, team_id, draft, desc, tags).await
}

/// What a version takes from a registrable job of the team.
async fn job_draft(ctx: &Ctx, team_id: Uuid, id: Uuid) -> Result<Draft, AppError> {
    let (job, artifact_uri) = registrable_job(ctx, team_id, id).await?;
    let request: LaunchRequest = serde_json::from_value(job.request).map_err(anyhow::Error::from)?;
    let parameters: BTreeMap<String, String> =
        request.hyperparameters.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
    // SageMaker's final metrics; where the engine gives none (the local
    // runner), the last value of each metric series the job logged
    let mut metrics: BTreeMap<String, f64> = sqlx::query!(
        "select distinct on (name) name, value from training_metric where job_id = $1 order by name, seq desc",
        job.job_id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| (r.name, r.value))
    .collect();
    metrics.extend(serde_json::from_value::<BTreeMap<String, f64>>(job.final_metrics).unwrap_or_default());
    metrics.retain(|_, v| v.is_finite());
    Ok(Draft {
        source: "training_job",
        artifact_uri,
        image: job.image.or(request.image.clone()),
        framework: request.framework,
        entry_point: request.entry_point,
        parameters,
        metrics,
        training_job_id: Some(job.job_id),
    })
}

/// The artifact `raw` names, if the team may reach it and it exists: one
/// object (checked with HEAD), or else a folder holding objects (checked with
/// a listing). Returns the URI as it is stored: a folder ends with `/`.
async fn existing_artifact(ctx: &Ctx, team: &str, raw: &str) -> Result<String, AppError> {
    let field = |m: String| AppError::field("artifact_uri", m);
    let uri = S3Uri::parse(raw).map_err(field)?;
    let bucket = &ctx.state.storage.bucket;
    if uri.bucket == *bucket {
        // Capstan's bucket: the team's own area (the caller's role was checked with the model's)
        crate::datasets::versions::own_area(bucket, team, &uri).map_err(field)?;
    } else {
        // elsewhere: where a site admin opened it to the team
        let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
        crate::datasets::versions::reachable(bucket, &team, &uri).map_err(field)?;
    }
    let key = uri.prefix.trim_end_matches('/');
    let mut head_failure = None;
    if !raw.trim().ends_with('/') {
        let head = ctx.state.storage.client.head_object().bucket(&uri.bucket).key(key).send().await;
        match head.map_err(S3Failure::from) {
            Ok(_) => return Ok(format!("s3://{}/{key}", uri.bucket)),
            // not an object (some stores answer a folder's name with an error of their own): maybe a folder
            Err(e) => head_failure = Some(e),
        }
    }
    match crate::datasets::versions::probe(&ctx.state, &uri).await {
        Ok(()) => Ok(uri.to_string()),
        Err(_) => match head_failure {
            Some(e) if matches!(e.code.as_str(), "AccessDenied" | "Forbidden" | "ConnectionFailed" | "Timeout") => {
                Err(field(format!("s3://{}/{key}: {e}", uri.bucket)))
            }
            _ => Err(field(format!(
                "Nothing is at s3://{}/{key}: give a model.tar.gz or a folder that holds the model.",
                uri.bucket
            ))),
        },
    }
}

/// A framework name: 1-64 of letters, digits, `.`, `_`, `-`.
fn framework(raw: &str) -> Result<String, String> {
    let f = raw.trim();
    let ok =
        (1..=64).contains(&f.len()) && f.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(f.to_owned()) } else { Err("Use 1 to 64 letters, digits, '.', '_' or '-' (like sklearn).".into()) }
}

/// Parameters of an artifact: at most 200, keys of 1-250 characters, values of at most 1000.
fn parameters(raw: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    if raw.len() > 200 {
        return Err("Give at most 200 parameters.".into());
    }
    for (key, value) in raw {
        if !metric_or_param_name(key) {
            return Err(format!("Parameter {key:?} is not allowed: 1 to 250 characters, no control characters."));
        }
        if value.chars().count() > 1000 {
            return Err(format!("The value of parameter {key:?} is too long: at most 1000 characters."));
        }
    }
    Ok(raw.clone())
}

/// Metrics of an artifact: at most 200 names of 1-250 characters with finite values.
fn metrics(raw: &BTreeMap<String, f64>) -> Result<BTreeMap<String, f64>, String> {
    if raw.len() > 200 {
        return Err("Give at most 200 metrics.".into());
    }
    for (name, value) in raw {
        if !metric_or_param_name(name) {
            return Err(format!("Metric {name:?} is not allowed: 1 to 250 characters, no control characters."));
        }
        if !value.is_finite() {
            return Err(format!("Metric {name:?} must be a finite number."));
        }
    }
    Ok(raw.clone())
}

fn metric_or_param_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 250 && !name.chars().any(char::is_control)
}

/// Writes `draft` as the model's next version, with its audit event.
async fn insert(
    ctx: &Ctx,
    model: &crate::registry::domain::ModelRef,
    team_id: Uuid,
    draft: Draft,
    desc: String,
    tags: BTreeMap<String, String>,
) -> Result<ModelVersion, AppError> {
    let actor = ctx.actor()?;
    if let Some(job) = draft.training_job_id
        && let Some(number) = sqlx::query_scalar!(
            "select number from model_version where model_id = $1 and training_job_id = $2",
            model.id,
            job
        )
        .fetch_optional(ctx.pool())
        .await?
    {
        return Err(AppError::Conflict {
            field: Some("training_job_id".into()),
            message: format!("This job is already version {number} of model {}.", model.name),
        });
    }
    let id = Uuid::now_v7();
    let target_id = id.to_string();
    let chain = crate::kernel::audit::chain_key(Some(team_id), "model_version", Some(&target_id));
    let mut tx = ctx.pool().begin().await?;
    // the model's next number, never given out twice (even after a version is deleted), the model's count
    // of versions, the version, its metric rows (what search by metric reads) and the head of its audit
    // chain (as `audit::take_head` takes it), in one statement; taking the number locks the model's row, so
    // registrations of one model follow each other (a refusal rolls it back; the same job registered twice
    // at once meets `model_version_job_key`)
    let row = sqlx::query!(
        r#"with next as (update model set last_number = last_number + 1, version_count = version_count + 1
                         where model_id = $2 returning last_number, team_id),
                version as (insert into model_version (version_id, model_id, number, source, artifact_uri, image,
                                                       framework, entry_point, parameters, metrics, training_job_id,
                                                       description, tags, created_by)
                            select $1, $2, next.last_number, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 from next
                            returning version_id, number, created_at),
                kept as (insert into model_version_metric (version_id, team_id, name, value)
                         select version.version_id, next.team_id, e.key, (e.value)::double precision
                         from version, next, jsonb_each($9) e where jsonb_typeof(e.value) = 'number'),
                head as (insert into audit_chain (chain_key, last_seq, last_hash) values ($14, 1, $15)
                         on conflict (chain_key) do update set last_seq = audit_chain.last_seq + 1
                         returning last_seq, last_hash)
           select number as "number!", created_at as "created_at!", last_seq as "last_seq!",
                  last_hash as "last_hash!"
           from version, head"#,
        id,
        model.id,
        draft.source,
        draft.artifact_uri,
        draft.image,
        draft.framework,
        draft.entry_point,
        json!(draft.parameters),
        json!(draft.metrics),
        draft.training_job_id,
        desc,
        json!(tags),
        actor.user_id,
        chain,
        &crate::kernel::audit::GENESIS[..],
    )
    .fetch_optional(&mut *tx)
    .await?
    // deleted since it was looked up
    .ok_or_else(|| AppError::NotFound("Model".into()))?;
    let number = row.number;
    ctx.append(
        &mut tx,
        crate::kernel::audit::Head::taken(chain, row.last_seq, row.last_hash),
        NewEvent {
            team_id: Some(team_id),
            action: "model_version.registered",
            target_type: "model_version",
            target_id: Some(target_id),
            summary: json!({ "after": {
                "model": model.name, "number": number, "source": draft.source,
                "training_job_id": draft.training_job_id, "artifact_uri": draft.artifact_uri, "metrics": draft.metrics,
            } }),
        },
    )
    .await?;
    crate::registry::packages::want_package(&mut tx, &ctx.state, model.id, &model.team, &model.name, id).await?;
    tx.commit().await?;
    crate::registry::domain::versions_added(ctx, team_id);
    if ctx.state.packages.is_some() {
        ctx.state.training_wake.notify_one();
    }
    // the version as written (no read back): its lineage is its job's channels
    let dataset_versions = match draft.training_job_id {
        Some(job) => {
            sqlx::query_scalar!("select version_id from training_job_channel where job_id = $1 order by name", job)
                .fetch_all(ctx.pool())
                .await?
        }
        None => Vec::new(),
    };
    Ok(ModelVersion {
        id,
        model_id: model.id,
        model: model.name.clone(),
        team: model.team.clone(),
        number,
        status: crate::registry::types::ModelVersionStatus::PendingManualApproval,
        source: draft.source.to_owned(),
        artifact_uri: draft.artifact_uri,
        image: draft.image,
        framework: draft.framework,
        entry_point: draft.entry_point,
        parameters: draft.parameters,
        metrics: draft.metrics,
        training_job_id: draft.training_job_id,
        dataset_versions,
        description: desc,
        tags,
        created_by: actor.email.clone(),
        created_at: row.created_at,
    })
}

/// Registers a job as the next version of the team's model `name`, creating
/// the model first if the team has none of that name (members and up).
pub async fn register_by_name(
    ctx: &Ctx,
    team: &str,
    name: &str,
    input: NewModelVersion,
) -> Result<ModelVersion, AppError> {
    let (team_row, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    // a refused job creates no model either
    if let Some(job) = input.training_job_id {
        registrable_job(ctx, team_row.id, job).await?;
    }
    let existing =
        sqlx::query_scalar!("select model_id from model where team_id = $1 and name = $2", team_row.id, name)
            .fetch_optional(ctx.pool())
            .await?;
    let model = match existing {
        Some(id) => id,
        None => {
            let new = crate::registry::types::NewModel { name: name.to_owned(), ..Default::default() };
            crate::registry::domain::create(ctx, team, new)
                .await
                .map_err(|e| match e {
                    // the form names the model in `model`
                    AppError::Validation(errors) if errors.iter().any(|f| f.field == "name") => AppError::field(
                        "model",
                        errors.into_iter().find(|f| f.field == "name").map(|f| f.message).unwrap_or_default(),
                    ),
                    other => other,
                })?
                .id
        }
    };
    register(ctx, model, input).await
}
