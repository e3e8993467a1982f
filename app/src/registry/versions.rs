//! Model versions: registered from a completed training job of the model's
//! team, numbered 1, 2, 3… per model, and immutable once registered (the
//! database refuses a change to what a version is made of). The job, and
//! through its channels the dataset versions it read, are its lineage.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::validate::Errors;
use crate::registry::domain::{description, key_value_tags};
use crate::registry::types::{
    ModelVersion, ModelVersionQuery, ModelVersionStatus, ModelVersionUpdate, NewModelVersion, StatusChange,
};
use crate::training::types::{LaunchRequest, TrainingStatus};
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

struct Row {
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

/// One version, if the caller may read its team.
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<ModelVersion, AppError> {
    Ok(load(ctx, id, Action::ReadTeam).await?.0)
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

/// Changes a version's description or tags (members and up); audited with
/// before and after.
pub async fn update(ctx: &Ctx, id: Uuid, input: ModelVersionUpdate) -> Result<ModelVersion, AppError> {
    let (_, team_id) = load(ctx, id, Action::Contribute).await?;
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
    get(ctx, id).await
}

/// Moves a version to another status (approvers and up), if the move is
/// allowed from where it is ([`ModelVersionStatus::may_become`]); `reason` goes
/// into the audit log. The approvals issue will call this from an applied
/// change request.
pub async fn set_status(ctx: &Ctx, id: Uuid, change: StatusChange) -> Result<ModelVersion, AppError> {
    let (_, team_id) = load(ctx, id, Action::Approve).await?;
    let reason = description(&change.reason).map_err(|m| AppError::field("reason", m))?;
    let mut tx = ctx.pool().begin().await?;
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
                             "reason": reason }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

/// A model's versions, newest first.
pub async fn list(ctx: &Ctx, model: Uuid, q: ModelVersionQuery) -> Result<Page<ModelVersion>, AppError> {
    crate::registry::domain::load(ctx, model, Action::ReadTeam).await?;
    let limit = page::limit(q.limit)?;
    let after: Option<i32> = page::ssr::decode(q.cursor.as_deref())?;
    let rows = sqlx::query!(
        r#"select v.version_id, v.model_id, m.name as model, t.slug as team, v.number, v.status as "status: ModelVersionStatus",
                  v.source, v.artifact_uri, v.image, v.framework, v.entry_point, v.parameters, v.metrics,
                  v.training_job_id,
                  array(select c.version_id from training_job_channel c where c.job_id = v.training_job_id
                        order by c.name) as dataset_versions,
                  v.description, v.tags, u.email as created_by, v.created_at
           from model_version v join model m on m.model_id = v.model_id join team t on t.team_id = m.team_id
           join app_user u on u.user_id = v.created_by
           where v.model_id = $1 and v.number < $2
           order by v.number desc limit $3"#,
        model,
        after.unwrap_or(i32::MAX),
        limit + 1,
    )
    .fetch_all(ctx.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|row| {
            ModelVersion::from(Row {
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
            })
        })
        .collect();
    Ok(page::ssr::build(items, limit, |v: &ModelVersion| v.number))
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

/// Registers a completed training job of the model's team as the model's
/// next version (members and up). The job's artifact, image, entry point,
/// hyperparameters and final metrics are copied; the job is referenced.
pub async fn register(ctx: &Ctx, model: Uuid, input: NewModelVersion) -> Result<ModelVersion, AppError> {
    let (model, team_id) = crate::registry::domain::load(ctx, model, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let mut errors = Errors::new();
    let desc = errors.check("description", description(&input.description));
    let tags = errors.check("tags", key_value_tags(&input.tags));
    errors.finish()?;
    let (Some(desc), Some(tags)) = (desc, tags) else { return Err(AppError::Internal) };
    let (job, artifact_uri) = registrable_job(ctx, team_id, input.training_job_id).await?;
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
    let mut tx = ctx.pool().begin().await?;
    // one registration at a time per model, so numbers follow each other
    sqlx::query!("select model_id from model where model_id = $1 for update", model.id).fetch_one(&mut *tx).await?;
    if let Some(number) = sqlx::query_scalar!(
        "select number from model_version where model_id = $1 and training_job_id = $2",
        model.id,
        job.job_id
    )
    .fetch_optional(&mut *tx)
    .await?
    {
        return Err(AppError::Conflict {
            field: Some("training_job_id".into()),
            message: format!("This job is already version {number} of model {}.", model.name),
        });
    }
    let number: i32 = sqlx::query_scalar!(
        r#"select coalesce(max(number), 0) + 1 as "n!" from model_version where model_id = $1"#,
        model.id
    )
    .fetch_one(&mut *tx)
    .await?;
    let id = Uuid::now_v7();
    sqlx::query!(
        "insert into model_version (version_id, model_id, number, source, artifact_uri, image, framework, entry_point,
                                    parameters, metrics, training_job_id, description, tags, created_by)
         values ($1, $2, $3, 'training_job', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        id,
        model.id,
        number,
        artifact_uri,
        job.image.or(request.image.clone()),
        request.framework,
        request.entry_point,
        json!(parameters),
        json!(metrics),
        job.job_id,
        desc,
        json!(tags),
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_version.registered",
            target_type: "model_version",
            target_id: Some(id.to_string()),
            summary: json!({ "after": {
                "model": model.name, "number": number, "training_job_id": job.job_id,
                "artifact_uri": artifact_uri, "metrics": metrics,
            } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
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
    registrable_job(ctx, team_row.id, input.training_job_id).await?;
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
